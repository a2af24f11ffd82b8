"""The numbers of a comparison: win rate, intervals, sign test, position bias, agreement,
and Bradley–Terry scores across every compared system.

Win rate of B over A: (B wins + half of the ties) / votes, where "both are bad" counts as
a tie (as Chatbot Arena counts "tie (bothbad)"): neither side won. Its 95 % interval is a
percentile bootstrap over votes. A vote is one of three scores (0, ½, 1), so resampling n
votes with replacement is drawing the counts of the three from a multinomial with the
observed shares: the bootstrap is exact and costs O(resamples), not O(resamples × votes).

Sign test: the two-sided binomial test of B's decisive wins against ½ (scipy.stats.binomtest),
on decisive votes only; ties carry no sign.

Position bias: the share of decisive votes that went to the left side, with its Wilson
95 % interval. Far from ½, evaluators favour a side whatever is on it (the random order
keeps that from biasing the win rate, but it is noise worth seeing).

Bradley–Terry: P(i beats j) = σ(θ_i − θ_j), fitted by maximum likelihood with
scipy.optimize.minimize over every vote of every comparison, ties as half a win each way,
as Chatbot Arena's `compute_mle_elo` does (logistic regression on ±1 features). Scores are
on the Elo scale (400 / ln 10 per unit of θ), the base model at 1000 when it was compared,
else the mean at 1000. The bootstrap refits on resampled votes; all resamples are fitted in
one minimize call over their stacked parameters (the objective is a sum of independent
parts, so its optimum is each part's optimum), which keeps 1,000 refits vectorised.
"""

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from scipy import optimize
from scipy import stats as sps

from annotate import models

RESAMPLES = 1000
SEED = 0
Z95 = 1.959963984540054
ELO_SCALE = 400 / math.log(10)
ELO_BASE = 1000.0


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion (Wilson 1927); None when n is 0."""
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate_interval(
    a: int, b: int, ties: int, *, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """95 % percentile bootstrap interval of (b + ties/2) / n; None without votes."""
    n = a + b + ties
    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [a / n, ties / n, b / n], size=resamples)  # (R, 3)
    rates = (counts[:, 2] + 0.5 * counts[:, 1]) / n
    low, high = np.percentile(rates, [2.5, 97.5])
    return float(low), float(high)


def winner(choice: str, a_on_left: bool) -> str:
    if choice in ("tie", "both_bad"):
        return choice
    return "a" if (choice == "left") == a_on_left else "b"


@dataclass
class Result:
    votes: int = 0
    a: int = 0
    b: int = 0
    tie: int = 0
    both_bad: int = 0
    left: int = 0  # decisive votes for the left side
    win_rate: float | None = None
    interval: tuple[float, float] | None = None
    p_value: float | None = None
    left_share: float | None = None
    left_interval: tuple[float, float] | None = None
    agreement_units: int = 0
    agreement: float | None = None
    alpha: float | None = None
    evaluators: int = 0
    counts: dict = field(default_factory=dict)

    @property
    def decisive(self) -> int:
        return self.a + self.b


CATEGORIES = ("a", "b", "tie", "both_bad")


def unit_counts(units) -> np.ndarray:
    """Lists of winners per pair -> a (pairs, 4) array of counts per category."""
    counts = np.zeros((len(units), len(CATEGORIES)), dtype=np.int64)
    for row, unit in enumerate(units):
        for value in unit:
            counts[row, CATEGORIES.index(value)] += 1
    return counts


def alpha_from_counts(counts: np.ndarray) -> float | None:
    """Krippendorff's alpha (nominal) from per-unit category counts, vectorised: the same
    number as annotate.stats.krippendorff_alpha_nominal over the units' values (a test
    checks it), without a Python loop over 100,000 votes.

    Coincidences o_ck = Σ_u n_uc (n_uk − [c = k]) / (m_u − 1) over units with m_u ≥ 2."""
    counts = counts[counts.sum(axis=1) >= 2].astype(float)
    if not len(counts):
        return None
    weighted = counts / (counts.sum(axis=1) - 1)[:, None]  # (U, C)
    coincidences = weighted.T @ counts - np.diag(weighted.sum(axis=0))  # (C, C)
    n_c = coincidences.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return None
    observed = coincidences.sum() - np.trace(coincidences)
    expected = (n * n - (n_c**2).sum()) / (n - 1)
    if expected == 0:
        return None
    return float(1 - observed / expected)


def summarize(
    rows, *, units=None, resamples: int = RESAMPLES, seed: int = SEED, evaluators: int = 0
) -> Result:
    """rows: (choice, a_on_left, count) aggregates; units: for pairs with overlap > 1, a
    (pairs, 4) array of how many votes each winner ("a", "b", "tie", "both_bad") got, or
    the lists of winners themselves."""
    tally = dict.fromkeys(CATEGORIES, 0)
    left = 0
    for choice, a_on_left, count in rows:
        tally[winner(choice, a_on_left)] += count
        left += count if choice == "left" else 0
    return from_tally(
        **tally, left=left, units=units, resamples=resamples, seed=seed, evaluators=evaluators
    )


def from_tally(
    *,
    a: int,
    b: int,
    tie: int,
    both_bad: int,
    left: int,
    units=None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    evaluators: int = 0,
) -> Result:
    """The figures from the counts of each winner and of decisive votes for the left."""
    result = Result(a=a, b=b, tie=tie, both_bad=both_bad, left=left, evaluators=evaluators)
    result.votes = result.a + result.b + result.tie + result.both_bad
    ties = result.tie + result.both_bad
    if result.votes:
        result.win_rate = (result.b + 0.5 * ties) / result.votes
        result.interval = win_rate_interval(
            result.a, result.b, ties, resamples=resamples, seed=seed
        )
    if result.decisive:
        result.p_value = float(sps.binomtest(result.b, result.decisive, 0.5).pvalue)
        result.left_share = result.left / result.decisive
        result.left_interval = wilson(result.left, result.decisive)
    counts = units if isinstance(units, np.ndarray) else unit_counts(list(units or []))
    counts = counts[counts.sum(axis=1) >= 2]
    result.agreement_units = len(counts)
    # Agreeing pairs of votes: C(n_uc, 2) summed; all pairs: C(m_u, 2) summed.
    pairs = int((counts.sum(axis=1) * (counts.sum(axis=1) - 1) // 2).sum())
    agreeing = int((counts * (counts - 1) // 2).sum())
    result.agreement = agreeing / pairs if pairs else None
    result.alpha = alpha_from_counts(counts)
    return result


def comparison_result(
    comparison: models.Comparison, *, count_evaluators: bool = True, **kw
) -> Result:
    """From the pairs' tallies (ComparisonPair.a_votes ...), not the votes: a sum over the
    pairs, the tallies of pairs with several votes (agreement), and the evaluators."""
    pairs = models.ComparisonPair.objects.filter(comparison=comparison)
    columns = ["a_votes", "b_votes", "tie_votes", "both_bad_votes"]
    totals = pairs.aggregate(**{name: Coalesce(Sum(name), 0) for name in (*columns, "left_votes")})
    shared = pairs.filter(vote_count__gte=2).values_list(*columns)
    units = np.array(list(shared.iterator(chunk_size=5000)), dtype=np.int64).reshape(-1, 4)
    # A scan of the votes themselves: only the results page shows it.
    evaluators = (
        models.Vote.objects.filter(pair__comparison=comparison)
        .order_by()
        .values("evaluator")
        .distinct()
        .count()
        if count_evaluators
        else 0
    )
    return from_tally(
        a=totals["a_votes"],
        b=totals["b_votes"],
        tie=totals["tie_votes"],
        both_bad=totals["both_bad_votes"],
        left=totals["left_votes"],
        units=units,
        evaluators=evaluators,
        **kw,
    )


# Bradley–Terry ------------------------------------------------------------------------------


def _nll(theta_free, i, j, w, n_systems, n_fits):
    """Negative log-likelihood of n_fits independent BT fits, stacked; θ_0 = 0 anchors each.

    i, j: (C,) system indices of each cell; w: (n_fits, C) weight of "i beat j" in each fit.
    """
    theta = np.zeros((n_fits, n_systems))
    theta[:, 1:] = theta_free.reshape(n_fits, n_systems - 1)
    d = theta[:, i] - theta[:, j]  # (F, C)
    # -log σ(d) = log(1 + e^{-d}), computed stably.
    loss = (w * np.logaddexp(0.0, -d)).sum()
    g_d = -w * (1.0 - 1.0 / (1.0 + np.exp(-d)))  # d/dd of w·log(1+e^{-d}) = -w·σ(-d)
    grad = np.zeros((n_fits, n_systems))
    for k in range(len(i)):  # C is tiny (systems squared), F is the vector
        grad[:, i[k]] += g_d[:, k]
        grad[:, j[k]] -= g_d[:, k]
    # A weak prior keeps a system that never lost (or won) at a finite score.
    loss += 0.5 * 1e-4 * (theta_free**2).sum()
    return loss, grad[:, 1:].ravel() + 1e-4 * theta_free


def _fit(i, j, w, n_systems) -> np.ndarray:
    """θ for each row of w: (F, n_systems)."""
    n_fits = w.shape[0]
    x0 = np.zeros(n_fits * (n_systems - 1))
    found = optimize.minimize(
        _nll, x0, args=(i, j, w, n_systems, n_fits), jac=True, method="L-BFGS-B"
    )
    theta = np.zeros((n_fits, n_systems))
    theta[:, 1:] = found.x.reshape(n_fits, n_systems - 1)
    return theta


@dataclass
class Score:
    system: str
    score: float
    low: float
    high: float
    votes: int


def bradley_terry(
    battles: list[tuple[str, str, str, int]],
    *,
    anchor: str | None = "base",
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> list[Score]:
    """battles: (system a, system b, winner "a" | "b" | "tie", count). Scores best first."""
    battles = [battle for battle in battles if battle[3] > 0]
    systems = sorted({s for a, b, _, _ in battles for s in (a, b)})
    if len(systems) < 2:
        return []
    index = {s: k for k, s in enumerate(systems)}
    # Cells: one per ordered (winner, loser) of each outcome; a tie is half a win each way.
    cells: dict[tuple[int, int], float] = defaultdict(float)
    outcomes: list[tuple[int, int, str, int]] = []
    votes = defaultdict(int)
    for a, b, won, count in battles:
        outcomes.append((index[a], index[b], won, count))
        votes[a] += count
        votes[b] += count
    for ia, ib, won, count in outcomes:
        if won == "a":
            cells[ia, ib] += count
        elif won == "b":
            cells[ib, ia] += count
        else:
            cells[ia, ib] += count / 2
            cells[ib, ia] += count / 2
    keys = sorted(cells)
    i = np.array([k[0] for k in keys])
    j = np.array([k[1] for k in keys])
    key_index = {k: n for n, k in enumerate(keys)}
    theta = _fit(i, j, np.array([[cells[k] for k in keys]]), len(systems))[0]

    # Bootstrap: resample the votes (multinomial over the outcome rows), refit all at once.
    total = sum(c for *_, c in outcomes)
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(total, [c / total for *_, c in outcomes], size=resamples)  # (R, O)
    w = np.zeros((resamples, len(keys)))
    for o, (ia, ib, won, _) in enumerate(outcomes):
        if won == "a":
            w[:, key_index[ia, ib]] += drawn[:, o]
        elif won == "b":
            w[:, key_index[ib, ia]] += drawn[:, o]
        else:
            w[:, key_index[ia, ib]] += drawn[:, o] / 2
            w[:, key_index[ib, ia]] += drawn[:, o] / 2
    boot = _fit(i, j, w, len(systems))

    def to_elo(t: np.ndarray) -> np.ndarray:
        ref = t[..., index[anchor]] if anchor in index else t.mean(axis=-1)
        return ELO_BASE + ELO_SCALE * (t - ref[..., None] if np.ndim(ref) else t - ref)

    scores, boot_scores = to_elo(theta), to_elo(boot)
    low, high = np.percentile(boot_scores, [2.5, 97.5], axis=0)
    result = [
        Score(s, float(scores[k]), float(low[k]), float(high[k]), votes[s])
        for s, k in index.items()
    ]
    return sorted(result, key=lambda s: -s.score)


def all_battles() -> list[tuple[str, str, str, int]]:
    """Every vote of every comparison as (system a, system b, winner, count): the pairs'
    tallies summed per comparison."""
    rows = (
        models.ComparisonPair.objects.order_by()
        .values_list("comparison__system_a", "comparison__system_b")
        .annotate(
            a=Sum("a_votes"),
            b=Sum("b_votes"),
            tie=Sum(F("tie_votes") + F("both_bad_votes")),
        )
    )
    battles = []
    for system_a, system_b, a, b, tie in rows:
        battles += [(system_a, system_b, "a", a), (system_a, system_b, "b", b)]
        battles.append((system_a, system_b, "tie", tie))
    return battles
