"""The comparison statistics against hand-worked numbers and independent computations."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from annotate import compare_stats as cs


def test_win_rate_counts_ties_as_half_on_a_hand_worked_example():
    # B wins 3, A wins 1, one tie, one "both bad": (3 + 0.5 * 2) / 6 = 2/3.
    rows = [("right", True, 3), ("left", True, 1), ("tie", False, 1), ("both_bad", True, 1)]
    result = cs.summarize(rows)
    assert (result.a, result.b, result.tie, result.both_bad, result.votes) == (1, 3, 1, 1, 6)
    assert result.win_rate == pytest.approx(4 / 6)


def test_the_side_order_is_undone_before_counting():
    # "left" when A was on the right is a vote for B.
    result = cs.summarize([("left", False, 2), ("right", False, 1)])
    assert (result.a, result.b) == (1, 2)
    assert result.left_share == pytest.approx(2 / 3)


def test_the_bootstrap_interval_matches_a_plain_resampling_of_the_votes():
    a, b, ties = 12, 20, 8
    low, high = cs.win_rate_interval(a, b, ties, resamples=20_000, seed=3)
    # Independent: resample the 40 scores themselves, one by one.
    scores = np.array([0.0] * a + [1.0] * b + [0.5] * ties)
    rng = np.random.default_rng(99)
    means = [rng.choice(scores, size=scores.size).mean() for _ in range(20_000)]
    ref_low, ref_high = np.percentile(means, [2.5, 97.5])
    assert low == pytest.approx(ref_low, abs=0.02)
    assert high == pytest.approx(ref_high, abs=0.02)
    assert low < (b + ties / 2) / 40 < high


def test_the_bootstrap_is_seeded_and_has_at_least_1000_resamples():
    assert cs.RESAMPLES >= 1000
    assert cs.win_rate_interval(5, 7, 2) == cs.win_rate_interval(5, 7, 2)


def test_unanimous_votes_give_a_zero_width_interval():
    assert cs.win_rate_interval(0, 10, 0) == (1.0, 1.0)


def test_the_sign_test_is_scipys_binomial_test_on_decisive_votes():
    result = cs.summarize([("right", True, 9), ("left", True, 1), ("tie", True, 5)])
    # Two-sided exact: 2 * (C(10,9) + C(10,10)) / 2^10 = 22 / 1024.
    assert result.p_value == pytest.approx(22 / 1024)
    assert result.p_value == pytest.approx(sps.binomtest(9, 10, 0.5).pvalue)


def test_no_votes_leave_every_figure_undefined():
    result = cs.summarize([])
    assert result.win_rate is None and result.interval is None and result.p_value is None


def test_the_wilson_interval_matches_hand_computed_values():
    low, high = cs.wilson(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.2775, abs=1e-4)
    low, high = cs.wilson(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert cs.wilson(0, 0) is None


def test_position_bias_reports_the_left_share_with_its_interval():
    result = cs.summarize([("left", True, 30), ("right", True, 10)])
    assert result.left_share == pytest.approx(0.75)
    assert result.left_interval == pytest.approx(cs.wilson(30, 40))


def test_agreement_uses_pairs_voted_on_by_several():
    units = [["a", "a"], ["b", "b"], ["a", "b"], ["tie"]]
    result = cs.summarize([("left", True, 7)], units=units)
    assert result.agreement_units == 3
    assert result.agreement == pytest.approx(2 / 3)
    # Krippendorff's alpha, nominal, by hand: n = 6 values, a:3, b:3; observed disagreement
    # 2 (the mixed unit's two ordered pairs); expected (3*3 + 3*3) / 5 = 3.6.
    assert result.alpha == pytest.approx(1 - 2 / 3.6)


def _simulate(strengths: dict, per_pair: int, seed: int, ties: float = 0.0) -> list:
    rng = np.random.default_rng(seed)
    battles = []
    names = list(strengths)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            p_b = 1 / (1 + math.exp(strengths[a] - strengths[b]))
            n_tie = rng.binomial(per_pair, ties)
            b_wins = rng.binomial(per_pair - n_tie, p_b)
            battles += [(a, b, "b", b_wins), (a, b, "a", per_pair - n_tie - b_wins)]
            battles.append((a, b, "tie", n_tie))
    return battles


def test_bradley_terry_recovers_the_order_and_ratios_of_known_strengths():
    strengths = {"base": 0.0, "round:1": 0.4, "round:2": 1.0, "round:3": 1.7}
    scores = cs.bradley_terry(_simulate(strengths, 3000, seed=5))
    assert [s.system for s in scores] == ["round:3", "round:2", "round:1", "base"]
    by = {s.system: (s.score - cs.ELO_BASE) / cs.ELO_SCALE for s in scores}
    for system, theta in strengths.items():
        assert by[system] == pytest.approx(theta, abs=0.08)
    # Odds ratios: exp(θ_i − θ_j), e.g. round 3 over base ≈ e^1.7 ≈ 5.5.
    assert math.exp(by["round:3"] - by["base"]) == pytest.approx(math.exp(1.7), rel=0.15)
    for score in scores:
        assert score.low <= score.score <= score.high


def test_bradley_terry_matches_a_direct_fit_with_scipy():
    strengths = {"base": 0.0, "round:1": 0.8, "round:2": -0.3}
    battles = _simulate(strengths, 500, seed=2, ties=0.2)
    scores = {s.system: s.score for s in cs.bradley_terry(battles, resamples=1000)}
    # Independent: each vote as one log-likelihood term, ties as half a win each way.
    names = sorted(strengths)

    def nll(free):
        theta = dict(zip(names, [0.0, *free], strict=True))
        total = 0.0
        for a, b, won, n in battles:
            d = theta[b] - theta[a]
            if won == "b":
                total += n * math.log1p(math.exp(-d))
            elif won == "a":
                total += n * math.log1p(math.exp(d))
            else:
                total += n / 2 * (math.log1p(math.exp(-d)) + math.log1p(math.exp(d)))
        return total

    from scipy import optimize

    fit = optimize.minimize(nll, [0.0, 0.0], method="Nelder-Mead", options={"xatol": 1e-6})
    theta = dict(zip(names, [0.0, *fit.x], strict=True))
    for name in names:
        expected = cs.ELO_BASE + cs.ELO_SCALE * (theta[name] - theta["base"])
        assert scores[name] == pytest.approx(expected, abs=1.0)


def test_bradley_terry_needs_two_systems():
    assert cs.bradley_terry([]) == []


def test_the_vectorised_alpha_and_agreement_match_the_agreement_pages_functions():
    from annotate import stats

    rng = np.random.default_rng(11)
    for _ in range(20):
        units = [
            list(rng.choice(cs.CATEGORIES, size=rng.integers(1, 6), p=[0.4, 0.4, 0.15, 0.05]))
            for _ in range(rng.integers(1, 30))
        ]
        result = cs.summarize([], units=units)
        expected_alpha = stats.krippendorff_alpha_nominal(units)
        if expected_alpha is None:
            assert result.alpha is None
        else:
            assert result.alpha == pytest.approx(expected_alpha)
        agreeing, pairs = stats.pairwise_agreement([u for u in units if len(u) >= 2])
        assert result.agreement == (pytest.approx(agreeing / pairs) if pairs else None)
