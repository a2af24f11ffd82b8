"""training.generate: batched, deterministic generation from a base model or base + adapter."""

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model

from training import generate as gen
from training import models
from training.config import CONFIG_FILENAME, CUTConfig

RECORDS = [
    {"id": "a", "instruction": "Say hi."},
    {"id": "b", "instruction": "Count to three, slowly and carefully.", "input": "1, 2"},
    {"id": "c", "instruction": "Why?"},
]


def save_adapter(base_dir: Path, path: Path, *, template: str = "alpaca") -> Path:
    """A LoRA adapter with non-zero weights (a fresh one changes nothing) and its config."""
    model, _ = models.load_model_and_tokenizer(str(base_dir))
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=4, target_modules=["gate_proj", "up_proj", "down_proj"])
    )
    torch.manual_seed(1)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    peft_model.save_pretrained(path)
    CUTConfig(base_model=str(base_dir), template=template, output_dir=str(path)).save(
        path / CONFIG_FILENAME
    )
    return path


def force_tokens(model, token_ids: list[int]):
    """Make the model emit token_ids[0], token_ids[1], ... then repeat the last one."""
    step = {"n": 0}

    def hook(module, args, logits):
        token = token_ids[min(step["n"], len(token_ids) - 1)]
        step["n"] += 1
        logits[..., -1, :] = -1e4
        logits[..., -1, token] = 1e4
        return logits

    return model.lm_head.register_forward_hook(hook)


def test_it_is_deterministic(tiny_model, tokenizer):
    first = gen.generate(tiny_model, tokenizer, RECORDS, template="chat", max_new_tokens=8)
    second = gen.generate(tiny_model, tokenizer, RECORDS, template="chat", max_new_tokens=8)
    assert first == second
    assert len(first) == len(RECORDS)
    assert all(isinstance(text, str) for text in first)


def test_batching_and_padding_change_no_answer(tiny_model, tokenizer):
    batched = gen.generate(
        tiny_model, tokenizer, RECORDS, template="alpaca", max_new_tokens=6, batch_size=2
    )
    alone = [
        gen.generate(tiny_model, tokenizer, [r], template="alpaca", max_new_tokens=6)[0]
        for r in RECORDS
    ]
    assert batched == alone


def test_it_returns_the_response_without_prompt_and_stops_at_eos(tiny_model, tokenizer):
    a = tokenizer.convert_tokens_to_ids("A")
    handle = force_tokens(tiny_model, [a, a, tokenizer.eos_token_id, a])
    try:
        texts = gen.generate(tiny_model, tokenizer, RECORDS[:1], template="chat")
    finally:
        handle.remove()
    assert texts == ["AA"]


def test_it_stops_after_max_new_tokens(tiny_model, tokenizer):
    handle = force_tokens(tiny_model, [tokenizer.convert_tokens_to_ids("A")])
    try:
        texts = gen.generate(tiny_model, tokenizer, RECORDS, template="chat", max_new_tokens=5)
    finally:
        handle.remove()
    assert texts == ["AAAAA"] * 3


def test_sampling_is_seeded_and_leaves_the_callers_random_state(tiny_model, tokenizer):
    def sample(seed: int) -> list[str]:
        return gen.generate(
            tiny_model, tokenizer, RECORDS, template="chat", max_new_tokens=12, do_sample=True,
            seed=seed,
        )  # fmt: skip

    torch.manual_seed(123)
    first = sample(7)
    after = torch.rand(1)
    torch.manual_seed(123)
    assert sample(7) == first
    assert torch.equal(torch.rand(1), after)
    assert sample(8) != first


def test_it_rejects_bad_settings(tiny_model, tokenizer):
    with pytest.raises(ValueError, match="max_new_tokens"):
        gen.generate(tiny_model, tokenizer, RECORDS, template="chat", max_new_tokens=0)
    with pytest.raises(ValueError, match="batch_size"):
        gen.generate(tiny_model, tokenizer, RECORDS, template="chat", batch_size=0)


def test_it_loads_a_base_model_with_its_chat_template(model_dir):
    model, tokenizer, template = gen.load_for_generation(str(model_dir), None)
    assert template == "chat"
    assert not model.training
    assert gen.generate(model, tokenizer, RECORDS, template=template, max_new_tokens=3)


def test_it_loads_an_adapter_on_the_base_it_was_trained_on(model_dir, tmp_path):
    adapter = save_adapter(model_dir, tmp_path / "run-1")
    base, _, _ = gen.load_for_generation(str(model_dir), None)

    model, tokenizer, template = gen.load_for_generation(None, adapter)

    assert template == "alpaca"  # from the adapter's config, though the tokenizer has chat
    assert type(model) is type(base)  # merged: a plain model again
    ids = torch.tensor([tokenizer("Say hi.").input_ids])
    with torch.no_grad():
        tuned, plain = model(ids).logits, base(ids).logits
    assert tuned.shape == plain.shape
    assert not torch.allclose(tuned, plain)
    texts = gen.generate(model, tokenizer, RECORDS, template=template, max_new_tokens=4)
    assert len(texts) == 3


def test_it_rejects_a_path_that_is_no_adapter(model_dir, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        gen.load_for_generation(None, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no adapter_config.json"):
        gen.load_for_generation(None, model_dir)


def test_generate_file_writes_one_response_per_record(model_dir, tmp_path):
    adapter = save_adapter(model_dir, tmp_path / "run-7")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    out = tmp_path / "out" / "responses.jsonl"

    count = gen.generate_file(
        prompts, out, adapter_dir=adapter, max_new_tokens=4, batch_size=2, log=lambda _: None
    )

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert count == 3
    assert [line["id"] for line in lines] == ["a", "b", "c"]
    assert all(line["generator"] == "run-7" for line in lines)
    assert all(isinstance(line["output"], str) for line in lines)
    assert lines[1]["input"] == "1, 2"
    assert sorted(p.name for p in out.parent.iterdir()) == ["responses.jsonl"]


def test_generate_file_names_the_bad_line(model_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"instruction": "ok"}\n{"input": "no instruction"}\n')
    with pytest.raises(ValueError, match=r"prompts.jsonl, line 2: .*instruction"):
        gen.generate_file(prompts, tmp_path / "out.jsonl", base_model=str(model_dir))
    assert not (tmp_path / "out.jsonl").exists()


def test_it_reads_a_json_array_of_prompts(tmp_path):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(RECORDS))
    assert gen.read_prompts(prompts) == RECORDS


@pytest.mark.slow
def test_the_embedded_model_answers_a_simple_question():
    model, tokenizer, template = gen.load_for_generation(None, None)
    [answer] = gen.generate(
        model,
        tokenizer,
        [{"instruction": "What is the capital of France?"}],
        template=template,
        max_new_tokens=24,
    )
    assert template == "chat"
    assert "Paris" in answer
