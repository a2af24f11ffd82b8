"""A training run's metric series: the per-step lines of metrics.jsonl, kept readable.

A 3-step run keeps all 3 points; a 10-hour run of 50,000 steps keeps every k-th step, k
the same along the whole run (so the curve is evenly sampled), plus every evaluation, the
first and the newest step. The job (annotate/jobs.py) follows a trainer's metrics.jsonl
with MetricsFollower; the inline path of train_cut merges the trainer's callbacks.
"""

import json
import math
from pathlib import Path

# Written by the trainer (training/trainer.py) beside the adapter, one JSON line per step.
METRICS_FILENAME = "metrics.jsonl"
# Keys of a metrics.jsonl line that are events, not steps ({"event": "plan", ...}).
EVENT = "event"


def parse_lines(text: str) -> tuple[list[dict], list[dict]]:
    """Complete JSON lines of metrics.jsonl -> (step records, event records).

    A line that does not parse (a partial write, or garbage) is skipped.
    """
    steps, events = [], []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if EVENT in record:
            events.append(record)
        elif isinstance(record.get("step"), int):
            steps.append(record)
    return steps, events


def merge(series: list[dict], new: list[dict], total_steps: int | None, cap: int) -> list[dict]:
    """The series with the new step records added, thinned to about `cap` points.

    A new record for step N replaces every kept point from step N on: a resumed run
    repeats the steps after its last checkpoint, and its numbers are the ones that count.
    """
    merged = list(series)
    for record in new:
        step = record["step"]
        while merged and merged[-1]["step"] >= step:
            merged.pop()
        merged.append(record)
    return thin(merged, total_steps, cap)


def thin(series: list[dict], total_steps: int | None, cap: int) -> list[dict]:
    """Keep steps that are multiples of one stride, evaluations, the first and the last."""
    if len(series) <= cap:
        return series
    stride = max(1, math.ceil((total_steps or 0) / cap))
    while True:
        kept = [
            point
            for i, point in enumerate(series)
            if i == 0 or i == len(series) - 1 or "eval" in point or point["step"] % stride == 0
        ]
        if len(kept) <= cap or stride > series[-1]["step"]:
            return kept
        stride *= 2


class MetricsFollower:
    """Reads the complete lines a trainer appended to metrics.jsonl since the last read and
    turns them into field updates (series, total_steps, plan) for the run."""

    def __init__(self, run):
        self.run = run
        self.path = Path(run.output_dir) / METRICS_FILENAME
        self.offset = 0
        self.last_line = b""  # the line that ends at offset, to notice a rewrite

    def read(self) -> dict:
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                if self.offset and (size < self.offset or not self._still_there(handle)):
                    self.offset = 0  # rewritten by a resume: read it again from the start
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return {}
        complete = chunk[: chunk.rfind(b"\n") + 1]
        if not complete:
            return {}
        self.offset += len(complete)
        self.last_line = complete[complete.rfind(b"\n", 0, len(complete) - 1) + 1 :]
        steps, events = parse_lines(complete.decode("utf-8", "replace"))
        run, changes = self.run, {}
        for event in events:
            if event.get("event") == "plan" and isinstance(event.get("steps"), int):
                run.total_steps, run.plan = event["steps"], event
                changes.update(total_steps=run.total_steps, plan=run.plan)
        if steps:
            run.series = merge(run.series, steps, run.total_steps, run.SERIES_POINTS)
            changes["series"] = run.series
        return changes

    def _still_there(self, handle) -> bool:
        handle.seek(self.offset - len(self.last_line))
        return handle.read(len(self.last_line)) == self.last_line
