"""Every knob of a CUT run in one dataclass, with the paper's defaults (CUT.md §5).

Build it in code (`CUTConfig(data="triples.jsonl")`), from the command line
(`apply_overrides(config, ["--threshold=1.2"])`) or from the JSON saved beside an adapter
(`CUTConfig.load(path)`). It validates itself on creation, so a bad run fails before any
model loads.
"""

import dataclasses
import difflib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Saved beside every adapter and checkpoint; generation reads the template choice from it.
CONFIG_FILENAME = "cut_config.json"

TEMPLATES = ("auto", "chat", "alpaca")
PRECISIONS = ("auto", "bf16", "fp32")
SCHEDULERS = ("cosine", "linear", "constant")


@dataclass
class CUTConfig:
    # --- run ---
    data: str = ""  # JSONL (or the paper's JSON array) of judgment triples
    base_model: str | None = None  # local model dir or hub id; None = embedded SmolLM2-135M
    output_dir: str = "runs/cut"  # adapter, config, metrics.jsonl and checkpoints go here
    template: str = "auto"  # "auto" (chat if the tokenizer has a chat template), chat, alpaca
    seed: int = 42  # data order, downsampling, holdout split, LoRA init and dropout
    # --- CUT (CUT.md §3-5) ---
    threshold: float = 1.1  # lambda: a token is inappropriate when p_N / p_M > threshold
    weight_unlike: float = 1.0  # alpha: weight of -log(1 - p) on inappropriate tokens
    downsample: float = 0.25  # keep at most this x (negative records) positives; -1 = keep all
    cutoff_len: int = 2048  # longest sequence in tokens; the prompt is cut from the left
    # --- LoRA ---
    lora_r: int = 16  # rank
    lora_alpha: int = 16  # scaling numerator (scale = alpha / r)
    lora_dropout: float = 0.05  # dropout on the LoRA input
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["gate_proj", "up_proj", "down_proj"]
    )  # module names that get adapters (the MLP, as in the paper)
    # --- optimisation ---
    learning_rate: float = 4e-4  # peak AdamW learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    adam_beta1: float = 0.9  # AdamW beta1
    adam_beta2: float = 0.999  # AdamW beta2
    adam_epsilon: float = 1e-8  # AdamW epsilon
    lr_scheduler: str = "cosine"  # cosine, linear or constant, each after the warm-up
    warmup_steps: int = 100  # optimizer steps of linear warm-up from 0
    num_epochs: int = 1  # passes over the training records
    max_steps: int = 0  # stop after this many optimizer steps; 0 = run num_epochs
    micro_batch_size: int = 1  # records per forward pass
    gradient_accumulation_steps: int = 8  # micro-batches per optimizer step
    max_grad_norm: float = 1.0  # clip the gradient norm to this; 0 = no clipping
    # --- speed and memory ---
    precision: str = "auto"  # "auto" = bf16 autocast on a CUDA GPU, fp32 on CPU
    gradient_checkpointing: bool = False  # recompute activations in backward (less memory)
    split_views: bool = True  # backward the Align views, then the Misalign views: memory ~ SFT
    group_by_length: bool = True  # put records of similar length in one micro-batch
    max_padding: float = 0.05  # cut a pass into sub-batches so at most this share is padding
    logprob_chunk_size: int = 1024  # response tokens per LM-head chunk (bounds the logits)
    # --- validation and collapse guard ---
    holdout_fraction: float = 0.05  # share of records held out (seeded, per verdict)
    holdout_min_records: int = 100  # smaller data gets no holdout (and no collapse guard)
    eval_every: int = 50  # optimizer steps between holdout evaluations; 0 = only at the end
    collapse_guard: bool = True  # stop early when approved responses lose likelihood
    collapse_margin: float = 0.3  # nats per token approved responses may fall below the base
    # --- checkpoints and output ---
    checkpoint_every: int = 100  # optimizer steps between resumable checkpoints; 0 = none
    checkpoints_kept: int = 2  # older checkpoints are deleted
    resume_from: str = ""  # checkpoint dir to resume, or "latest" (newest in output_dir)
    merge: bool = False  # also save base + adapter merged into one full model

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, *, check_paths: bool = True) -> None:
        """Raise ValueError saying what to change; check_paths also checks the data file."""
        if self.template not in TEMPLATES:
            raise ValueError(
                f"`template` must be one of {', '.join(TEMPLATES)}. Got {self.template!r}."
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"`precision` must be one of {', '.join(PRECISIONS)}. Got {self.precision!r}."
            )
        if self.lr_scheduler not in SCHEDULERS:
            raise ValueError(
                f"`lr_scheduler` must be one of {', '.join(SCHEDULERS)}. "
                f"Got {self.lr_scheduler!r}."
            )
        if not self.threshold >= 1:  # also catches NaN
            raise ValueError(
                "`threshold` must be at least 1 (a token is flagged when the judgment makes it "
                f"more likely by this factor; the paper uses 1.1). Got {self.threshold}."
            )
        if not 0 <= self.weight_unlike < math.inf:
            raise ValueError(
                f"`weight_unlike` must be a finite number >= 0 (the paper uses 1.0 or 0.5). "
                f"Got {self.weight_unlike}."
            )
        if self.downsample != -1 and not self.downsample >= 0:
            raise ValueError(
                "`downsample` must be >= 0 (positives kept per negative record) or -1 to keep "
                f"every positive. Got {self.downsample}."
            )
        if self.cutoff_len < 16:
            raise ValueError(f"`cutoff_len` must be at least 16 tokens. Got {self.cutoff_len}.")
        for name in ("lora_r", "lora_alpha", "num_epochs", "micro_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be at least 1. Got {getattr(self, name)}.")
        if self.gradient_accumulation_steps < 1:
            raise ValueError(
                "`gradient_accumulation_steps` must be at least 1. "
                f"Got {self.gradient_accumulation_steps}."
            )
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"`lora_dropout` must be in [0, 1). Got {self.lora_dropout}.")
        if not self.lora_target_modules or not all(
            isinstance(name, str) and name for name in self.lora_target_modules
        ):
            raise ValueError(
                "`lora_target_modules` must name at least one module, e.g. "
                f"gate_proj,up_proj,down_proj. Got {self.lora_target_modules!r}."
            )
        if not 0 < self.learning_rate < math.inf:
            raise ValueError(f"`learning_rate` must be > 0. Got {self.learning_rate}.")
        for name in ("adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be in [0, 1). Got {getattr(self, name)}.")
        for name in (
            "weight_decay",
            "adam_epsilon",
            "max_grad_norm",
            "collapse_margin",
        ):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(
                    f"`{name}` must be a finite number >= 0. Got {getattr(self, name)}."
                )
        for name in (
            "warmup_steps",
            "max_steps",
            "eval_every",
            "checkpoint_every",
            "holdout_min_records",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be >= 0. Got {getattr(self, name)}.")
        if self.checkpoints_kept < 1:
            raise ValueError(
                f"`checkpoints_kept` must be at least 1. Got {self.checkpoints_kept}."
            )
        if not 0 <= self.max_padding <= 1:
            raise ValueError(
                f"`max_padding` must be in [0, 1] (1 = never cut a pass). Got {self.max_padding}."
            )
        if self.logprob_chunk_size < 1:
            raise ValueError(
                f"`logprob_chunk_size` must be at least 1. Got {self.logprob_chunk_size}."
            )
        if not 0 <= self.holdout_fraction < 0.5:
            raise ValueError(
                "`holdout_fraction` must be in [0, 0.5) (0 = no holdout). "
                f"Got {self.holdout_fraction}."
            )
        if not self.output_dir:
            raise ValueError("`output_dir` must name a directory for the adapter.")
        if check_paths and self.data:
            path = Path(self.data).expanduser()
            if not path.exists():
                raise ValueError(f"`data` file {self.data} does not exist. Check the path.")
            if not path.is_file():
                raise ValueError(
                    f"`data` must be a JSONL file of triples; {self.data} is not a file."
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | Path, *, check_paths: bool = False) -> "CUTConfig":
        """Read a saved config. The data file need not exist here (it may be another machine)."""
        try:
            values = json.loads(Path(path).read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}.") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a JSON object of config fields.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{path} has unknown config fields: {', '.join(unknown)}.")
        config = object.__new__(cls)
        for f in dataclasses.fields(cls):
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            value = values.get(f.name, default)
            setattr(config, f.name, _coerce(f.name, value, _field_types()[f.name]))
        config.validate(check_paths=check_paths)
        return config


def apply_overrides(config: CUTConfig, overrides: list[str] | dict[str, Any]) -> CUTConfig:
    """Return a new config with `--name=value` / `name=value` strings (or a dict) applied.

    Values are parsed by the field's type: booleans from true/false/1/0/yes/no, lists from
    comma-separated text or JSON, None from "none" where the field allows it. Unknown
    names and unparseable values raise a ValueError naming the key.
    """
    if isinstance(overrides, dict):
        pairs = list(overrides.items())
    else:
        pairs = []
        for item in overrides:
            text = item[2:] if item.startswith("--") else item
            name, sep, value = text.partition("=")
            if not sep:
                raise ValueError(f"Override {item!r} must look like --name=value.")
            pairs.append((name.strip().replace("-", "_"), value))
    types_by_name = _field_types()
    changes: dict[str, Any] = {}
    for name, value in pairs:
        if name not in types_by_name:
            close = difflib.get_close_matches(name, types_by_name, n=3, cutoff=0.75)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"Unknown config key {name!r}.{hint}")
        changes[name] = _coerce(name, value, types_by_name[name])
    return dataclasses.replace(config, **changes)


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(CUTConfig)


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """Turn value (text from the command line, or JSON) into the field's type."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        blank = value is None or (isinstance(value, str) and value.strip().lower() in ("none", ""))
        if blank and type(None) in args:
            return None
        kind = next(a for a in args if a is not type(None))
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"Config key {name!r} must be true or false. Got {value!r}.")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError(f"Config key {name!r} must be an integer. Got {value!r}.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip())
        except ValueError:
            raise ValueError(f"Config key {name!r} must be an integer. Got {value!r}.") from None
    if kind is float:
        if isinstance(value, bool):
            raise ValueError(f"Config key {name!r} must be a number. Got {value!r}.")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"Config key {name!r} must be a number. Got {value!r}.") from None
    if kind is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(f"Config key {name!r} must be text. Got {value!r}.")
        return str(value)
    if typing.get_origin(kind) is list:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ValueError(
                        f"Config key {name!r} must be a comma-separated list. Got {text!r}."
                    ) from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"Config key {name!r} must be a list of names. Got {value!r}.")
        return list(value)
    raise TypeError(f"No parser for config key {name!r} of type {kind!r}.")
