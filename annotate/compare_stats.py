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
from django.db.models import Count
from scipy import optimize
from scipy import stats as sps

from annotate import models
from annotate import stats as agreement_stats

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


def summarize(
    rows, *, units=(), resamples: int = RESAMPLES, seed: int = SEED, evaluators: int = 0
) -> Result:
    """rows: (choice, a_on_left, count) aggregates; units: for pairs with overlap > 1, the
    list of winners ("a", "b", "tie", "both_bad") each pair got."""
    result = Result(evaluators=evaluators)
    for choice, a_on_left, count in rows:
        side = winner(choice, a_on_left)
        setattr(result, side, getattr(result, side) + count)
        result.left += count if choice == "left" else 0
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
    units = [u for u in units if len(u) >= 2]
    result.agreement_units = len(units)
    agreeing, pairs = agreement_stats.pairwise_agreement(units)
    result.agreement = agreeing / pairs if pairs else None
    result.alpha = agreement_stats.krippendorff_alpha_nominal(units)
    return result


def comparison_result(comparison: models.Comparison, **kw) -> Result:
    """Three queries: the counts grouped in SQL, the votes of pairs judged by several (for
    agreement) and the number of evaluators."""
    votes = models.Vote.objects.filter(pair__comparison=comparison)
    rows = (
        votes.order_by()
        .values_list("choice", "a_on_left")
        .annotate(n=Count("pk"))
        .values_list("choice", "a_on_left", "n")
    )
    by_pair: dict[int, list[str]] = defaultdict(list)
    shared = votes.filter(pair__overlap__gt=1).values_list("pair_id", "choice", "a_on_left")
    for pair_id, choice, a_on_left in shared.iterator(chunk_size=5000):
        by_pair[pair_id].append(winner(choice, a_on_left))
    evaluators = votes.order_by().values("evaluator").distinct().count()
    return summarize(list(rows), units=by_pair.values(), evaluators=evaluators, **kw)


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
    systems = sorted({s for a, b, _, _ in battles for s in (a, b)})
    if len(systems) < 2:
        return []
    index = {s: k for k, s in enumerate(systems)}
    # Cells: one per ordered (winner, loser) of each outcome; a tie is half a win each way.
    cells: dict[tuple[int, int], float] = defaultdict(float)
    outcomes: list[tuple[int, int, str, int]] = []
    votes = defaultdict(int)
    for a, b, won, count in battles:
        if count <= 0:
            continue
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
    """Every vote of every comparison as (system a, system b, winner, count), grouped in SQL."""
    rows = (
        models.Vote.objects.order_by()
        .values_list(
            "pair__comparison__system_a", "pair__comparison__system_b", "choice", "a_on_left"
        )
        .annotate(n=Count("pk"))
    )
    battles = []
    for a, b, choice, a_on_left, n in rows:
        won = winner(choice, a_on_left)
        battles.append((a, b, "tie" if won in ("tie", "both_bad") else won, n))
    return battles
