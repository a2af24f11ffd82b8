"""Votes -> preference pairs, one JSON object per line, as TRL's DPO trainer and
`datasets.load_dataset("json", ...)` read them:

    {"prompt", "chosen", "rejected", "system_chosen", "system_rejected", "round_chosen",
     "round_rejected", "evaluator", "comparison", "vote_id", "outcome"}

One line per decisive vote (outcome "chosen"). Ties and "both are bad" carry no
preference and are left out unless asked for; then their outcome says so ("tie",
"both_bad") and chosen/rejected are simply A's and B's answers, so a trainer must filter
on outcome. `prompt` is the instruction, then the input after a blank line when there is
one. Rows are read with iterator(), so memory stays flat.
"""

import json
from collections.abc import Iterator
from typing import IO

from django.db.models import QuerySet

from annotate import compare_stats, models

CHUNK_SIZE = 2000
_COLUMNS = (
    "pk",
    "choice",
    "a_on_left",
    "pair__prompt__instruction",
    "pair__prompt__input",
    "pair__response_a__text",
    "pair__response_b__text",
    "pair__response_a__round_id",
    "pair__response_b__round_id",
    "pair__comparison__system_a",
    "pair__comparison__system_b",
    "pair__comparison_id",
    "evaluator__username",
)


def select_votes(comparison: int | None = None, *, include_ties: bool = False) -> QuerySet:
    votes = models.Vote.objects.all()
    if comparison is not None:
        votes = votes.filter(pair__comparison_id=comparison)
    if not include_ties:
        votes = votes.filter(choice__in=[models.Vote.Choice.LEFT, models.Vote.Choice.RIGHT])
    return votes.order_by("pk")


def iter_preferences(votes: QuerySet) -> Iterator[dict]:
    rows = votes.values_list(*_COLUMNS).iterator(chunk_size=CHUNK_SIZE)
    for (
        pk,
        choice,
        a_on_left,
        instruction,
        input,
        text_a,
        text_b,
        round_a,
        round_b,
        system_a,
        system_b,
        comparison,
        evaluator,
    ) in rows:
        won = compare_stats.winner(choice, a_on_left)
        a = (text_a, system_a, round_a)
        b = (text_b, system_b, round_b)
        chosen, rejected = (b, a) if won == "b" else (a, b)
        yield {
            "prompt": f"{instruction}\n\n{input}" if input else instruction,
            "chosen": chosen[0],
            "rejected": rejected[0],
            "system_chosen": chosen[1],
            "system_rejected": rejected[1],
            "round_chosen": chosen[2],
            "round_rejected": rejected[2],
            "evaluator": evaluator,
            "comparison": comparison,
            "vote_id": pk,
            "outcome": "chosen" if won in ("a", "b") else won,
        }


def iter_jsonl(votes: QuerySet) -> Iterator[str]:
    for row in iter_preferences(votes):
        yield json.dumps(row, ensure_ascii=False) + "\n"


def write_jsonl(votes: QuerySet, fileobj: IO[str]) -> int:
    written = 0
    for line in iter_jsonl(votes):
        fileobj.write(line)
        written += 1
    return written
