"""training.trainer on a tiny randomly initialised Llama, on the CPU."""

import json
import subprocess
import sys

import pytest
import torch
from peft import PeftModel

from tests.training.conftest import make_model, make_tokenizer, triple, write_jsonl
from training import checkpoints, cut_step, data, logprobs, trainer
from training.config import CONFIG_FILENAME, CUTConfig
from training.loss import cut_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def small_config(data_path, output_dir, **changes) -> CUTConfig:
    settings = {
        "data": str(data_path),
        "output_dir": str(output_dir),
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "warmup_steps": 0,
        "learning_rate": 1e-2,
        "downsample": -1,
        "eval_every": 0,
        "checkpoint_every": 0,
    }
    return CUTConfig(**{**settings, **changes})


def run(config, seed=0):
    tokenizer = make_tokenizer()
    model = make_model(tokenizer, seed=seed)
    result = trainer.train(
        config, progress=False, log=lambda _: None, model=model, tokenizer=tokenizer
    )
    return result, model, tokenizer


def lora_weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


# --- log-probabilities and the micro-step ----------------------------------------------


def micro_batch(tokenizer):
    records = [triple(1, negative=True), triple(2, negative=False), triple(5, negative=True)]
    examples = [data.encode(data._parse("t", r), tokenizer, "chat", 2048) for r in records]
    return data.make_micro_batch(examples, tokenizer.pad_token_id)


def full_logit_logprobs(model, view: data.ViewBatch) -> torch.Tensor:
    """The textbook way: logits at every position, log_softmax, gather (B, R)."""
    logits = model(input_ids=view.input_ids, attention_mask=view.attention_mask).logits
    flat = torch.log_softmax(logits.float(), dim=-1).reshape(-1, logits.shape[-1])
    picked = flat[view.positions, view.targets]
    return picked.new_zeros(view.mask.shape).masked_scatter(view.mask, picked)


def grads_of(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("targets", [["gate_proj", "up_proj", "down_proj"], ["lm_head", "q_proj"]])
def test_response_logprobs_equal_a_full_log_softmax(tokenizer, targets):
    model = trainer.attach_lora(
        make_model(tokenizer), CUTConfig(lora_dropout=0.0, lora_target_modules=targets)
    )
    with torch.no_grad():  # LoRA B starts at 0; make the adapter matter
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    scorer = logprobs.ResponseScorer(model, chunk_size=7, dtype=torch.float32)
    view = micro_batch(tokenizer).like

    ours = logprobs.view_logprobs(scorer, view)
    ours[view.mask].sum().backward()
    ours_grads = grads_of(model)
    textbook = full_logit_logprobs(model, view)
    textbook[view.mask].sum().backward()
    textbook_grads = grads_of(model)

    assert torch.allclose(ours, textbook, atol=1e-5)
    assert ours_grads.keys() == textbook_grads.keys() and ours_grads
    for name, grad in ours_grads.items():
        assert torch.allclose(grad, textbook_grads[name], atol=1e-5, rtol=1e-4), name


@pytest.mark.parametrize("max_padding", [1.0, 0.0])  # one pass per view kind / one per row
def test_split_and_joint_micro_steps_give_the_gradient_of_cut_loss(tokenizer, max_padding):
    model = trainer.attach_lora(make_model(tokenizer), CUTConfig(lora_dropout=0.0))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    scorer = logprobs.ResponseScorer(model, chunk_size=16, dtype=torch.float32)
    batch = micro_batch(tokenizer)
    options = {"threshold": 1.01, "weight_unlike": 2.0, "scale": 0.5}

    split = cut_step.cut_micro_step(
        scorer, batch, split_views=True, max_padding=max_padding, **options
    )
    split_grads = grads_of(model)
    joint = cut_step.cut_micro_step(scorer, batch, split_views=False, **options)
    joint_grads = grads_of(model)
    like = full_logit_logprobs(model, batch.like)
    misalign = full_logit_logprobs(model, batch.misalign)
    judged = like.detach()[batch.judged_rows][:, : misalign.shape[1]]
    expected = cut_loss(
        like,
        batch.like.mask,
        misalign,
        judged,
        batch.misalign.mask,
        threshold=1.01,
        weight_unlike=2.0,
    )
    (expected.loss * 0.5).backward()
    expected_grads = grads_of(model)

    assert 0 < split.flagged_tokens < split.misalign_tokens  # both kinds of token occur
    for stats in (split, joint):
        assert stats.loss == pytest.approx(expected.loss.item(), rel=1e-5)
        assert stats.l_ul == pytest.approx(expected.l_ul.item(), rel=1e-5)
        assert stats.flagged_tokens == round(
            float(expected.flagged_fraction) * stats.misalign_tokens
        )
    for grads in (split_grads, joint_grads):
        for name, grad in expected_grads.items():
            assert torch.allclose(grads[name], grad, atol=1e-6, rtol=1e-4), name


# --- whole runs ----------------------------------------------------------------------------


def test_two_steps_change_only_the_lora_weights(triples_file, tmp_path):
    tokenizer = make_tokenizer()
    model = make_model(tokenizer)
    base_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    config = small_config(triples_file, tmp_path / "out", max_steps=2)

    result = trainer.train(
        config, progress=False, log=lambda _: None, model=model, tokenizer=tokenizer
    )

    assert result.metrics["steps"] == 2
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert any("lora_B" in n and p.abs().sum() > 0 for n, p in lora.items())
    for name, param in model.named_parameters():
        if "lora_" in name:
            continue
        original = name.replace("base_model.model.", "", 1).replace(".base_layer", "")
        assert torch.equal(param, base_before[original]), f"Parameter {name} has changed"


def test_it_writes_metrics_per_step_and_the_adapter_with_its_config(triples_file, tmp_path):
    config = small_config(triples_file, tmp_path / "out", max_steps=3)

    result, _, _ = run(config)

    lines = list(trainer.iter_metrics(tmp_path / "out"))
    assert [line["step"] for line in lines] == [1, 2, 3]
    for key in ("loss", "l_mle", "l_ul", "flagged", "lr", "tokens_per_s", "peak_memory_mb"):
        assert key in lines[0]
    assert result.metrics["loss"] == lines[-1]["loss"]
    assert [step for step, _ in result.metrics["loss_curve"]] == [1, 2, 3]
    out = tmp_path / "out"
    assert (out / "adapter_config.json").is_file() and (
        out / "adapter_model.safetensors"
    ).is_file()
    saved = CUTConfig.load(out / CONFIG_FILENAME)
    assert saved.template == "chat" and saved.threshold == config.threshold
    run_info = json.loads((out / trainer.RUN_FILENAME).read_text())
    assert run_info["data_sha256"] == data.file_sha256(triples_file)
    assert run_info["stopped_early"] is False


def test_the_saved_adapter_loads_with_peft_and_generates(triples_file, tmp_path):
    config = small_config(triples_file, tmp_path / "out", max_steps=2)
    _, trained, tokenizer = run(config)

    loaded = PeftModel.from_pretrained(make_model(tokenizer), str(tmp_path / "out")).eval()
    trained.eval()
    prompt = tokenizer(
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", return_tensors="pt"
    )
    with torch.no_grad():
        assert torch.allclose(loaded(**prompt).logits, trained(**prompt).logits, atol=1e-5)
        output = loaded.generate(**prompt, max_new_tokens=5, do_sample=False)

    assert output.shape[1] > prompt["input_ids"].shape[1]


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("every", [2, 3])  # interrupted inside the first epoch / at its end
def test_resuming_from_a_checkpoint_gives_the_weights_of_an_uninterrupted_run(
    triples_file, tmp_path, monkeypatch, every
):
    # Two epochs of 3 steps: the resumed run also has to continue the data order.
    settings = {"num_epochs": 2, "max_steps": 5, "checkpoint_every": every, "lora_dropout": 0.3}
    _, straight, _ = run(small_config(triples_file, tmp_path / "straight", **settings))

    real_save = checkpoints.save_checkpoint

    def save_then_crash(*args, **kwargs):
        real_save(*args, **kwargs)
        raise Interrupted  # the machine went away right after the first checkpoint

    monkeypatch.setattr(checkpoints, "save_checkpoint", save_then_crash)
    with pytest.raises(Interrupted):
        run(small_config(triples_file, tmp_path / "resumed", **settings))
    monkeypatch.setattr(checkpoints, "save_checkpoint", real_save)
    result, resumed, _ = run(
        small_config(triples_file, tmp_path / "resumed", resume_from="latest", **settings)
    )

    assert result.metrics["steps"] == 5
    expected = lora_weights(straight)
    for name, weight in lora_weights(resumed).items():
        assert torch.equal(weight, expected[name]), name
    steps = [line["step"] for line in trainer.iter_metrics(tmp_path / "resumed")]
    assert steps == [1, 2, 3, 4, 5]


def test_resuming_with_other_data_is_refused(triples_file, tmp_path):
    config = small_config(triples_file, tmp_path / "out", max_steps=2, checkpoint_every=1)
    run(config)
    triples_file.write_text(
        triples_file.read_text() + json.dumps(triple(99, negative=True)) + "\n"
    )

    with pytest.raises(ValueError, match="The data changed since checkpoint"):
        run(small_config(triples_file, tmp_path / "out", max_steps=3, resume_from="latest"))


def collapse_config(tmp_path, weight_unlike):
    records = [triple(i, negative=i % 2 == 0) for i in range(40)]
    path = write_jsonl(tmp_path / "t.jsonl", records)
    return small_config(
        path,
        tmp_path / "out",
        weight_unlike=weight_unlike,
        threshold=1.0,
        learning_rate=5e-2,
        holdout_min_records=10,
        holdout_fraction=0.2,
        eval_every=1,
        collapse_margin=0.05,
        max_steps=8,
    )


def test_the_collapse_guard_stops_early_and_keeps_the_best_adapter(tmp_path):
    result, model, _ = run(collapse_config(tmp_path, weight_unlike=1e4))

    assert result.stopped_early
    assert "approved holdout responses fell" in result.stop_reason
    assert "collapse_margin" in result.stop_reason
    validation = result.metrics["validation"]
    assert validation["approved_delta"] < -0.05
    assert validation["best_step"] < validation["step"] < 8
    run_info = json.loads((tmp_path / "out" / trainer.RUN_FILENAME).read_text())
    assert run_info["stopped_early"] and run_info["stop_reason"] == result.stop_reason
    # The adapter kept (in memory and on disk) is the best one, not the collapsed last one.
    saved = PeftModel.from_pretrained(make_model(make_tokenizer()), str(tmp_path / "out"))
    kept = lora_weights(model)
    for name, weight in lora_weights(saved).items():
        assert torch.equal(weight, kept[name.replace("base_model.model.", "", 1)])
    best = validation["best_step"]
    assert best > 0 or all(not w.any() for n, w in kept.items() if "lora_B" in n)


def test_the_collapse_guard_lets_a_normal_run_finish(tmp_path):
    result, _, _ = run(collapse_config(tmp_path, weight_unlike=1.0))

    assert not result.stopped_early and result.stop_reason == ""
    assert result.metrics["steps"] == 8
    assert result.metrics["validation"]["approved_delta"] > -0.05


def test_validation_reports_deltas_against_the_base_model(tmp_path):
    records = [triple(i, negative=i % 2 == 0) for i in range(40)]
    path = write_jsonl(tmp_path / "t.jsonl", records)
    config = small_config(
        path,
        tmp_path / "out",
        holdout_min_records=10,
        holdout_fraction=0.2,
        max_steps=2,
        collapse_guard=False,
    )

    result, _, _ = run(config)

    validation = result.metrics["validation"]
    assert result.metrics["holdout_records"] == 8
    for key in (
        "approved_logp",
        "criticised_logp",
        "approved_delta",
        "criticised_delta",
        "gain",
        "flagged",
    ):
        assert validation[key] is not None
    assert validation["gain"] == pytest.approx(
        validation["approved_delta"] - validation["criticised_delta"]
    )
    assert "eval" in list(trainer.iter_metrics(tmp_path / "out"))[-1]


def test_merge_saves_a_full_model_with_the_adapter_in_it(triples_file, tmp_path):
    from transformers import AutoModelForCausalLM

    config = small_config(triples_file, tmp_path / "out", max_steps=2, merge=True)
    _, trained, tokenizer = run(config)

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "merged").eval()
    prompt = tokenizer("<|im_start|>user\nHi<|im_end|>\n", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged(**prompt).logits, trained.eval()(**prompt).logits, atol=1e-4)


def test_a_run_without_negatives_is_plain_sft_and_says_so(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [triple(i, negative=False) for i in range(6)])
    messages = []
    tokenizer = make_tokenizer()

    result = trainer.train(
        small_config(path, tmp_path / "out", max_steps=1),
        progress=False,
        log=messages.append,
        model=make_model(tokenizer),
        tokenizer=tokenizer,
    )

    assert result.metrics["l_ul"] is None and result.metrics["flagged"] is None
    assert result.metrics["loss"] == result.metrics["l_mle"]
    assert any("plain supervised fine-tuning (SFT)" in m for m in messages)


def test_bad_data_fails_before_any_model_loads(tmp_path, monkeypatch):
    from training import models

    path = tmp_path / "t.jsonl"
    path.write_text('{"instruction": "a"}\n')
    monkeypatch.setattr(models, "load_model_and_tokenizer", pytest.fail)

    with pytest.raises(ValueError, match="line 1: the record has no output"):
        trainer.train(small_config(path, tmp_path / "out"), progress=False, log=lambda _: None)


def test_training_never_imports_django():
    code = (
        "import sys, training.trainer, training.data, training.lens, training.callbacks, "
        "training.__main__; print('django' in sys.modules)"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"


def test_gradient_checkpointing_gives_the_same_gradients(tokenizer):
    model = trainer.attach_lora(make_model(tokenizer), CUTConfig(lora_dropout=0.0))
    scorer = logprobs.ResponseScorer(model, chunk_size=16, dtype=torch.float32)
    batch = micro_batch(tokenizer)
    model.train()

    plain = cut_step.cut_micro_step(scorer, batch, threshold=1.01, weight_unlike=1.0)
    plain_grads = grads_of(model)
    model.get_base_model().gradient_checkpointing_enable(
        gradient_checkpointing_kwargs={"use_reentrant": False}
    )
    checkpointed = cut_step.cut_micro_step(scorer, batch, threshold=1.01, weight_unlike=1.0)
    checkpointed_grads = grads_of(model)

    assert checkpointed.loss == pytest.approx(plain.loss, rel=1e-6)
    assert plain_grads.keys() == checkpointed_grads.keys() and plain_grads
    for name, grad in plain_grads.items():
        assert torch.allclose(checkpointed_grads[name], grad, atol=1e-6, rtol=1e-5), name


def test_bf16_autocast_runs_on_the_cpu_close_to_fp32(triples_file, tmp_path):
    fp32, _, _ = run(small_config(triples_file, tmp_path / "fp32", max_steps=1))
    bf16, _, _ = run(small_config(triples_file, tmp_path / "bf16", max_steps=1, precision="bf16"))

    assert bf16.metrics["loss"] == pytest.approx(fp32.metrics["loss"], rel=2e-2)
