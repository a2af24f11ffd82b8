"""Batched generation from a base model, or a base model with a CUT adapter.

The aligned model answers the inference prompt T(x), without a judgment (CUT.md §5), in the
template its adapter was trained with. Greedy decoding by default, so a round of responses
can be regenerated exactly.
"""

import json
from collections.abc import Callable
from pathlib import Path

import torch

from training import models, templates
from training.config import CONFIG_FILENAME, CUTConfig

ADAPTER_CONFIG = "adapter_config.json"  # peft's file: its presence makes a dir an adapter


def check_adapter(adapter_dir: str | Path) -> CUTConfig | None:
    """Fail fast on a path that is no peft adapter; return the CUT config saved beside it.

    The config is None for an adapter trained elsewhere (no cut_config.json).
    """
    path = Path(adapter_dir).expanduser()
    if not path.is_dir():
        raise ValueError(f"Adapter directory {adapter_dir} does not exist.")
    if not (path / ADAPTER_CONFIG).is_file():
        raise ValueError(
            f"{adapter_dir} is not a LoRA adapter directory: it has no {ADAPTER_CONFIG}. "
            "Pass the output directory of a finished training run."
        )
    if not (path / CONFIG_FILENAME).is_file():
        return None
    return CUTConfig.load(path / CONFIG_FILENAME)


def load_for_generation(
    base_model: str | None = None,
    adapter_dir: str | Path | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | str | None = None,
    log: Callable[[str], object] = print,
):
    """Load a model to generate with; returns (model, tokenizer, template).

    With an adapter, the base model defaults to the one it was trained on and the template
    to the one it was trained with (both read from its saved cut_config.json). The adapter is
    merged into the weights: generation then costs what the base model costs. The device
    defaults to the GPU when there is one.
    """
    trained = check_adapter(adapter_dir) if adapter_dir is not None else None
    if base_model is None and trained is not None:
        base_model = trained.base_model
    models.check_base_model(base_model)  # before anything heavy loads
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer = models.load_model_and_tokenizer(
        base_model, dtype=dtype, device=device, log=log
    )
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    model.eval()
    template = templates.resolve_template(tokenizer, trained.template if trained else "auto")
    return model, tokenizer, template


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    records: list[dict],
    *,
    template: str,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    do_sample: bool = False,
    seed: int = 42,
) -> list[str]:
    """One response per record ({"instruction", "input"?}), in the order of the records.

    Prompts are sorted by length and left-padded in batches, so little compute goes to
    padding; a response ends at the end-of-sequence (or end-of-turn) token and comes back
    without its prompt or special tokens. Sampling, when asked for, is seeded.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1. Got {max_new_tokens}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1. Got {batch_size}.")
    prompts = [
        templates.encode_prompt(
            tokenizer,
            templates.build_prompt(
                tokenizer, r["instruction"], r.get("input") or "", template=template
            ),
            template,
        )
        for r in records
    ]
    settings = _generation_config(model, tokenizer, max_new_tokens, do_sample)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str] = [""] * len(prompts)
    device = next(model.parameters()).device
    devices = [device] if device.type == "cuda" else []
    # Seeded sampling without disturbing the caller's random state.
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            ids, mask = _left_pad([prompts[i] for i in batch], settings.pad_token_id)
            out = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                generation_config=settings,
            )
            texts = tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
            for i, text in zip(batch, texts, strict=True):
                outputs[i] = text.strip()
    return outputs


def _generation_config(model, tokenizer, max_new_tokens: int, do_sample: bool):
    from transformers import GenerationConfig

    # Stop at every end token the model knows: chat models often end a turn with a token
    # (<|eot_id|>) other than the tokenizer's EOS.
    eos = model.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, list | tuple) else [eos]
    eos = [e for e in dict.fromkeys([*eos, tokenizer.eos_token_id]) if e is not None]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    sampling = {}
    if do_sample:
        base = model.generation_config
        sampling = {"temperature": base.temperature, "top_p": base.top_p, "top_k": base.top_k}
        sampling = {k: v for k, v in sampling.items() if v is not None}
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        eos_token_id=eos,
        pad_token_id=pad,
        **sampling,
    )


def _left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
    return ids, mask


def read_prompts(path: str | Path) -> list[dict]:
    """Records to answer from JSONL (or a JSON array): each needs an "instruction".

    Any other field (id, input, ...) is kept and written back with the response.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}.") from None
        pairs = [(f"{path}, record {n}", item) for n, item in enumerate(items, 1)]
    else:
        pairs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                pairs.append((f"{path}, line {n}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {n}: not valid JSON ({error}).") from None
    records = []
    for where, item in pairs:
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a JSON object.")
        if not isinstance(item.get("instruction"), str) or not item["instruction"].strip():
            raise ValueError(f'{where}: the record needs a non-empty "instruction".')
        if not isinstance(item.get("input") or "", str):
            raise ValueError(f'{where}: "input" must be text.')
        records.append(item)
    if not records:
        raise ValueError(f"{path} holds no records.")
    return records


def generate_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    base_model: str | None = None,
    adapter_dir: str | Path | None = None,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    do_sample: bool = False,
    seed: int = 42,
    limit: int | None = None,
    log: Callable[[str], object] = print,
) -> int:
    """Answer every record of input_path; write JSONL to output_path; return the count.

    Each output line is the input record with "output" (the response) and "generator" (the
    adapter directory's name, or the base model) added, which import_responses reads.
    """
    records = read_prompts(input_path)[:limit]
    model, tokenizer, template = load_for_generation(base_model, adapter_dir, log=log)
    generator = generator_name(base_model, adapter_dir)
    log(f"Generating {len(records)} responses with {generator} ({template} template).")
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(output_path.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        for start in range(0, len(records), batch_size * 8):
            chunk = records[start : start + batch_size * 8]
            texts = generate(
                model,
                tokenizer,
                chunk,
                template=template,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
                do_sample=do_sample,
                seed=seed + start,
            )
            for record, text in zip(chunk, texts, strict=True):
                line = {**record, "output": text, "generator": generator}
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
            log(f"{start + len(chunk)}/{len(records)} done.")
    partial.replace(output_path)  # a half-written file never has the final name
    return len(records)


def generator_name(base_model: str | None, adapter_dir: str | Path | None) -> str:
    """What Response.generator records: the adapter directory's name, else the base model."""
    if adapter_dir is not None:
        return Path(adapter_dir).expanduser().resolve().name
    name = models.check_base_model(base_model)
    return Path(name).name if Path(name).is_absolute() else name
