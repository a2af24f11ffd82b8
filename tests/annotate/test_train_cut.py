"""manage.py train_cut: snapshot judgments, train with a tiny local model, record the run."""

import hashlib
import json
from io import StringIO
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command

from annotate import models
from annotate.management.commands import train_cut as train_cut_command
from training import models as training_models
from training import trainer

TINY = ["--no-progress", "--warmup_steps=0", "--gradient_accumulation_steps=2", "--downsample=-1"]


def never_load(*args, **kwargs):
    raise AssertionError("the model must not load")


def train_cut(*args) -> str:
    out = StringIO()
    call_command("train_cut", *args, stdout=out)
    return out.getvalue()


def test_it_trains_and_records_a_succeeded_run(judged, model_dir, training_dir):
    output = train_cut("--base-model", str(model_dir), "--max-steps", "2", *TINY)

    run = models.TrainingRun.objects.get()
    assert run.status == "succeeded"
    assert run.output_dir == str(training_dir.resolve() / f"run-{run.pk}")
    assert run.base_model == str(model_dir)
    assert run.filters == {"status": "accepted", "round": None}
    assert (run.positive_count, run.negative_count) == (4, 2)
    snapshot = Path(run.snapshot_path)
    assert snapshot.parent == Path(run.output_dir)
    assert hashlib.sha256(snapshot.read_bytes()).hexdigest() == run.snapshot_sha256
    lines = [json.loads(line) for line in snapshot.read_text().splitlines()]
    assert sorted(line["id"] for line in lines) == sorted(j.pk for j in judged[:6])
    assert (Path(run.output_dir) / "adapter_config.json").is_file()
    assert run.config["max_steps"] == 2
    assert run.config["template"] == "chat"  # "auto", resolved by the trainer
    assert run.metrics["steps"] == 2
    assert run.metrics["loss"] > 0
    assert "stop_reason" in run.metrics
    assert run.started_at <= run.finished_at
    assert f"generate_responses --round 2 --adapter {run.output_dir}" in output


def test_it_trains_only_the_round_and_status_asked_for(judged, model_dir, tmp_path):
    out_dir = tmp_path / "mine"
    train_cut(
        "--base-model", str(model_dir), "--output", str(out_dir), "--status", "all",
        "--round", "1", "--max-steps", "1", *TINY,
    )  # fmt: skip
    run = models.TrainingRun.objects.get()
    assert run.status == "succeeded"
    assert run.output_dir == str(out_dir.resolve())
    assert run.filters == {"status": "all", "round": 1}
    assert (run.positive_count, run.negative_count) == (4, 3)


def test_a_wrong_model_path_fails_before_anything_loads(judged, tmp_path, monkeypatch):
    monkeypatch.setattr(training_models, "load_model_and_tokenizer", never_load)
    with pytest.raises(CommandError, match="does not exist"):
        train_cut("--base-model", str(tmp_path / "no-model"))
    with pytest.raises(CommandError, match="no config.json"):
        train_cut("--base-model", str(tmp_path))
    assert not models.TrainingRun.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "No accepted judgments to train on. Review some judgments first"),
        (["--round", "7", "--status", "all"], "No judgments in round 7 to train on."),
    ],
)
def test_an_empty_selection_is_refused(db, model_dir, args, message):
    with pytest.raises(CommandError, match=message):
        train_cut("--base-model", str(model_dir), *args)
    assert not models.TrainingRun.objects.exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("--threshold=abc", "'threshold' must be a number"),
        ("--threshold=0.5", "`threshold` must be at least 1"),
        ("--no_such_key=1", "Unknown config key 'no_such_key'"),
        ("--data=elsewhere.jsonl", "Set data with the command's options"),
    ],
)
def test_a_bad_override_is_refused(judged, model_dir, monkeypatch, override, message):
    monkeypatch.setattr(training_models, "load_model_and_tokenizer", never_load)
    with pytest.raises(CommandError, match=message):
        train_cut("--base-model", str(model_dir), override)
    assert not models.TrainingRun.objects.exists()


def test_an_override_needs_an_equals_sign(judged, model_dir):
    with pytest.raises(CommandError, match="overrides look like --threshold=1.2"):
        train_cut("--base-model", str(model_dir), "--threshold", "1.2")


def test_a_training_error_is_recorded_on_the_run(judged, model_dir, training_dir):
    with pytest.raises(CommandError, match="no_such_proj"):
        train_cut("--base-model", str(model_dir), "--lora_target_modules=no_such_proj", *TINY)
    run = models.TrainingRun.objects.get()
    assert run.status == "failed"
    assert "no_such_proj" in run.error
    assert run.finished_at is not None
    assert Path(run.snapshot_path).is_file()  # the data of the failed run is kept


def test_an_output_directory_in_use_is_refused(judged, model_dir, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "adapter_config.json").write_text("{}")
    with pytest.raises(CommandError, match="is not empty"):
        train_cut("--base-model", str(model_dir), "--output", str(tmp_path / "taken"))
    assert not models.TrainingRun.objects.exists()


def test_a_dry_run_prints_the_plan_and_records_nothing(
    judged, model_dir, training_dir, monkeypatch
):
    monkeypatch.setattr(training_models, "load_model_and_tokenizer", never_load)
    output = train_cut("--base-model", str(model_dir), "--dry-run", "--downsample=-1")

    assert "6 records (4 positive, 2 negative)" in output
    assert "4 Align-P (after downsampling), 2 Align-N, 2 Misalign" in output
    assert "Steps: 1 optimizer step (" in output
    assert "optimizer steps" not in output
    assert "tokens an epoch" in output
    assert "nothing was written" in output
    if not torch.cuda.is_available():
        assert "No GPU found: training on the CPU (slow)." in output
    assert not models.TrainingRun.objects.exists()
    assert not training_dir.exists()


def test_resume_finishes_an_interrupted_run(judged, model_dir, training_dir, monkeypatch):
    real_train = trainer.train

    def crash_after_training(config, **kwargs):
        real_train(config, **kwargs)
        raise RuntimeError("the machine went away")

    monkeypatch.setattr(trainer, "train", crash_after_training)
    args = ["--base-model", str(model_dir), "--max-steps", "2", "--checkpoint_every=1", *TINY]
    with pytest.raises(CommandError, match="the machine went away"):
        train_cut(*args)
    assert models.TrainingRun.objects.get().status == "failed"

    monkeypatch.setattr(trainer, "train", real_train)
    output = train_cut("--resume", "--no-progress")

    run = models.TrainingRun.objects.get()
    assert "from its latest checkpoint" in output
    assert "Resumed from" in output and "at step 2" in output
    assert run.status == "succeeded"
    assert run.error == ""
    assert run.metrics["steps"] == 2


def test_resume_refuses_a_changed_snapshot(judged, model_dir, training_dir, monkeypatch):
    monkeypatch.setattr(trainer, "train", never_load)
    with pytest.raises(CommandError):
        train_cut("--base-model", str(model_dir), *TINY)
    run = models.TrainingRun.objects.get()
    with open(run.snapshot_path, "a") as f:
        f.write("\n")
    with pytest.raises(CommandError, match="missing or changed"):
        train_cut("--resume")


def test_resume_needs_a_run_to_resume(db):
    with pytest.raises(CommandError, match="no failed or interrupted training run"):
        train_cut("--resume")


def test_every_option_has_help_text():
    parser = train_cut_command.Command().create_parser("manage.py", "train_cut")
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help text"
    assert "Which judgments to train on" in parser.format_help()
