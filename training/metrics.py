"""metrics.jsonl: one JSON object per optimizer step, and event lines a supervisor follows.

    {"event": "plan", "steps", "records", "align_p", "align_n", "tokens", ...}   first
    {"step": 1, "loss", "l_mle", "l_ul", "flagged", "lr", "tokens_per_s", ...}  each step
    {"event": "stopped", "reason": "signal" | "request", "step": N}             on a stop

Readers of the step lines skip the event lines (iter_metrics does).
"""

import json
from collections.abc import Iterator
from pathlib import Path

import torch

from training import data as data_module
from training.checkpoints import Progress
from training.cut_step import MicroStats

METRICS_FILENAME = "metrics.jsonl"


def open_metrics(output_dir: Path, step: int):
    """metrics.jsonl for appending, without lines past `step` (left by an interrupted run).

    Event lines without a step (an earlier "plan") are kept: the file tells the run's story.
    """
    path = output_dir / METRICS_FILENAME
    kept = []
    if step and path.exists():
        kept = [
            line
            for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
    path.write_text("".join(line + "\n" for line in kept))
    return open(path, "a")  # noqa: SIM115 (closed in train's finally)


def plan_event(plan: data_module.Plan, step: int) -> dict:
    """The first line a run writes: what it will do (a supervisor's progress total)."""
    return {
        "event": "plan",
        "steps": plan.steps,  # optimizer steps of the whole run
        "records": plan.records,
        "align_p": plan.align_p,
        "align_n": plan.align_n,
        "tokens": plan.tokens,  # over all training views of one epoch
        "holdout": plan.holdout_positives + plan.holdout_negatives,
        "template": plan.template,
        "truncated": plan.truncated,
        "start_step": step,  # > 0 when resumed from a checkpoint
    }


def step_metrics(
    accelerator,
    state: Progress,
    stats: list[MicroStats],
    lr: float,
    grad_norm: float,
    seconds: float,
) -> dict:
    """The step's numbers over every process's micro-batches (sums all-reduced once)."""
    uls = [s.l_ul for s in stats if s.l_ul is not None]
    sums = [
        sum(s.loss for s in stats),
        sum(s.l_mle for s in stats),
        len(stats),
        sum(uls),
        len(uls),
        sum(s.flagged_tokens for s in stats),
        sum(s.misalign_tokens for s in stats),
        sum(s.tokens for s in stats),
    ]
    if accelerator.num_processes > 1:
        total = torch.tensor(sums, dtype=torch.float64, device=accelerator.device)
        sums = accelerator.reduce(total, reduction="sum").tolist()
    loss, l_mle, count, ul, ul_count, flagged, misalign_tokens, tokens = sums
    return {
        "step": state.step,
        "epoch": state.epoch,
        "loss": loss / count,
        "l_mle": l_mle / count,
        "l_ul": ul / ul_count if ul_count else None,
        "flagged": flagged / misalign_tokens if misalign_tokens else None,
        "lr": lr,
        "grad_norm": grad_norm,
        "tokens": int(tokens),
        "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        "seconds": seconds,
    }


def final_metrics(state: Progress, holdout: list, stop_reason: str) -> dict:
    last = state.last
    validation = None
    if state.evaluations:
        validation = dict(state.evaluations[-1])
        if stop_reason:
            validation["best_step"] = state.best["step"]
    return {
        "loss": last.get("loss"),
        "l_mle": last.get("l_mle"),
        "l_ul": last.get("l_ul"),
        "flagged": last.get("flagged"),
        "steps": state.step,
        "tokens": state.tokens,
        "seconds": round(state.seconds, 3),
        "tokens_per_s": state.tokens / state.seconds if state.seconds else 0.0,
        "holdout_records": len(holdout),
        "validation": validation,
        "evaluations": state.evaluations,
        "loss_curve": state.loss_curve,
    }


def iter_metrics(output_dir: str | Path) -> Iterator[dict]:
    """The per-step metrics a run wrote, one dict per line (event lines skipped)."""
    for record in iter_metrics_lines(output_dir):
        if "event" not in record:
            yield record


def iter_metrics_lines(output_dir: str | Path) -> Iterator[dict]:
    """Every line of metrics.jsonl: step metrics and events ({"event": "plan"|"stopped"})."""
    with open(Path(output_dir) / METRICS_FILENAME) as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
