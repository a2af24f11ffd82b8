"""Checkpoints and the saved adapter: everything a run writes besides its metrics.

A checkpoint (checkpoints/step-NNNNNNN) is a usable adapter plus trainer_state.pt: optimizer,
scheduler, the data position and every process's random state, so a resumed run continues
exactly where the saved one was. A checkpoint directory is complete or absent.
"""

import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from training import data as data_module
from training.config import CONFIG_FILENAME, CUTConfig

RUN_FILENAME = "run.json"  # data sha256, counts, metrics and the stop reason, beside the adapter
STATE_FILENAME = "trainer_state.pt"  # optimizer, scheduler, data position, RNG, in checkpoints
CHECKPOINT_DIR = "checkpoints"


@dataclass
class Progress:
    """Everything besides weights and optimizer that a checkpoint must restore."""

    step: int = 0
    epoch: int = 0
    next_chunk: int = 0  # first optimizer step (within the epoch) not yet done
    tokens: int = 0
    seconds: float = 0.0
    loss_curve: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)
    best: dict | None = None  # {"step", "gain", "state"} of the best adapter so far
    last: dict = field(default_factory=dict)  # the last step's metrics


def lora_state(model: nn.Module) -> dict[str, Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}


def load_lora_state(model: nn.Module, state: dict[str, Tensor]) -> None:
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(model, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"The checkpoint's adapter does not fit this model ({unexpected[0]}...).")


def find_checkpoint(output_dir: Path, resume_from: str) -> Path | None:
    if not resume_from:
        return None
    if resume_from == "latest":
        found = sorted((output_dir / CHECKPOINT_DIR).glob("step-*"))
        complete = [p for p in found if (p / STATE_FILENAME).is_file()]
        if not complete:
            raise ValueError(f"resume_from=latest, but {output_dir / CHECKPOINT_DIR} has none.")
        return complete[-1]
    path = Path(resume_from).expanduser()
    if not (path / STATE_FILENAME).is_file():
        raise ValueError(f"{path} is not a checkpoint of this trainer (no {STATE_FILENAME}).")
    return path


def save_checkpoint(
    output_dir: Path,
    config: CUTConfig,
    peft_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    state: Progress,
    rng: list[dict],
    data_sha256: str,
) -> Path:
    root = output_dir / CHECKPOINT_DIR
    target = root / f"step-{state.step:07d}"
    scratch = root / f".step-{state.step:07d}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    peft_model.save_pretrained(scratch)  # a checkpoint is also a usable adapter
    config.save(scratch / CONFIG_FILENAME)
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "progress": dict(vars(state)),
            "rng": rng,  # one entry per process
            "data_sha256": data_sha256,
        },
        scratch / STATE_FILENAME,
    )
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)  # a checkpoint directory is complete or absent
    kept = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in kept[: -config.checkpoints_kept]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def resume(
    checkpoint: Path,
    peft_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    data_sha256: str,
    device: torch.device,
    rank: int,
) -> Progress:
    from peft.utils import load_peft_weights

    saved = torch.load(checkpoint / STATE_FILENAME, map_location="cpu", weights_only=False)
    if saved["data_sha256"] != data_sha256:
        raise ValueError(
            f"The data changed since checkpoint {checkpoint} (sha256 differs); resume with the "
            "same data file, or start a new run."
        )
    load_lora_state(peft_model, load_peft_weights(str(checkpoint), device=str(device)))
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    states = saved["rng"]
    rng = states[rank] if rank < len(states) else states[0]  # more processes than before
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"], device)
    random.setstate(rng["python"])
    return Progress(**saved["progress"])


def gather_rng_states(accelerator) -> list[dict]:
    """The random states of every process (a collective call: all processes make it)."""
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(accelerator.device)
        if accelerator.device.type == "cuda"
        else None,
        "python": random.getstate(),
    }
    if accelerator.num_processes == 1:
        return [state]
    from accelerate.utils import gather_object

    return gather_object([state])


def save_final(
    output_dir: Path,
    config: CUTConfig,
    peft_model: nn.Module,
    tokenizer,
    plan: data_module.Plan,
    metrics: dict,
    data_sha256: str,
    stop_reason: str,
) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    config.save(output_dir / CONFIG_FILENAME)
    run = {
        "data": str(config.data),
        "data_sha256": data_sha256,
        "base_model": config.base_model,
        "template": config.template,
        "plan": {k: v for k, v in vars(plan).items() if k != "warnings"},
        "warnings": plan.warnings,
        "metrics": metrics,
        "stopped_early": bool(stop_reason),
        "stop_reason": stop_reason,
    }
    (output_dir / RUN_FILENAME).write_text(json.dumps(run, indent=2) + "\n")
