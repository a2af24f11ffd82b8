"""Building stored lens results for the lens tests, as a worker would store them."""

import math

from django_tasks_db.models import DBTaskResult

from annotate import lens, models


def tokens_for(text: str, flagged: dict[str, float]) -> list[dict]:
    """Tokens over the whole text, split on spaces; those whose text is a key of `flagged`
    are flagged with that ratio (the others get ratio 1)."""
    tokens, pos = [], 0
    for piece in text.split(" "):
        end = pos + len(piece)
        if piece:
            ratio = flagged.get(piece, 1.0)
            tokens.append(
                {"start": pos, "end": end, "log_ratio": math.log(ratio), "flagged": ratio > 1.1}
            )
        pos = end + 1
    return tokens


def result_for(text: str, tokens: list[dict], model: str = "tiny-model") -> dict:
    flagged = [[t["start"], t["end"]] for t in tokens if t["flagged"]]
    return {
        "model": model,
        "threshold": 1.1,
        "flagged_spans": flagged,
        "flagged_share": len(flagged) / len(tokens) if tokens else 0.0,
        "tokens": tokens,
    }


def store_lens(judgment: models.Judgment, flagged: dict[str, float]) -> models.LensResult:
    tokens = tokens_for(judgment.response.text, flagged)
    return lens.store(judgment, judgment.critique, result_for(judgment.response.text, tokens))


def finish(job_id: str, return_value=None, failed: str | None = None) -> None:
    """Mark a queued job done, as the worker does when it finishes."""
    row = DBTaskResult.objects.get(pk=job_id)
    if failed:
        row.set_failed(ValueError(failed))
    else:
        row.set_successful(return_value)
