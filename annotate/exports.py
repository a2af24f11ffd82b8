"""Judgment rows -> the triples of DESIGN.md, one JSON object per line.

    {"id", "instruction", "input", "output", "judgment", "verdict", "annotator", "round",
     "response_id"}

`judgment` is the critique for a negative verdict and null for a positive one, as in the
paper's data, so training/data.py can read the file without knowing the database. Rows are
read with iterator(chunk_size=...) as plain tuples, so memory stays flat however many
judgments there are.
"""

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from django.db.models import QuerySet
from django.utils import timezone

from annotate import models

STATUSES = ("accepted", "pending", "rejected", "all")
CHUNK_SIZE = 2000
_COLUMNS = (
    "pk",
    "response__prompt__instruction",
    "response__prompt__input",
    "response__text",
    "critique",
    "verdict",
    "annotator__username",
    "response__round_id",
    "response_id",
)
# With lens=True: the stored lens, which counts only if computed from the current critique.
_LENS_COLUMNS = (
    "lens__critique",
    "lens__model",
    "lens__threshold",
    "lens__flagged_spans",
    "lens__flagged_share",
)


@dataclass
class ExportCounts:
    positive: int = 0
    negative: int = 0
    # round number (None for responses in no round) -> {"positive": n, "negative": n}
    per_round: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.positive + self.negative

    def add(self, verdict: str, round: int | None) -> None:
        setattr(self, verdict, getattr(self, verdict) + 1)
        counts = self.per_round.setdefault(round, {"positive": 0, "negative": 0})
        counts[verdict] += 1

    def lines(self) -> list[str]:
        """Human-readable summary, one line per round."""
        out = [f"{self.total} judgments: {self.positive} positive, {self.negative} negative."]
        numbered = sorted(r for r in self.per_round if r is not None)
        for round in numbered + ([None] if None in self.per_round else []):
            counts = self.per_round[round]
            name = f"round {round}" if round is not None else "no round"
            out.append(f"  {name}: {counts['positive']} positive, {counts['negative']} negative")
        return out


def select_judgments(
    status: str = "accepted",
    round_number: int | None = None,
    since: dt.datetime | dt.date | None = None,
) -> QuerySet:
    """Judgments in a review state ("all" for any), a round, created on or after `since`.

    A date means the start of that day in the current time zone.
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}.")
    queryset = models.Judgment.objects.all()
    if status != "all":
        queryset = queryset.filter(review_state=status)
    if round_number is not None:
        queryset = queryset.filter(response__round_id=round_number)
    if since is not None:
        if not isinstance(since, dt.datetime):
            since = dt.datetime.combine(since, dt.time.min)
        if timezone.is_naive(since):
            since = timezone.make_aware(since)
        queryset = queryset.filter(created__gte=since)
    return queryset.order_by("pk")


def iter_triples(
    queryset: QuerySet, *, positive_judgment: bool = False, lens: bool = False
) -> Iterator[dict]:
    """One triple per judgment. With positive_judgment, a positive judgment's note (if it
    has one) goes in `judgment` too; readers must then go by `verdict`. With lens, each
    has `lens`: {model, threshold, flagged_spans, flagged_share}, or null where none was
    computed for the current critique (annotate/lens.py)."""
    columns = _COLUMNS + _LENS_COLUMNS if lens else _COLUMNS
    rows = queryset.values_list(*columns).iterator(chunk_size=CHUNK_SIZE)
    for row in rows:
        pk, instruction, input, output, critique, verdict, username, round, response_id = row[:9]
        if verdict == models.Judgment.Verdict.NEGATIVE or (positive_judgment and critique):
            judgment = critique
        else:
            judgment = None
        triple = {
            "id": pk,
            "instruction": instruction,
            "input": input,
            "output": output,
            "judgment": judgment,
            "verdict": verdict,
            "annotator": username,
            "round": round,
            "response_id": response_id,
        }
        if lens:
            lens_critique, model, threshold, spans, share = row[9:]
            fresh = lens_critique is not None and lens_critique == critique
            triple["lens"] = (
                {
                    "model": model,
                    "threshold": threshold,
                    "flagged_spans": spans,
                    "flagged_share": share,
                }
                if fresh
                else None
            )
        yield triple


def iter_jsonl(queryset: QuerySet, counts: ExportCounts | None = None, **kw) -> Iterator[str]:
    """The lines of the JSONL file, for writing or streaming over HTTP."""
    for triple in iter_triples(queryset, **kw):
        if counts is not None:
            counts.add(triple["verdict"], triple["round"])
        yield json.dumps(triple, ensure_ascii=False) + "\n"


def write_jsonl(queryset: QuerySet, fileobj: IO[str], **kw) -> ExportCounts:
    counts = ExportCounts()
    for line in iter_jsonl(queryset, counts, **kw):
        fileobj.write(line)
    return counts
