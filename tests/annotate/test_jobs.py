"""Jobs without a worker: enqueueing once, cancel, resume, the stale sweep, the series."""

import hashlib
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from annotate import generation, jobs, models, series


def queued_run(**fields) -> models.TrainingRun:
    fields = {"output_dir": "/nowhere/run", "snapshot_path": "/nowhere/run/j.jsonl", **fields}
    return models.TrainingRun.objects.create(**fields)


def test_a_run_is_enqueued_once_on_the_gpu_queue(db):
    run = queued_run()
    jobs.enqueue_training(run)

    task = DBTaskResult.objects.get()
    assert run.task_id == str(task.id)
    assert task.queue_name == "gpu"
    assert task.task_path == "annotate.jobs.run_training"
    assert task.args_kwargs == {"args": [run.pk], "kwargs": {"resume": False}}
    with pytest.raises(jobs.JobError, match="cannot start twice"):
        jobs.enqueue_training(run)
    assert DBTaskResult.objects.count() == 1


def test_a_run_without_a_snapshot_is_not_enqueued(db):
    with pytest.raises(jobs.JobError, match="has no data snapshot"):
        jobs.enqueue_training(models.TrainingRun.objects.create())
    assert not DBTaskResult.objects.exists()


@pytest.mark.parametrize("state", ["running", "succeeded", "cancelled"])
def test_a_run_that_is_not_queued_cannot_be_enqueued(db, state):
    run = queued_run(status=state)
    with pytest.raises(jobs.JobError):
        jobs.enqueue_training(run)
    assert not DBTaskResult.objects.exists()


def test_cancelling_a_queued_run_cancels_it_at_once(db):
    run = queued_run()
    jobs.enqueue_training(run)
    assert jobs.request_cancel(run)
    run.refresh_from_db()
    assert run.status == "cancelled" and run.finished_at is not None
    # The worker that picks its task up later leaves it alone.
    assert jobs.run_training.call(run.pk).startswith("skipped")
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_cancelling_a_running_run_asks_its_worker(db):
    run = queued_run(status="running")
    assert jobs.request_cancel(run)
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("running", True)
    assert not run.can_cancel


def test_a_finished_run_cannot_be_cancelled(db):
    run = queued_run(status="succeeded")
    assert not jobs.request_cancel(run)
    assert queued_run(status="succeeded").status == "succeeded"


@pytest.mark.parametrize("state", ["interrupted", "failed", "cancelled"])
def test_an_unfinished_run_resumes_once(db, state):
    run = queued_run(status=state, error="it broke", cancel_requested=True)
    jobs.enqueue_resume(run)

    assert (run.status, run.error, run.cancel_requested) == ("queued", "", False)
    task = DBTaskResult.objects.get()
    assert task.args_kwargs["kwargs"] == {"resume": True}
    with pytest.raises(jobs.JobError, match="only an interrupted, failed or cancelled"):
        jobs.enqueue_resume(run)  # a double click
    assert DBTaskResult.objects.count() == 1


@pytest.mark.parametrize("state", ["queued", "running", "succeeded"])
def test_a_queued_running_or_finished_run_is_not_resumed(db, state):
    with pytest.raises(jobs.JobError):
        jobs.enqueue_resume(queued_run(status=state))


def test_the_sweep_interrupts_runs_whose_worker_went_quiet(db, settings):
    settings.RUN_HEARTBEAT_TIMEOUT = 120
    now = timezone.now()
    quiet = queued_run(status="running", heartbeat_at=now - timedelta(seconds=121))
    busy = queued_run(status="running", heartbeat_at=now - timedelta(seconds=5))
    never = queued_run(status="running", started_at=now - timedelta(hours=1))
    waiting = queued_run(heartbeat_at=now - timedelta(hours=1))
    quiet_generation = models.GenerationRun.objects.create(
        round_number=2, status="running", heartbeat_at=now - timedelta(hours=1)
    )

    assert jobs.sweep_stale() == 3
    for run, state in [
        (quiet, "interrupted"),
        (busy, "running"),
        (never, "interrupted"),
        (waiting, "queued"),
        (quiet_generation, "interrupted"),
    ]:
        run.refresh_from_db()
        assert run.status == state
    assert "stopped sending heartbeats for more than 120 seconds" in quiet.error
    assert quiet.can_resume


def test_progress_and_eta_come_from_the_series(db):
    run = queued_run(
        status="running",
        total_steps=10,
        series=[{"step": 1, "seconds": 2.0}, {"step": 2, "seconds": 4.0}],
    )
    assert run.step == 2
    assert run.progress == pytest.approx(0.2)
    assert run.eta == timedelta(seconds=8 * 3.0)
    assert queued_run().eta is None and queued_run().progress is None


def test_a_short_series_keeps_every_step():
    points = [{"step": i, "loss": 1.0} for i in range(1, 4)]
    assert series.merge([], points, 3, cap=2000) == points


def test_a_long_series_is_thinned_evenly_keeping_evaluations_and_the_newest_step():
    kept = []
    for start in range(1, 50_001, 1000):  # as the job reads it: a chunk at a time
        chunk = [{"step": i} for i in range(start, start + 1000)]
        for point in chunk:
            if point["step"] % 5000 == 0 or point["step"] == 1234:
                point["eval"] = {"gain": 0.1}
        kept = series.merge(kept, chunk, total_steps=60_000, cap=2000)

    steps = [p["step"] for p in kept]
    assert len(kept) <= 2000
    assert steps[0] == 1 and steps[-1] == 50_000
    assert 1234 in steps and all(s in steps for s in range(5000, 50_001, 5000))
    # Every 30th step (60,000 planned / 2,000 points), and nothing else.
    assert set(steps) == {1, 1234, *range(30, 50_001, 30), *range(5000, 50_001, 5000)}


def test_a_resumed_run_replaces_the_steps_after_its_checkpoint():
    before = [{"step": i, "loss": 1.0} for i in range(1, 6)]
    again = [{"step": i, "loss": 2.0} for i in (4, 5, 6)]
    merged = series.merge(before, again, 6, cap=2000)
    assert [(p["step"], p["loss"]) for p in merged] == [
        (1, 1.0), (2, 1.0), (3, 1.0), (4, 2.0), (5, 2.0), (6, 2.0),
    ]  # fmt: skip


def test_metrics_lines_split_into_steps_and_events_skipping_broken_ones():
    text = '{"event": "plan", "steps": 3}\n{"step": 1, "loss": 1}\n{"step": 2, "lo\n[1]\n\n'
    steps, events = series.parse_lines(text)
    assert steps == [{"step": 1, "loss": 1}]
    assert events == [{"event": "plan", "steps": 3}]


def test_the_follower_reads_what_the_trainer_appended(db, tmp_path):
    run = models.TrainingRun.objects.create(output_dir=str(tmp_path))
    metrics = tmp_path / jobs.METRICS_FILENAME
    follower = series.MetricsFollower(run)
    assert follower.read() == {}
    metrics.write_text('{"event": "plan", "steps": 4, "records": 6}\n{"step": 1, "loss": 3}\n')
    assert follower.read() == {
        "total_steps": 4,
        "plan": {"event": "plan", "steps": 4, "records": 6},
        "series": [{"step": 1, "loss": 3}],
    }
    with metrics.open("a") as f:
        f.write('{"step": 2, "loss": 2}\n{"step": 3, "lo')  # the last line half written
    assert follower.read()["series"] == [{"step": 1, "loss": 3}, {"step": 2, "loss": 2}]
    metrics.write_text('{"step": 1, "loss": 9}\n')  # a resume rewrote it
    assert follower.read()["series"] == [{"step": 1, "loss": 9}]
    # Rewritten and grown past where it was read between two looks: noticed too.
    metrics.write_text('{"step": 1, "loss": 8}\n{"step": 2, "loss": 7}\n{"step": 3, "loss": 6}\n')
    assert follower.read()["series"] == [
        {"step": 1, "loss": 8}, {"step": 2, "loss": 7}, {"step": 3, "loss": 6},
    ]  # fmt: skip


# --- generation runs ---------------------------------------------------------------------


@pytest.fixture
def seed_prompts(db) -> list[models.Prompt]:
    return models.Prompt.objects.bulk_create(
        models.Prompt(source="seed", external_id=str(i), instruction=f"Q{i}") for i in range(3)
    )


def test_a_generation_run_is_recorded_and_enqueued_once(seed_prompts):
    run = generation.new_generation_run(2, prompts="source=seed", limit=2)
    jobs.enqueue_generation(run)
    task = DBTaskResult.objects.get()
    assert (task.task_path, task.queue_name) == ("annotate.jobs.run_generation", "gpu")
    with pytest.raises(jobs.JobError):
        jobs.enqueue_generation(run)


def test_a_generation_run_from_a_training_run_uses_its_adapter(seed_prompts):
    trained = queued_run(status="succeeded", base_model="/models/base")
    run = generation.new_generation_run(2, training_run=trained)
    assert (run.adapter, run.base_model) == ("/nowhere/run", "/models/base")
    with pytest.raises(ValidationError, match="has no adapter yet"):
        generation.new_generation_run(3, training_run=queued_run(status="running"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompts": "source=nothing"}, "No prompts match"),
        ({"prompts": "sometimes"}, "Prompts must be all, source=NAME or round=N"),
        ({"overlap": 0}, "greater than or equal to 1"),
        ({"adapter": "/elsewhere"}, "Round 1 was generated with tiny"),
    ],
)
def test_a_bad_generation_run_is_refused(seed_prompts, round1, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        generation.new_generation_run(1, **kwargs)
    assert not models.GenerationRun.objects.exists()


def test_generate_responses_queue_records_and_enqueues(seed_prompts, tmp_path):
    out = StringIO()
    call_command(
        "generate_responses", "--round", "2", "--prompts", "source=seed", "--queue",
        "--adapter", str(tmp_path / "no-adapter"), stdout=out, stderr=out,
    )  # fmt: skip
    run = models.GenerationRun.objects.get()
    assert (run.round_number, run.prompts, run.status) == (2, "source=seed", "queued")
    assert run.task_id
    assert "Warning: Adapter directory" in out.getvalue()
    assert f"Generation run {run.pk} queued" in out.getvalue()
    assert "No worker is listening on the gpu queue" in out.getvalue()
    assert not models.Round.objects.filter(pk=2).exists()  # the worker creates it


def test_generate_responses_queue_checks_the_prompts_first(seed_prompts):
    with pytest.raises(CommandError, match="--prompts must be"):
        call_command("generate_responses", "--round", "2", "--prompts", "x", "--queue")
    with pytest.raises(CommandError, match="No prompts match"):
        call_command("generate_responses", "--round", "2", "--prompts", "round=9", "--queue")
    assert not models.GenerationRun.objects.exists()
    assert not DBTaskResult.objects.exists()


def test_train_cut_cannot_queue_a_dry_run(db):
    with pytest.raises(CommandError, match="nothing to --queue"):
        call_command("train_cut", "--dry-run", "--queue")


# --- the worker's checks and the child's command line -------------------------------------


@pytest.fixture
def recorded(db, tmp_path, model_dir) -> models.TrainingRun:
    """A run as train_cut --queue records it: a snapshot, its sha256, the config."""
    from training.config import CUTConfig

    snapshot = tmp_path / "run" / "judgments.jsonl"
    snapshot.parent.mkdir()
    snapshot.write_text('{"id": 1}\n')
    config = CUTConfig(threshold=1.3, lora_target_modules=["up_proj"], base_model=None)
    return models.TrainingRun.objects.create(
        base_model=str(model_dir),
        snapshot_path=str(snapshot),
        snapshot_sha256=hashlib.sha256(snapshot.read_bytes()).hexdigest(),
        output_dir=str(snapshot.parent),
        config={**config.to_dict(), "data": str(snapshot), "merge": True},
    )


def test_the_child_gets_the_runs_config_as_the_command_line(recorded, model_dir, monkeypatch):
    from training.config import CUTConfig, apply_overrides

    monkeypatch.setattr(jobs, "gpu_count", lambda: 0)
    command = jobs.training_command(recorded, resume=True, host="box")

    assert command[1:4] == ["-m", "training", "train"]
    assert command[command.index("--base-model") + 1] == str(model_dir)
    assert command[command.index("--data") + 1] == recorded.snapshot_path
    assert "--resume" not in command  # no checkpoint yet: it starts from the beginning
    overrides = [a for a in command if a.startswith("--") and "=" in a]
    assert not [a for a in overrides if a.split("=")[0][2:] in jobs.RESERVED_KEYS]
    parsed = apply_overrides(CUTConfig(), overrides)
    assert (parsed.threshold, parsed.lora_target_modules, parsed.merge) == (1.3, ["up_proj"], True)


def test_a_box_with_several_gpus_trains_with_accelerate_launch(recorded, monkeypatch):
    monkeypatch.setattr(jobs, "gpu_count", lambda: 4)
    command = jobs.training_command(recorded, resume=False, host="box")
    assert command[1:4] == ["-m", "accelerate.commands.launch", "--multi_gpu"]
    assert command[command.index("--num_processes") + 1] == "4"
    assert command[command.index("--main_process_port") + 1].isdigit()
    start = command.index("training") - 1
    assert command[start : start + 4] == ["-m", "training", "train", "--data"]


def test_asking_for_more_processes_than_the_worker_has_gpus_fails_naming_the_host(
    recorded, settings, monkeypatch
):
    monkeypatch.setattr(jobs, "gpu_count", lambda: 1)
    settings.TRAINING_NUM_PROCESSES = 2
    with pytest.raises(jobs.JobError, match="TRAINING_NUM_PROCESSES is 2 but box has 1 GPUs"):
        jobs.training_command(recorded, resume=False, host="box")


def test_a_resumed_run_with_a_checkpoint_continues_from_it(recorded, monkeypatch):
    monkeypatch.setattr(jobs, "gpu_count", lambda: 0)
    step = Path(recorded.output_dir) / "checkpoints" / "step-2"
    step.mkdir(parents=True)
    (step / "trainer_state.pt").write_bytes(b"")
    command = jobs.training_command(recorded, resume=True, host="box")
    assert command[command.index("--resume") + 1] == "latest"


def test_a_missing_or_changed_snapshot_fails_on_the_worker(recorded):
    Path(recorded.snapshot_path).write_text("other data\n")
    with pytest.raises(jobs.JobError, match="changed since it was recorded"):
        jobs.training_command(recorded, resume=False, host="box")
    Path(recorded.snapshot_path).unlink()
    with pytest.raises(jobs.JobError, match="is not on box.*same TRAINING_DIR"):
        jobs.training_command(recorded, resume=False, host="box")


def test_a_worker_that_finds_its_run_swept_stops_the_child(db):
    run = queued_run(status="interrupted")
    assert jobs._tick(run, "log", {}) == "lost"
    running = queued_run(status="running", cancel_requested=True)
    assert jobs._tick(running, "last line", {"total_steps": 9}) == "cancel"
    running.refresh_from_db()
    assert (running.log_tail, running.total_steps) == ("last line", 9)


def test_the_sweep_closes_the_lost_task_too(db, settings):
    settings.RUN_HEARTBEAT_TIMEOUT = 1
    run = queued_run()
    jobs.enqueue_training(run)
    DBTaskResult.objects.update(status="RUNNING")
    models.TrainingRun.objects.update(
        status="running", heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    assert jobs.sweep_stale() == 1
    task = DBTaskResult.objects.get()
    assert task.status == "FAILED" and "stopped sending heartbeats" in task.traceback


def test_train_cut_resume_queue_queues_the_resume(db, recorded):
    recorded.status = "failed"
    recorded.save()
    out = StringIO()
    call_command("train_cut", "--resume", "--queue", "--max-steps", "7", stdout=out)
    recorded.refresh_from_db()
    assert recorded.status == "queued"
    assert recorded.config["max_steps"] == 7
    assert DBTaskResult.objects.get().args_kwargs["kwargs"] == {"resume": True}
    assert f"/training/{recorded.pk}/" in out.getvalue()


def test_a_job_whose_supervision_breaks_does_not_stay_running(recorded, monkeypatch):
    monkeypatch.setattr(jobs, "gpu_count", lambda: 0)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(jobs.supervise, "supervise", broken)
    with pytest.raises(RuntimeError):
        jobs.run_training.call(recorded.pk)
    recorded.refresh_from_db()
    assert recorded.status == "failed" and "database went away" in recorded.error

    recorded.status = "queued"
    recorded.save()

    def forced_stop(*args, **kwargs):
        raise SystemExit(1)  # the library's answer to a second Ctrl+C

    monkeypatch.setattr(jobs.supervise, "supervise", forced_stop)
    with pytest.raises(SystemExit):
        jobs.run_training.call(recorded.pk)
    recorded.refresh_from_db()
    assert recorded.status == "interrupted" and "stopped at once" in recorded.error


def test_a_run_whose_worker_died_is_resumed_not_cancelled(db, settings):
    settings.RUN_HEARTBEAT_TIMEOUT = 60
    run = queued_run(status="running", heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert not jobs.request_cancel(run)
    assert run.status == "interrupted"
    jobs.enqueue_resume(run)
    assert run.status == "queued"
