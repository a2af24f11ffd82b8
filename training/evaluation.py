"""Validation on the holdout, against the base model, and the collapse guard.

The holdout's approved and criticised responses are scored with the inference prompt (no
judgment). CUT should raise the first and lower the second; when approved responses fall
more than collapse_margin nats per token below the base model, unlikelihood is pushing down
good text too and the guard stops the run, keeping the best adapter seen.
"""

from collections.abc import Callable

import torch
from torch import nn

from training import checkpoints
from training import data as data_module
from training import loss as loss_module
from training.config import CUTConfig
from training.logprobs import view_logprobs


@torch.no_grad()
def score_holdout(
    scorer: nn.Module,
    examples: list[data_module.Example],
    *,
    threshold: float,
    batch_size: int,
    device: torch.device,
    autocast: Callable,
) -> dict:
    """Mean token log-prob of approved and of criticised responses with the inference prompt
    (no judgment), and the share of criticised tokens CUT would flag."""
    sums = {"approved": [0.0, 0], "criticised": [0.0, 0]}
    flagged = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        view = data_module.view_batch(
            [(e.prompt_ids, e.response_ids) for e in chunk], pad_id=0
        ).to(device)
        with autocast():
            logps = view_logprobs(scorer, view)  # (B, R)
        row_sums = torch.where(view.mask, logps, torch.zeros_like(logps)).sum(dim=1).tolist()
        for example, row_sum in zip(chunk, row_sums, strict=True):
            bucket = sums["criticised" if example.negative else "approved"]
            bucket[0] += row_sum
            bucket[1] += len(example.response_ids)
        negatives = [(row, e) for row, e in enumerate(chunk) if e.negative]
        if negatives:
            judged_view = data_module.view_batch(
                [(e.judged_ids, e.response_ids) for _, e in negatives], pad_id=0
            ).to(device)
            with autocast():
                judged = view_logprobs(scorer, judged_view)
            # Same response tokens; this chunk's widest response may be an approved one.
            misalign = logps[[row for row, _ in negatives]][:, : judged.shape[1]]
            flags = loss_module.flag_inappropriate(misalign, judged, judged_view.mask, threshold)
            flagged += int(flags.sum())
    result = {}
    for name, (total, count) in sums.items():
        result[f"{name}_logp"] = total / count if count else None
    count = sums["criticised"][1]
    result["flagged"] = flagged / count if count else None
    return result


def compare_to_base(current: dict, base: dict) -> dict:
    """The holdout numbers against the base model's; gain = approved_delta - criticised_delta."""

    def delta(name: str) -> float | None:
        if current[name] is None or base[name] is None:
            return None
        return current[name] - base[name]

    approved, criticised = delta("approved_logp"), delta("criticised_logp")
    gain = approved - criticised if approved is not None and criticised is not None else None
    return {
        **current,
        "approved_delta": approved,
        "criticised_delta": criticised,
        "gain": gain,
    }


def guard(
    config: CUTConfig, state: checkpoints.Progress, numbers: dict, peft_model: nn.Module
) -> str:
    """Track the best adapter; return why to stop when approved responses collapse."""
    approved, gain = numbers["approved_delta"], numbers["gain"]
    if config.collapse_guard and approved is not None and approved < -config.collapse_margin:
        best = state.best
        return (
            f"Stopped early at step {state.step}: approved holdout responses fell "
            f"{-approved:.3f} nats per token below the base model, more than collapse_margin "
            f"({config.collapse_margin}); unlikelihood is pushing down good text too. Kept the "
            f"adapter of step {best['step']} (gain {best['gain']:.3f}). Try a smaller "
            "weight_unlike or learning_rate, or fewer epochs."
        )
    score = gain if gain is not None else approved
    if score is not None and (state.best is None or score > state.best["gain"]):
        state.best = {
            "step": state.step,
            "gain": score,
            "state": checkpoints.lora_state(peft_model),
        }
    return ""


def fmt(value: float | None, sign: str = "") -> str:
    return "n/a" if value is None else f"{value:{sign}.4f}"


def describe(step: int, numbers: dict) -> str:
    flagged = "n/a" if numbers["flagged"] is None else f"{numbers['flagged']:.1%}"
    return (
        f"Step {step} holdout, against the base model: approved "
        f"{fmt(numbers['approved_delta'], '+')}, criticised "
        f"{fmt(numbers['criticised_delta'], '+')} nats per token, gain "
        f"{fmt(numbers['gain'], '+')}; {flagged} of criticised tokens flagged."
    )
