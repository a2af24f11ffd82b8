"""Fixtures of the training pages: runs in each state, with a series filled in as a worker
fills it (annotate.jobs follows metrics.jsonl into .series). The judgments to train on
(`judged`) and `training_dir` are in tests/conftest.py.
"""

import pytest
from django.utils import timezone

from annotate import models
from tests.workers import start_worker  # noqa: F401 (a real db_worker, for the browser test)


def step_record(step: int, *, evaluate: bool = False) -> dict:
    record = {
        "step": step,
        "epoch": 0,
        "loss": 2.0 / step,
        "l_mle": 1.5 / step,
        "l_ul": 0.5 / step,
        "flagged": 0.1 * step,
        "lr": 1e-4 * step,
        "grad_norm": 1.0,
        "tokens": 100,
        "tokens_per_s": 50.0 + step,
        "seconds": 2.0,
    }
    if evaluate:
        record["eval"] = {
            "approved_delta": -0.05 * step,
            "criticised_delta": -0.2 * step,
            "gain": 0.15 * step,
        }
    return record


@pytest.fixture
def running_run(staff) -> models.TrainingRun:
    """Step 3 of 10 on worker gpu-box-1, with an evaluation at step 2."""
    run = models.TrainingRun.objects.create(
        status="running",
        base_model="/models/tiny",
        config={"threshold": 1.1, "collapse_margin": 0.3, "max_steps": 10},
        filters={"status": "accepted", "rounds": [1], "since": None},
        positive_count=4,
        negative_count=2,
        output_dir="/runs/run-1",
        snapshot_path="/nowhere/judgments.jsonl",
        snapshot_sha256="ab" * 32,
        worker_host="gpu-box-1",
        heartbeat_at=timezone.now(),
        started_at=timezone.now(),
        total_steps=10,
        series=[
            {"event": "plan", "steps": 10},
            step_record(1),
            step_record(2, evaluate=True),
            step_record(3),
        ],
        log_tail="step 3/10 loss 0.667",
        created_by=staff,
    )
    return run


@pytest.fixture
def succeeded_run(staff, training_dir) -> models.TrainingRun:
    output = training_dir / "run-ok"
    output.mkdir(parents=True)
    snapshot = output / "judgments.jsonl"
    snapshot.write_text('{"id": 1}\n')
    run = models.TrainingRun.objects.create(
        status="succeeded",
        base_model="/models/tiny",
        config={"collapse_margin": 0.3},
        filters={"status": "accepted", "round": 1},
        positive_count=1,
        negative_count=0,
        output_dir=str(output),
        snapshot_path=str(snapshot),
        snapshot_sha256="cd" * 32,
        worker_host="gpu-box-2",
        started_at=timezone.now() - timezone.timedelta(minutes=5),
        finished_at=timezone.now(),
        total_steps=2,
        series=[step_record(1), step_record(2, evaluate=True)],
        metrics={
            "tokens_per_s": 40.0,
            "validation": {"approved_delta": -0.1, "criticised_delta": -0.4, "gain": 0.3},
        },
        created_by=staff,
    )
    return run


# The API's clients (tests/api/conftest.py) for the API tests beside the pages.
@pytest.fixture
def api(db):
    from tests.api.conftest import client_for

    return client_for
