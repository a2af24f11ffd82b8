"""Training and generation as jobs on workers (Django's tasks API with django-tasks-db).

The web process and the commands call the enqueue functions; a worker
(`manage.py db_worker --queue-name gpu`, any machine that reaches the database) runs the
task functions. The queue lives in the app's database, and the library's row locks
(PostgreSQL SKIP LOCKED, SQLite's exclusive writer lock) give each job to one worker.

    enqueue_training(run)        a recorded TrainingRun (status queued, snapshot written)
    enqueue_generation(gen_run)  a recorded GenerationRun
    request_cancel(run)          either kind: queued -> cancelled now, running -> at the next step
    enqueue_resume(run)          an interrupted, failed or cancelled run, from its checkpoint
    sweep_stale()                running jobs whose worker stopped heartbeating -> interrupted

This module imports neither torch nor training: the web process imports it.
"""

import contextlib
import json
import shutil
import socket
import sys
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks_db.models import DBTaskResult

from annotate import series, supervise, workers
from annotate.models import GenerationRun, Job, JobStatus, TrainingRun

QUEUE = "gpu"
# Written by the trainer (training/trainer.py), read here without importing it.
METRICS_FILENAME = series.METRICS_FILENAME
RUN_FILENAME = "run.json"
CONFIG_FILENAME = "cut_config.json"
CHECKPOINT_DIR = "checkpoints"
STATE_FILENAME = "trainer_state.pt"
# Config keys the job passes as the command's own options, never as --name=value; the
# training page (training_forms) and train_cut refuse them as overrides.
RESERVED_KEYS = {"data", "output_dir", "base_model", "resume_from"}
EMBEDDED_PREFIX = "embedded:"


class JobError(Exception):
    """The job cannot be enqueued (or resumed) in its current state; the message says why."""


# --- the web side ------------------------------------------------------------------------


def enqueue_training(run: TrainingRun) -> None:
    """Queue a recorded run on the gpu queue. A run is enqueued at most once (a double
    click, two API calls): a second call raises JobError."""
    _enqueue(run, run_training, resume=False)


def enqueue_generation(generation_run: GenerationRun) -> None:
    """Queue a recorded generation run (at most once, as enqueue_training)."""
    _enqueue(generation_run, run_generation, resume=False)


def enqueue_resume(run: TrainingRun | GenerationRun) -> None:
    """Queue an interrupted, failed or cancelled job again. Training continues from its
    latest checkpoint on the same data snapshot; generation fills only what is missing."""
    sweep_stale()  # a run whose worker died is resumable, not "running"
    kind = run_training if isinstance(run, TrainingRun) else run_generation
    _enqueue(run, kind, resume=True)


def request_cancel(run: TrainingRun | GenerationRun) -> bool:
    """Cancel: a queued job at once; a running one stops at its next optimizer step, keeps
    a checkpoint and shows as cancelled. False when the job had already finished (or its
    worker died: it is interrupted then, and can be resumed)."""
    sweep_stale()
    return run.request_cancel()


def _enqueue(job: Job, function, *, resume: bool) -> None:
    model = type(job)
    with transaction.atomic():
        locked = model.objects.select_for_update().get(pk=job.pk)
        if resume:
            if not locked.can_resume:
                raise JobError(
                    f"{locked} is {locked.status}: only an interrupted, failed or "
                    "cancelled job can be resumed."
                )
            model.objects.filter(pk=job.pk).update(
                status=JobStatus.QUEUED, cancel_requested=False, error="", finished_at=None
            )
        elif locked.status != JobStatus.QUEUED or locked.task_id:
            raise JobError(
                f"{locked} is already {locked.get_status_display().lower()}"
                f"{' (enqueued)' if locked.task_id else ''}; it cannot start twice."
            )
        if isinstance(locked, TrainingRun) and not (locked.snapshot_path and locked.output_dir):
            raise JobError(f"{locked} has no data snapshot or output directory to train from.")
        result = function.enqueue(job.pk, resume=resume)
        model.objects.filter(pk=job.pk).update(task_id=str(result.id))
    job.refresh_from_db()


def sweep_stale() -> int:
    """Mark running jobs whose worker stopped heartbeating (SIGKILL, a machine gone) as
    interrupted. One UPDATE per kind: cheap enough for every page that lists runs."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.RUN_HEARTBEAT_TIMEOUT)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    message = (
        f"Its worker stopped sending heartbeats for more than {settings.RUN_HEARTBEAT_TIMEOUT} "
        "seconds (killed, or its machine went away). Resume continues from the last checkpoint."
    )
    swept = 0
    for model in (TrainingRun, GenerationRun):
        found = dict(
            model.objects.filter(stale, status=JobStatus.RUNNING).values_list("pk", "task_id")
        )
        if not found:
            continue
        swept += model.objects.filter(stale, pk__in=found, status=JobStatus.RUNNING).update(
            status=JobStatus.INTERRUPTED, error=message, finished_at=now
        )
        # The library's row of the lost task would say RUNNING for ever.
        DBTaskResult.objects.filter(
            id__in=[t for t in found.values() if t], status=TaskResultStatus.RUNNING
        ).update(
            status=TaskResultStatus.FAILED,
            finished_at=now,
            exception_class_path="annotate.jobs.WorkerLost",
            traceback=message,
        )
    return swept


def page_path(run: TrainingRun) -> str:
    return reverse("annotate:training-run", args=[run.pk])


def page_url(run: TrainingRun) -> str:
    return settings.SITE_URL + page_path(run)


# --- the worker side ---------------------------------------------------------------------


@task(queue_name=QUEUE)
def run_training(run_id: int, resume: bool = False) -> str:
    """Train in a child process, following its metrics.jsonl into the run's series."""
    run = _claim(TrainingRun, run_id)
    if run is None:
        return "skipped: not queued (cancelled, or taken by another worker)"
    host = workers.host_name()
    with _settled(run, host):
        try:
            command = training_command(run, resume=resume, host=host)
        except JobError as error:
            _finish(run, JobStatus.FAILED, error=str(error))
            return "failed"
        follower = series.MetricsFollower(run)
        outcome = supervise.supervise(command, lambda log: _tick(run, log, follower.read()))
        return _finish_training(run, outcome, host)


@task(queue_name=QUEUE)
def run_generation(run_id: int, resume: bool = False) -> str:
    """Generate in a child (`manage.py generate_responses --job N`), which saves the
    responses and the counts as it goes; this supervises it."""
    run = _claim(GenerationRun, run_id)
    if run is None:
        return "skipped: not queued (cancelled, or taken by another worker)"
    host = workers.host_name()
    command = [
        sys.executable,
        str(Path(settings.BASE_DIR) / "manage.py"),
        "generate_responses",
        "--job",
        str(run.pk),
    ]
    with _settled(run, host):
        outcome = supervise.supervise(command, lambda log: _tick(run, log, {}))
    if outcome.stop == "lost":
        return "lost"
    if outcome.returncode == 0:
        _finish(run, JobStatus.SUCCEEDED)
        from annotate import compare  # compare imports this module

        compare.refresh_after_generation(run)
    elif outcome.stop == "cancel":
        _finish(run, JobStatus.CANCELLED, error="Cancelled; the responses saved so far are kept.")
    elif outcome.stop == "shutdown":
        _finish(
            run,
            JobStatus.INTERRUPTED,
            error=f"The worker on {host} was stopped. Resume fills the missing responses.",
        )
    else:
        _finish(run, JobStatus.FAILED, error=_failure(outcome, "Generation", host))
    return run.status


@contextlib.contextmanager
def _settled(job: Job, host: str):
    """A job never stays "running" because the supervising code itself went wrong: a
    forced stop of the worker (a second Ctrl+C) leaves it interrupted, an error failed."""
    try:
        yield
    except Exception as error:
        _finish(job, JobStatus.FAILED, error=f"The job failed on {host}: {error!r}")
        raise
    except BaseException:
        _finish(
            job,
            JobStatus.INTERRUPTED,
            error=f"The worker on {host} was stopped at once. Resume continues from the last "
            "checkpoint.",
        )
        raise


def _claim(model: type[Job], pk: int) -> Job | None:
    """queued -> running, by this worker; None if another got it or it was cancelled."""
    now = timezone.now()
    claimed = model.objects.filter(pk=pk, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        worker_host=workers.host_name(),
        heartbeat_at=now,
        cancel_requested=False,
        finished_at=None,
    )
    if not claimed:
        return None
    model.objects.filter(pk=pk, started_at__isnull=True).update(started_at=now)
    return model.objects.get(pk=pk)


def _tick(job: Job, log: str, changes: dict) -> str:
    """Heartbeat + progress; returns why the child should stop ("" to go on)."""
    model = type(job)
    alive = model.objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        heartbeat_at=timezone.now(), log_tail=log, **changes
    )
    if not alive:  # swept as interrupted after a long stall, or changed by hand
        return "lost"
    if model.objects.filter(pk=job.pk, cancel_requested=True).exists():
        return "cancel"
    return ""


def _finish(job: Job, status: str, *, error: str = "", **changes) -> None:
    type(job).objects.filter(pk=job.pk, status=JobStatus.RUNNING).update(
        status=status, error=error, finished_at=timezone.now(), **changes
    )
    job.refresh_from_db()


def _failure(outcome: supervise.Outcome, what: str, host: str) -> str:
    return f"{what} exited with status {outcome.returncode} on {host}:\n{outcome.tail()}"


def _finish_training(run: TrainingRun, outcome: supervise.Outcome, host: str) -> str:
    output = Path(run.output_dir)
    if outcome.stop == "lost":
        return "lost"
    if outcome.returncode == 0:
        record = _read_json(output / RUN_FILENAME) or {}
        metrics = {
            **record.get("metrics", {}),
            "stopped_early": record.get("stopped_early", False),
            "stop_reason": record.get("stop_reason", ""),
        }
        changes = {"metrics": metrics}
        used = _read_json(output / CONFIG_FILENAME)
        if used:  # the config as used: "auto" template resolved
            changes["config"] = used
        _finish(run, JobStatus.SUCCEEDED, **changes)
    elif outcome.stop == "cancel":
        _finish(
            run,
            JobStatus.CANCELLED,
            error=f"Cancelled at step {run.step}. Resume continues from the checkpoint.",
        )
    elif outcome.stop == "shutdown" or outcome.returncode == supervise.STOPPED_EXIT:
        _finish(
            run,
            JobStatus.INTERRUPTED,
            error=f"The worker on {host} was stopped at step {run.step}. Resume continues "
            "from the last checkpoint.",
        )
    else:
        _finish(run, JobStatus.FAILED, error=_failure(outcome, "Training", host))
    return run.status


def training_command(run: TrainingRun, *, resume: bool, host: str) -> list[str]:
    """The child's command line, after the checks that fail fast on this worker."""
    snapshot = Path(run.snapshot_path)
    if not snapshot.is_file():
        raise JobError(
            f"The data snapshot {snapshot} is not on {host}. Workers read it from "
            "TRAINING_DIR: give every machine the same TRAINING_DIR on a shared filesystem."
        )
    from training import data as training_data  # noqa: PLC0415 (the worker only)
    from training import models as training_models  # noqa: PLC0415

    if training_data.file_sha256(snapshot) != run.snapshot_sha256:
        raise JobError(f"The data snapshot {snapshot} on {host} changed since it was recorded.")
    base = None if run.base_model.startswith(EMBEDDED_PREFIX) else run.base_model or None
    try:
        training_models.check_base_model(base)
    except ValueError as error:
        raise JobError(f"On {host}: {error}") from None
    processes = _processes(host)
    if processes > 1:
        # Data parallel on the box's GPUs; a free rendezvous port, so two workers on one
        # box (each with its CUDA_VISIBLE_DEVICES) do not collide on accelerate's default.
        launcher = [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", str(processes), "--num_machines", "1",
            "--main_process_port", str(_free_port()), "-m", "training", "train",
        ]  # fmt: skip
    else:
        launcher = [sys.executable, "-m", "training", "train"]
    args = ["--data", str(snapshot), "--output", run.output_dir, "--no-progress"]
    if base:
        args += ["--base-model", base]
    if resume and has_checkpoint(run.output_dir):
        args += ["--resume", "latest"]
    for key, value in sorted(run.config.items()):
        if key not in RESERVED_KEYS:
            args.append(f"--{key}={_override_text(value)}")
    return launcher + args


def _processes(host: str) -> int:
    wanted = settings.TRAINING_NUM_PROCESSES
    gpus = gpu_count()
    if wanted > max(gpus, 1):
        raise JobError(f"TRAINING_NUM_PROCESSES is {wanted} but {host} has {gpus} GPUs.")
    return wanted or max(gpus, 1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gpu_count() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    import torch  # noqa: PLC0415 (the worker only)

    return torch.cuda.device_count()


def has_checkpoint(output_dir: str) -> bool:
    checkpoints = Path(output_dir) / CHECKPOINT_DIR
    return any((p / STATE_FILENAME).is_file() for p in checkpoints.glob("step-*"))


def _override_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
