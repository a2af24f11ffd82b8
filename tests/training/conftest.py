"""A tiny randomly initialised Llama and a byte-level tokenizer, built locally (no hub).

The tokenizer has one token per byte plus a few special tokens and a ChatML-style chat
template, so both prompt templates can be exercised; `plain_tokenizer` has no chat template.
"""

import json
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]


def make_tokenizer(*, chat: bool = True) -> PreTrainedTokenizerFast:
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {char: i for i, char in enumerate(alphabet)}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(SPECIAL_TOKENS)
    return wrap_tokenizer(core, chat=chat)


def wrap_tokenizer(core: Tokenizer, *, chat: bool = True) -> PreTrainedTokenizerFast:
    """A tokenizers.Tokenizer as transformers' tokenizer, with this module's special tokens
    and, for chat, CHAT_TEMPLATE."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="<|im_end|>" if chat else "</s>",
        pad_token="<pad>",
    )
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def make_model(tokenizer, *, seed: int = 0, layers: int = 2) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config).eval()


def triple(i: int, *, negative: bool, **extra) -> dict:
    record = {
        "id": i,
        "instruction": f"Name a prime number bigger than {i}.",
        "input": "",
        "output": f"{i * 2 + 1} is one. " * (1 + i % 3),
        "judgment": f"Wrong: {i * 2 + 1} is not always prime." if negative else None,
        "verdict": "negative" if negative else "positive",
    }
    record.update(extra)
    return record


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def one_thread():
    """Tiny models' matrices are too small for threads: one thread is several times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerFast:
    return make_tokenizer()


@pytest.fixture
def plain_tokenizer() -> PreTrainedTokenizerFast:
    return make_tokenizer(chat=False)


@pytest.fixture
def tiny_model(tokenizer) -> LlamaForCausalLM:
    return make_model(tokenizer)


@pytest.fixture
def triples_file(tmp_path) -> Path:
    """Twelve records, a third negative (enough for batches with and without negatives)."""
    records = [triple(i, negative=i % 3 == 0) for i in range(12)]
    return write_jsonl(tmp_path / "triples.jsonl", records)
