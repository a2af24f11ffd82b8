"""manage.py generate_responses: a new round of responses from a tiny local model."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from peft import LoraConfig, get_peft_model

from annotate import models
from training import models as training_models
from training.config import CONFIG_FILENAME, CUTConfig


@pytest.fixture
def adapter_dir(model_dir, tmp_path) -> Path:
    model, _ = training_models.load_model_and_tokenizer(str(model_dir))
    lora = get_peft_model(model, LoraConfig(r=2, target_modules=["up_proj"]))
    path = tmp_path / "run-5"
    lora.save_pretrained(path)
    CUTConfig(base_model=str(model_dir), template="alpaca", output_dir=str(path)).save(
        path / CONFIG_FILENAME
    )
    return path


@pytest.fixture
def prompts(db) -> list[models.Prompt]:
    return models.Prompt.objects.bulk_create(
        models.Prompt(source="seed" if i < 3 else "other", external_id=str(i), instruction=f"Q{i}")
        for i in range(5)
    )


def generate(*args) -> str:
    out = StringIO()
    call_command("generate_responses", *args, "--max-new-tokens", "4", stdout=out)
    return out.getvalue()


def test_it_fills_a_round_from_a_base_model(model_dir, prompts):
    output = generate("--round", "1", "--base-model", str(model_dir), "--overlap", "2")

    round = models.Round.objects.get(pk=1)
    assert round.base_model == str(model_dir)
    assert round.adapter == ""
    responses = models.Response.objects.filter(round=round)
    assert sorted(r.prompt_id for r in responses) == [p.pk for p in prompts]
    assert {r.generator for r in responses} == {"tiny-base"}
    assert {r.overlap for r in responses} == {2}
    assert all(r.text.strip() for r in responses)
    assert "Round 1: 5 new responses." in output


def test_running_it_again_adds_no_duplicates(model_dir, prompts):
    generate("--round", "1", "--base-model", str(model_dir), "--limit", "2")
    output = generate("--round", "1", "--base-model", str(model_dir), "--limit", "2")
    assert models.Response.objects.filter(round=1).count() == 2
    assert "already has a response to every selected prompt" in output

    generate("--round", "1", "--base-model", str(model_dir))
    assert models.Response.objects.filter(round=1).count() == 5


def test_it_generates_with_an_adapter_and_links_its_training_run(adapter_dir, model_dir, prompts):
    run = models.TrainingRun.objects.create(output_dir=str(adapter_dir), status="succeeded")

    generate("--round", "2", "--adapter", str(adapter_dir), "--prompts", "source=seed")

    round = models.Round.objects.get(pk=2)
    assert round.adapter == str(adapter_dir)
    assert round.training_run == run
    assert round.base_model == str(model_dir)  # from the adapter's saved config
    responses = models.Response.objects.filter(round=round)
    assert sorted(r.prompt_id for r in responses) == [p.pk for p in prompts[:3]]
    assert {r.generator for r in responses} == {"run-5"}


def test_it_takes_the_prompts_of_an_earlier_round(model_dir, prompts):
    round1 = models.Round.objects.create(number=1)
    models.Response.objects.create(prompt=prompts[4], text="old", round=round1)
    models.Response.objects.create(prompt=prompts[4], text="older", round=round1)

    generate("--round", "2", "--base-model", str(model_dir), "--prompts", "round=1")

    assert [r.prompt_id for r in models.Response.objects.filter(round=2)] == [prompts[4].pk]


def test_a_bad_adapter_path_fails_before_anything_loads(prompts, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the model must not load")

    monkeypatch.setattr(training_models, "load_model_and_tokenizer", never)
    with pytest.raises(CommandError, match="does not exist"):
        generate("--round", "3", "--adapter", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="no adapter_config.json"):
        generate("--round", "3", "--adapter", str(tmp_path))
    assert not models.Round.objects.filter(pk=3).exists()


def test_a_bad_base_model_path_fails_before_anything_loads(prompts, tmp_path):
    with pytest.raises(CommandError, match="no config.json"):
        generate("--round", "3", "--base-model", str(tmp_path))
    assert not models.Round.objects.exists()


def test_a_round_made_by_another_model_is_refused(model_dir, prompts):
    models.Round.objects.create(number=1, base_model="someone/else")
    with pytest.raises(CommandError, match="Round 1 was generated with someone/else"):
        generate("--round", "1", "--base-model", str(model_dir))
    assert not models.Response.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prompts", "sauce=seed"], "--prompts must be all, source=NAME or round=N"),
        (["--prompts", "source=nothing"], "No prompts match --prompts source=nothing"),
        (["--overlap", "0"], "--overlap must be at least 1"),
        (["--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_it_rejects_bad_options(model_dir, prompts, args, message):
    with pytest.raises(CommandError, match=message):
        generate("--round", "1", "--base-model", str(model_dir), *args)
    assert not models.Response.objects.exists()
