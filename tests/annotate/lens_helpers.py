"""Building stored lens results for the lens tests, as a worker would store them."""

import contextlib
import math
import os
import subprocess
import sys
import time

from django.conf import settings
from django_tasks_db.models import DBTaskResult

from annotate import lens, models
from tests.workers import database_url


def tokens_for(text: str, flagged: dict[str, float]) -> list[dict]:
    """Tokens over the whole text, split on spaces; those whose text is a key of `flagged`
    are flagged with that ratio (the others get ratio 1)."""
    tokens, pos = [], 0
    for piece in text.split(" "):
        end = pos + len(piece)
        if piece:
            ratio = flagged.get(piece, 1.0)
            tokens.append(
                {"start": pos, "end": end, "log_ratio": math.log(ratio), "flagged": ratio > 1.1}
            )
        pos = end + 1
    return tokens


def result_for(text: str, tokens: list[dict], model: str = "tiny-model") -> dict:
    flagged = [[t["start"], t["end"]] for t in tokens if t["flagged"]]
    return {
        "model": model,
        "threshold": 1.1,
        "flagged_spans": flagged,
        "flagged_share": len(flagged) / len(tokens) if tokens else 0.0,
        "tokens": tokens,
    }


def store_lens(judgment: models.Judgment, flagged: dict[str, float]) -> models.LensResult:
    tokens = tokens_for(judgment.response.text, flagged)
    return lens.store(judgment, judgment.critique, result_for(judgment.response.text, tokens))


def finish(job_id: str, return_value=None, failed: str | None = None) -> None:
    """Mark a queued job done, as the worker does when it finishes."""
    row = DBTaskResult.objects.get(pk=job_id)
    if failed:
        row.set_failed(ValueError(failed))
    else:
        row.set_successful(return_value)


@contextlib.contextmanager
def lens_worker_process(base_model, timeout: float = 60.0, **env_settings: str):
    """A real `manage.py db_worker --queue-name lens` on the test database, scoring with
    `base_model` (and other LENS_* settings given as keywords); yields once its heartbeat
    says it listens, stops it afterwards."""
    from annotate import workers

    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "LENS_BASE_MODEL": str(base_model),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **env_settings,
    }
    command = [
        sys.executable,
        "manage.py",
        "db_worker",
        "--queue-name",
        "lens",
        "--interval",
        "0.05",
        "--no-startup-delay",
        "--no-reload",
    ]
    process = subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: workers.alive("lens") or process.poll() is not None, timeout)
        if process.poll() is not None:
            raise AssertionError(f"the worker exited: {process.stdout.read()}")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(condition, timeout: float, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"still not true after {timeout} s")
