"""The rounds dashboard's numbers: per round, what generated it, what trained it, how it
was judged, and how it fared against the previous round and the base in comparisons."""

from dataclasses import dataclass
from pathlib import Path

from django.db.models import Count, OuterRef, Q

from annotate import compare_stats, compare_systems, models, stats


@dataclass
class WinRate:
    comparison: int
    rate: float  # of this round over the other system
    low: float
    high: float
    votes: int


@dataclass
class RoundRow:
    number: int
    generator: str
    training_run: int | None
    holdout_gain: float | None
    approved_delta: float | None
    responses: int
    judged: int
    negative_share: float | None
    negative_interval: tuple[float, float] | None
    alpha: float | None
    vs_previous: WinRate | None
    vs_base: WinRate | None


def _validation(run: models.TrainingRun | None) -> dict:
    """The final holdout numbers train_cut stores in TrainingRun.metrics["validation"]."""
    if run is None or not isinstance(run.metrics, dict):
        return {}
    return run.metrics.get("validation") or {}


def _win_rate(system: str, others: set[str], results: dict) -> WinRate | None:
    """The newest comparison of `system` with one of `others`, as `system`'s win rate."""
    for comparison, result in results.items():
        pair = {comparison.system_a, comparison.system_b}
        if system not in pair or not (pair - {system}) <= others or result.win_rate is None:
            continue
        low, high = result.interval
        if comparison.system_b == system:
            return WinRate(comparison.pk, result.win_rate, low, high, result.votes)
        return WinRate(comparison.pk, 1 - result.win_rate, 1 - high, 1 - low, result.votes)
    return None


def round_rows() -> list[RoundRow]:
    """One row per round, oldest first."""
    rounds = list(
        models.Round.objects.select_related("training_run")
        .annotate(
            n_responses=models.count_subquery(
                models.Response.objects.filter(round=OuterRef("pk")), "round"
            )
        )
        .order_by("number")
    )
    judged = {
        row["response__round_id"]: row
        for row in models.Judgment.objects.filter(response__round__isnull=False)
        .values("response__round_id")
        .annotate(n=Count("pk"), negative=Count("pk", filter=Q(verdict="negative")))
    }
    alpha = {row.round: row.alpha for row in stats.round_agreement()}
    results = {
        comparison: compare_stats.comparison_result(comparison, count_evaluators=False)
        for comparison in models.Comparison.objects.filter(
            Q(system_a__startswith="round:") | Q(system_b__startswith="round:")
        ).order_by("-created", "-id")
    }
    # The base model speaks as "base" and through every round it generated without adapter.
    base = {"base"} | {f"round:{r.number}" for r in rounds if not r.adapter}
    rows, previous = [], None
    for round in rounds:
        counts = judged.get(round.number, {"n": 0, "negative": 0})
        validation = _validation(round.training_run)
        system = f"round:{round.number}"
        rows.append(
            RoundRow(
                number=round.number,
                generator=Path(round.adapter).name if round.adapter else round.base_model,
                training_run=round.training_run_id,
                holdout_gain=validation.get("gain"),
                approved_delta=validation.get("approved_delta"),
                responses=round.n_responses,
                judged=counts["n"],
                negative_share=counts["negative"] / counts["n"] if counts["n"] else None,
                negative_interval=compare_stats.wilson(counts["negative"], counts["n"]),
                alpha=alpha.get(round.number),
                vs_previous=_win_rate(system, {f"round:{previous}"}, results)
                if previous is not None
                else None,
                vs_base=None if system in base else _win_rate(system, base, results),
            )
        )
        previous = round.number
    return rows


def bt_scores() -> list:
    """Bradley–Terry scores of every compared system, with labels, best first."""
    scores = compare_stats.bradley_terry(compare_stats.all_battles())
    for score in scores:
        score.label = compare_systems.system_label(score.system)
    return scores
