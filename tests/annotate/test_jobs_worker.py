"""Training and generation jobs run by a real `manage.py db_worker` subprocess.

Each test starts its own worker on the test database (a file on SQLite, test_* on
PostgreSQL; CI runs both) and trains a tiny local model in the worker's child process.
"""

import signal
import socket
from io import StringIO
from pathlib import Path

import pytest
import torch
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from annotate import generation, jobs, models, workers
from tests.workers import wait_for

pytestmark = pytest.mark.slow

TINY = ["--no-progress", "--warmup_steps=0", "--gradient_accumulation_steps=2", "--downsample=-1"]
# Three optimizer steps an epoch over the six accepted judgments; many epochs make a run
# long enough to be stopped in the middle.
LONG = ["--max-steps", "5000", "--num_epochs=2000", "--checkpoint_every=1", "--eval_every=0"]
# A constant learning rate: a run stopped and resumed with another max_steps is the same
# run as one that was never stopped.
CONSTANT = ["--lr_scheduler=constant"]


@pytest.fixture
def judged(transactional_db, annotator, round1, make_responses) -> list[models.Judgment]:
    """Six accepted judgments in round 1, two of them negative."""
    return [
        models.Judgment.objects.create(
            response=response,
            annotator=annotator,
            verdict="negative" if i % 3 == 0 else "positive",
            critique=f"Answer {i} is wrong." if i % 3 == 0 else "",
            review_state="accepted",
        )
        for i, response in enumerate(make_responses(6, round=round1))
    ]


def train_cut(*args) -> str:
    out = StringIO()
    call_command("train_cut", *args, stdout=out, stderr=out)
    return out.getvalue()


def status(run) -> str:
    run.refresh_from_db()
    return run.status


def children_of(output_dir: str) -> list[int]:
    """Processes whose command line names the run's output directory (its trainer)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if output_dir in cmdline and "training" in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def test_a_run_queued_by_train_cut_is_trained_by_a_worker(
    judged, model_dir, training_dir, start_worker
):
    output = train_cut("--base-model", str(model_dir), "--max-steps", "3", "--queue", *TINY)

    run = models.TrainingRun.objects.get()
    assert run.status == "queued"
    assert f"Training run {run.pk} queued on the gpu queue." in output
    assert f"/training/{run.pk}/" in output
    assert "No worker is listening on the gpu queue" in output
    assert Path(run.snapshot_path).is_file()

    worker = start_worker()
    wait_for(lambda: status(run) in models.Job.FINISHED, what="the run to finish")

    assert run.status == "succeeded", run.error + worker.output()
    assert [point["step"] for point in run.series] == [1, 2, 3]
    assert all(point["loss"] > 0 for point in run.series)
    assert run.total_steps == 3 and run.plan["records"] == 6
    assert run.worker_host == socket.gethostname()
    assert run.heartbeat_at is not None and run.started_at <= run.finished_at
    assert run.metrics["steps"] == 3
    assert run.config["template"] == "chat"  # as used: "auto" resolved
    assert (Path(run.output_dir) / "adapter_config.json").is_file()
    assert "Saved the adapter" in run.log_tail
    task = DBTaskResult.objects.get(id=run.task_id)
    assert task.status == "SUCCESSFUL" and len(task.worker_ids) == 1
    assert not children_of(run.output_dir)


def test_a_worker_says_it_is_listening_while_it_runs(transactional_db, start_worker):
    assert not workers.alive("gpu"), list(models.Worker.objects.values())
    worker = start_worker(queues="gpu")
    wait_for(lambda: workers.alive("gpu"), what="the worker's heartbeat")
    assert not workers.alive("default")
    row = models.Worker.objects.get(pid=worker.pid)
    assert (row.host, row.queue_names) == (socket.gethostname(), ["gpu"])

    worker.stop()
    assert not models.Worker.objects.filter(pid=worker.pid).exists(), worker.output()
    assert not workers.alive("gpu"), list(models.Worker.objects.values())


def test_a_killed_worker_leaves_an_interrupted_run_that_resumes_to_the_end(
    judged, model_dir, training_dir, start_worker, settings
):
    train_cut("--base-model", str(model_dir), "--queue", *TINY, *LONG, *CONSTANT)
    run = models.TrainingRun.objects.get()
    worker = start_worker()
    wait_for(lambda: run.refresh_from_db() or len(run.series) >= 2, what="two steps")
    trainers = children_of(run.output_dir)
    assert trainers

    worker.signal(signal.SIGKILL)
    worker.wait()
    # The trainer does not outlive its worker.
    wait_for(lambda: not children_of(run.output_dir), what="the trainer to end")
    assert status(run) == "running"  # nobody said otherwise yet
    settings.RUN_HEARTBEAT_TIMEOUT = 1
    wait_for(lambda: jobs.sweep_stale() or status(run) == "interrupted", what="the sweep")
    assert status(run) == "interrupted"
    assert "stopped sending heartbeats" in run.error
    assert jobs.has_checkpoint(run.output_dir)
    # Where training really stopped: the trainer ends its step and checkpoints when its
    # worker dies, possibly a few steps past the last series its worker could write.
    from training.checkpoints import find_checkpoint

    reached = int(find_checkpoint(Path(run.output_dir), "latest").name.removeprefix("step-"))
    assert reached >= run.step

    # Resume, and finish two steps after the checkpoint.
    run.config["max_steps"] = reached + 2
    run.save(update_fields=["config"])
    jobs.enqueue_resume(run)
    assert status(run) == "queued"
    start_worker()
    wait_for(lambda: status(run) in models.Job.FINISHED, what="the resumed run")
    assert run.status == "succeeded", run.error
    assert "Resumed from" in run.log_tail
    steps = [point["step"] for point in run.series]
    assert steps == list(range(1, reached + 3))
    assert run.metrics["steps"] == reached + 2

    # The same adapter as a run that was never interrupted.
    from safetensors.torch import load_file

    again = training_dir / "again"
    train_cut("--base-model", str(model_dir), "--output", str(again), *TINY, *LONG, *CONSTANT,
              "--max-steps", str(reached + 2))  # fmt: skip
    resumed = load_file(Path(run.output_dir) / "adapter_model.safetensors")
    straight = load_file(again / "adapter_model.safetensors")
    assert resumed.keys() == straight.keys()
    for name, tensor in straight.items():
        assert torch.allclose(resumed[name], tensor, atol=1e-6), name


def test_cancel_stops_a_running_run_and_keeps_a_checkpoint(
    judged, model_dir, training_dir, start_worker
):
    train_cut("--base-model", str(model_dir), "--queue", *TINY, *LONG)
    run = models.TrainingRun.objects.get()
    start_worker()
    wait_for(lambda: run.refresh_from_db() or len(run.series) >= 2, what="two steps")

    assert jobs.request_cancel(run)
    wait_for(lambda: status(run) in models.Job.FINISHED, what="the cancelled run")
    assert run.status == "cancelled"
    assert "Resume continues from the checkpoint" in run.error
    assert "on request (signal)" in run.log_tail  # the trainer stopped after a step
    assert jobs.has_checkpoint(run.output_dir)
    assert not children_of(run.output_dir)
    assert run.can_resume


def test_sigterm_makes_the_worker_stop_its_run_as_interrupted_and_exit(
    judged, model_dir, training_dir, start_worker
):
    train_cut("--base-model", str(model_dir), "--queue", *TINY, *LONG)
    run = models.TrainingRun.objects.get()
    worker = start_worker()
    wait_for(lambda: run.refresh_from_db() or len(run.series) >= 2, what="two steps")

    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=120) == 0
    assert status(run) == "interrupted"
    assert f"The worker on {socket.gethostname()} was stopped" in run.error
    assert jobs.has_checkpoint(run.output_dir)
    assert not children_of(run.output_dir)
    assert not models.Worker.objects.exists()


def test_a_base_model_missing_on_the_worker_fails_the_run_naming_path_and_host(
    judged, tmp_path, training_dir, start_worker
):
    missing = tmp_path / "models" / "gone"
    output = train_cut("--base-model", str(missing), "--queue", *TINY)
    assert "Warning:" in output and "does not exist" in output
    run = models.TrainingRun.objects.get()
    assert run.status == "queued"

    start_worker()
    wait_for(lambda: status(run) in models.Job.FINISHED, what="the run to fail")
    assert run.status == "failed"
    assert str(missing) in run.error
    assert socket.gethostname() in run.error


def test_a_generation_job_fills_a_round(transactional_db, model_dir, start_worker):
    prompts = models.Prompt.objects.bulk_create(
        models.Prompt(source="seed", external_id=str(i), instruction=f"Q{i}") for i in range(3)
    )
    job = generation.new_generation_run(
        2, base_model=str(model_dir), prompts="source=seed", max_new_tokens=4
    )
    jobs.enqueue_generation(job)
    start_worker()
    wait_for(lambda: status(job) in models.Job.FINISHED, what="the generation job")

    assert job.status == "succeeded", job.error
    responses = models.Response.objects.filter(round=2)
    assert sorted(r.prompt_id for r in responses) == [p.pk for p in prompts]
    assert (job.prompt_count, job.done_count) == (3, 3)
    assert job.created_count + job.empty_count == 3
    assert job.created_count == responses.count()
    assert models.Round.objects.get(pk=2).base_model == str(model_dir)


def test_two_workers_run_each_job_once(transactional_db, model_dir, start_worker):
    models.Prompt.objects.bulk_create(
        models.Prompt(source="seed", external_id=str(i), instruction=f"Q{i}") for i in range(2)
    )
    runs = [
        generation.new_generation_run(n, base_model=str(model_dir), max_new_tokens=2)
        for n in (3, 4)
    ]
    for run in runs:
        jobs.enqueue_generation(run)
    both = [start_worker(), start_worker()]
    wait_for(lambda: models.Worker.objects.count() == 2, what="both workers")
    for run in runs:
        wait_for(lambda run=run: status(run) in models.Job.FINISHED, what=str(run))
        assert run.status == "succeeded", run.error
        assert len(DBTaskResult.objects.get(id=run.task_id).worker_ids) == 1
        assert models.Response.objects.filter(round=run.round_number).count() <= 2
        started = f"Task id={run.task_id} path=annotate.jobs.run_generation state=RUNNING"
        assert sum(worker.output().count(started) for worker in both) == 1
    assert DBTaskResult.objects.count() == 2


def test_a_cancelled_queued_run_is_skipped_by_the_worker(judged, model_dir, training_dir):
    train_cut("--base-model", str(model_dir), "--queue", *TINY)
    run = models.TrainingRun.objects.get()
    assert jobs.request_cancel(run)
    assert status(run) == "cancelled"

    assert jobs.run_training.call(run.pk).startswith("skipped")
    assert status(run) == "cancelled"


def test_a_cancelled_generation_job_resumes_filling_only_what_is_missing(
    transactional_db, model_dir, start_worker
):
    models.Prompt.objects.bulk_create(
        models.Prompt(source="seed", external_id=str(i), instruction=f"Question {i}?")
        for i in range(150)
    )
    job = generation.new_generation_run(
        5, base_model=str(model_dir), max_new_tokens=32, batch_size=4
    )
    jobs.enqueue_generation(job)
    start_worker()
    wait_for(lambda: status(job) != "queued", what="the job to start")
    assert jobs.request_cancel(job)
    wait_for(lambda: status(job) in models.Job.FINISHED, what="the cancelled job")
    assert job.status == "cancelled"
    kept = models.Response.objects.filter(round=5).count()
    assert kept < 150

    jobs.enqueue_resume(job)
    wait_for(lambda: status(job) in models.Job.FINISHED, timeout=300, what="the resumed job")
    assert job.status == "succeeded", job.error
    assert job.prompt_count == 150 - kept  # only what was missing
    assert models.Response.objects.filter(round=5).count() == 150 - job.empty_count
    assert models.Response.objects.filter(round=5).values("prompt").distinct().count() == (
        models.Response.objects.filter(round=5).count()
    )
