"""`python -m training train|generate`: the command line over the library."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.conftest import write_jsonl
from training import models
from training.__main__ import main
from training.config import CONFIG_FILENAME, CUTConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def test_train_writes_an_adapter_with_the_overrides(triples_file, model_dir, tmp_path, capsys):
    out = tmp_path / "out"

    code = main(
        [
            "train",
            f"--data={triples_file}",
            f"--base-model={model_dir}",
            f"--output={out}",
            "--max-steps=1",
            "--no-progress",
            "--threshold=1.3",
            "--gradient_accumulation_steps=2",
        ]
    )

    assert code == 0
    assert (out / "adapter_model.safetensors").is_file()
    saved = CUTConfig.load(out / CONFIG_FILENAME)
    assert saved.threshold == 1.3 and saved.gradient_accumulation_steps == 2
    assert saved.max_steps == 1 and saved.base_model == str(model_dir)
    assert "Done: {'steps': 1" in capsys.readouterr().out


def test_dry_run_prints_the_plan_without_loading_a_model(triples_file, monkeypatch, capsys):
    monkeypatch.setattr(models, "load_model_and_tokenizer", pytest.fail)

    code = main(["train", f"--data={triples_file}", "--dry-run", "--downsample=-1"])

    out = capsys.readouterr().out
    assert code == 0
    assert "12 records (8 positive, 4 negative)" in out
    assert "8 Align-P (after downsampling), 4 Align-N, 4 Misalign" in out
    assert "Steps: 2 optimizer steps (" in out


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("--treshold=1.2", "Unknown config key 'treshold'. Did you mean threshold?"),
        ("--threshold=0.5", "`threshold` must be at least 1"),
        ("stray", "overrides look like --name=value"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(triples_file, argument, message, capsys):
    code = main(["train", f"--data={triples_file}", "--dry-run", argument])

    assert code == 2
    assert message in capsys.readouterr().err


def test_a_missing_base_model_fails_before_anything_loads(triples_file, tmp_path, capsys):
    code = main(["train", f"--data={triples_file}", f"--base-model={tmp_path / 'nope'}"])

    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_generate_answers_prompts_with_the_trained_adapter(
    triples_file, model_dir, tmp_path, capsys
):
    out = tmp_path / "out"
    main(
        [
            "train",
            f"--data={triples_file}",
            f"--base-model={model_dir}",
            f"--output={out}",
            "--max-steps=1",
            "--no-progress",
        ]
    )
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"id": 1, "instruction": "Hi"}])
    answers = tmp_path / "answers.jsonl"

    code = main(
        [
            "generate",
            f"--adapter={out}",
            f"--data={prompts}",
            f"--output={answers}",
            "--max-new-tokens=3",
        ]
    )

    assert code == 0
    lines = [json.loads(line) for line in answers.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["id"] == 1 and "output" in lines[0]
    assert "Wrote 1 responses" in capsys.readouterr().out


@pytest.mark.slow
def test_two_processes_train_like_one_with_twice_the_accumulation(
    triples_file, model_dir, tmp_path
):
    """torchrun data parallel: each process takes every other micro-batch, and gradients
    are averaged once a step, so 2 processes x 1 micro-batch = 1 process x 2 micro-batches."""
    common = [
        f"--data={triples_file}",
        f"--base-model={model_dir}",
        "--no-progress",
        "--lora_dropout=0",  # dropout masks come from each process's own RNG stream
        "--micro_batch_size=2",
        "--warmup_steps=0",
        "--learning_rate=0.01",
        "--downsample=-1",
        "--checkpoint_every=2",  # a checkpoint gathers every process's random state
    ]
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2"]
    command += ["-m", "training", "train", *common, f"--output={tmp_path / 'two'}"]
    command += ["--gradient_accumulation_steps=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        main(["train", *common, f"--output={tmp_path / 'one'}", "--gradient_accumulation_steps=2"])
        == 0
    )

    two = load_file(tmp_path / "two" / "adapter_model.safetensors")
    one = load_file(tmp_path / "one" / "adapter_model.safetensors")
    assert two.keys() == one.keys()
    assert any(w.abs().sum() > 0 for n, w in one.items() if "lora_B" in n)  # it trained
    for name, weight in one.items():
        assert torch.allclose(two[name], weight, atol=1e-5), name
    assert done.stdout.count("Done:") == 1  # one process reports
    state = torch.load(
        tmp_path / "two" / "checkpoints" / "step-0000002" / "trainer_state.pt", weights_only=False
    )
    assert len(state["rng"]) == 2
