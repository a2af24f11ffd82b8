"""Agreement and per-annotator figures for the reviewer's agreement page.

Agreement is measured on verdicts of responses that more than one annotator judged
(overlap > 1), per round: the share of agreeing pairs of verdicts, and Krippendorff's
alpha for nominal data (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").
All judgments count, whatever their review state: agreement is about how annotators see
the same response, before anyone corrects them.
"""

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from statistics import median

from django.db.models import Count, Q

from annotate import models


def krippendorff_alpha_nominal(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Alpha for nominal values; each unit is the list of values coders gave one item.

    Units with fewer than two values are not pairable and are left out. Returns None when
    alpha is undefined: no pairable values, or every value in the same category (no
    expected disagreement).
    """
    # Coincidence matrix: each ordered pair of values within a unit of m values adds
    # 1 / (m - 1), so every pairable value contributes exactly 1 in total.
    coincidences: Counter = Counter()
    for unit in units:
        m = len(unit)
        if m < 2:
            continue
        for i, c in enumerate(unit):
            for j, k in enumerate(unit):
                if i != j:
                    coincidences[c, k] += 1 / (m - 1)
    n_c: Counter = Counter()
    for (c, _), count in coincidences.items():
        n_c[c] += count
    n = sum(n_c.values())
    if n <= 1:
        return None
    observed = sum(count for (c, k), count in coincidences.items() if c != k)
    expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k) / (n - 1)
    if expected == 0:
        return None
    return 1 - observed / expected


def pairwise_agreement(units: Iterable[Sequence[Hashable]]) -> tuple[int, int]:
    """(agreeing pairs, all pairs) over the units."""
    agreeing = total = 0
    for unit in units:
        for a, b in combinations(unit, 2):
            total += 1
            agreeing += a == b
    return agreeing, total


@dataclass
class RoundAgreement:
    round: int | None
    judgments: int
    negative_share: float | None  # the paper's progress signal: falls as the model improves
    units: int  # responses with overlap > 1 and at least two verdicts
    pairs: int
    agreement: float | None
    alpha: float | None


def round_agreement() -> list[RoundAgreement]:
    """One row per round (responses without a round last), newest round first."""
    verdicts: dict[int | None, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    rows = models.Judgment.objects.filter(response__overlap__gt=1).values_list(
        "response__round_id", "response_id", "verdict"
    )
    for round_id, response_id, verdict in rows.iterator(chunk_size=2000):
        verdicts[round_id][response_id].append(verdict)
    totals = {
        row["response__round_id"]: row
        for row in models.Judgment.objects.values("response__round_id").annotate(
            n=Count("pk"), negative=Count("pk", filter=Q(verdict="negative"))
        )
    }
    result = []
    for round_id in sorted(totals, key=lambda r: (r is None, -(r or 0))):
        units = [u for u in verdicts[round_id].values() if len(u) >= 2]
        agreeing, pairs = pairwise_agreement(units)
        total = totals[round_id]
        result.append(
            RoundAgreement(
                round=round_id,
                judgments=total["n"],
                negative_share=total["negative"] / total["n"] if total["n"] else None,
                units=len(units),
                pairs=pairs,
                agreement=agreeing / pairs if pairs else None,
                alpha=krippendorff_alpha_nominal(units),
            )
        )
    return result


@dataclass
class AnnotatorStats:
    username: str
    judgments: int
    median_seconds: float | None
    accepted: int
    rejected: int

    @property
    def acceptance_rate(self) -> float | None:
        reviewed = self.accepted + self.rejected
        return self.accepted / reviewed if reviewed else None


def annotator_stats() -> list[AnnotatorStats]:
    """Per annotator: judgments, median seconds per judgment, accepted and rejected."""
    seconds: dict[str, list[int]] = defaultdict(list)
    timed = models.Judgment.objects.filter(seconds_spent__isnull=False).values_list(
        "annotator__username", "seconds_spent"
    )
    for username, spent in timed.iterator(chunk_size=5000):
        seconds[username].append(spent)
    counts = (
        models.Judgment.objects.values("annotator__username")
        .annotate(
            n=Count("pk"),
            accepted=Count("pk", filter=Q(review_state="accepted")),
            rejected=Count("pk", filter=Q(review_state="rejected")),
        )
        .order_by("annotator__username")
    )
    return [
        AnnotatorStats(
            username=row["annotator__username"],
            judgments=row["n"],
            median_seconds=median(seconds[row["annotator__username"]])
            if seconds[row["annotator__username"]]
            else None,
            accepted=row["accepted"],
            rejected=row["rejected"],
        )
        for row in counts
    ]
