"""An inline train_cut run keeps its page live: series, plan, heartbeat; Cancel stops it."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from annotate import jobs, models
from training import trainer

TINY = ["--no-progress", "--warmup_steps=0", "--gradient_accumulation_steps=2", "--downsample=-1"]


@pytest.fixture
def judged(annotator, round1, make_responses, settings, tmp_path) -> None:
    settings.TRAINING_DIR = tmp_path / "runs"
    for i, response in enumerate(make_responses(6, round=round1)):
        models.Judgment.objects.create(
            response=response,
            annotator=annotator,
            verdict="negative" if i % 3 == 0 else "positive",
            critique=f"Answer {i} is wrong." if i % 3 == 0 else "",
            review_state="accepted",
        )


def test_an_inline_run_records_its_series_and_plan(judged, model_dir):
    call_command("train_cut", "--base-model", str(model_dir), "--max-steps", "3", *TINY,
                 stdout=StringIO())  # fmt: skip
    run = models.TrainingRun.objects.get()
    assert run.status == "succeeded"
    assert [p["step"] for p in run.series] == [1, 2, 3]
    assert run.total_steps == 3
    assert run.plan["records"] == 6
    assert run.heartbeat_at is not None and run.worker_host


def test_cancel_on_the_page_stops_an_inline_run_with_a_checkpoint(
    judged, model_dir, settings, monkeypatch
):
    settings.JOB_FLUSH_SECONDS = 0
    real_train = trainer.train

    def train_and_press_cancel_after_step_two(config, *, callbacks, **kwargs):
        on_step = callbacks.on_step

        def step(record):
            on_step(record)
            if record["step"] == 2:  # someone presses Cancel on the run's page
                jobs.request_cancel(models.TrainingRun.objects.get())

        callbacks.on_step = step
        return real_train(config, callbacks=callbacks, **kwargs)

    monkeypatch.setattr(trainer, "train", train_and_press_cancel_after_step_two)
    with pytest.raises(CommandError, match="Cancelled at step 2") as raised:
        call_command(
            "train_cut", "--base-model", str(model_dir), "--max-steps", "50", "--num_epochs=20",
            "--checkpoint_every=100", *TINY, stdout=StringIO(),
        )  # fmt: skip
    assert raised.value.returncode == 75
    run = models.TrainingRun.objects.get()
    assert run.status == "cancelled"
    assert run.step == 2
    assert jobs.has_checkpoint(run.output_dir)
    assert run.can_resume
