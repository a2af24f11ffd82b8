import pytest

from annotate import models, stats
from tests.conftest import make_user


def test_alpha_matches_a_hand_computed_example():
    # Coincidences: o(a,a)=4, o(a,b)=o(b,a)=1, o(b,b)=2; n_a=5, n_b=3, n=8.
    # alpha = 1 - (n-1) * 2 / (2 * n_a * n_b) = 1 - 7 * 2 / 30 = 16/30.
    units = [["a", "a"], ["a", "b"], ["b", "b"], ["a", "a"]]
    assert stats.krippendorff_alpha_nominal(units) == pytest.approx(16 / 30)


def test_alpha_matches_krippendorffs_published_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": four observers,
    # twelve units with missing values, nominal alpha = 0.743.
    units = [
        [1, 1, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4],
        [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [5, 5, 5], [1, 1], [3],
    ]  # fmt: skip
    assert stats.krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)


def test_alpha_is_one_for_perfect_agreement_and_undefined_without_variation():
    assert stats.krippendorff_alpha_nominal([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    assert stats.krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]) is None
    assert stats.krippendorff_alpha_nominal([["a"], []]) is None


def test_alpha_is_negative_for_systematic_disagreement():
    assert stats.krippendorff_alpha_nominal([["a", "b"], ["b", "a"]]) < 0


def test_pairwise_agreement_counts_pairs():
    assert stats.pairwise_agreement([["a", "a", "b"], ["b", "b"]]) == (2, 4)


def judge(response, annotator, verdict, **kw) -> models.Judgment:
    if verdict == "negative":
        kw.setdefault("critique", "Wrong.")
    return models.Judgment.objects.create(
        response=response, annotator=annotator, verdict=verdict, **kw
    )


def test_round_agreement_uses_responses_judged_by_several(
    annotator, other_annotator, make_responses
):
    round1 = models.Round.objects.create(number=1)
    round2 = models.Round.objects.create(number=2)
    agree, disagree = make_responses(2, overlap=2, round=round1)
    (single,) = make_responses(1, overlap=1, round=round1)
    (later,) = make_responses(1, overlap=2, round=round2)
    judge(agree, annotator, "positive")
    judge(agree, other_annotator, "positive")
    judge(disagree, annotator, "positive")
    judge(disagree, other_annotator, "negative")
    judge(single, annotator, "negative")
    judge(later, annotator, "negative")  # only one verdict so far: not pairable
    rows = {row.round: row for row in stats.round_agreement()}
    assert list(rows) == [2, 1]
    assert rows[1].judgments == 5
    assert rows[1].negative_share == pytest.approx(2 / 5)
    assert rows[1].units == 2
    assert rows[1].pairs == 2
    assert rows[1].agreement == pytest.approx(0.5)
    # Units [p, p] and [p, n]: o(p,p)=2, o(p,n)=o(n,p)=1; n_p=3, n_n=1, n=4.
    assert rows[1].alpha == pytest.approx(1 - 3 * 2 / (2 * 3 * 1))
    assert rows[2].units == 0
    assert rows[2].agreement is None and rows[2].alpha is None


def test_annotator_stats_count_time_and_acceptance(annotator, reviewer, make_responses):
    bob = make_user("bob")
    responses = make_responses(5)
    for response, seconds in zip(responses[:3], [10, 30, 200], strict=True):
        judge(response, annotator, "positive", seconds_spent=seconds)
    judge(responses[3], bob, "positive")
    alices = models.Judgment.objects.filter(annotator=annotator).order_by("pk")
    alices[0].accept(reviewer)
    alices[1].accept(reviewer)
    alices[2].reject(reviewer, "No.")
    rows = {row.username: row for row in stats.annotator_stats()}
    assert rows["alice"].judgments == 3
    assert rows["alice"].median_seconds == 30
    assert rows["alice"].acceptance_rate == pytest.approx(2 / 3)
    assert rows["bob"].median_seconds is None
    assert rows["bob"].acceptance_rate is None
