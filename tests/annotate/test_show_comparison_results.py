"""The results page and the rounds dashboard show the numbers compare_stats computes."""

from django.urls import reverse

from annotate import compare, compare_stats, models
from tests.annotate.compare_helpers import ADAPTER_GENERATOR, make_comparison, vote
from tests.conftest import make_user


def _voted(n_b: int, n_a: int, ties: int = 0) -> models.Comparison:
    comparison = make_comparison(n_b + n_a + ties)
    for i in range(n_b + n_a + ties):
        evaluator = make_user(f"ev{i}", "annotators")
        winner = "b" if i < n_b else "a" if i < n_b + n_a else "tie"
        vote(evaluator, comparison, winner)
    return comparison


def test_the_results_page_shows_win_rate_interval_counts_and_sign_test(client, reviewer):
    comparison = _voted(6, 2, 2)
    client.force_login(reviewer)
    html = client.get(
        reverse("annotate:comparison-results", args=[comparison.pk])
    ).content.decode()
    result = compare_stats.comparison_result(comparison)
    assert result.win_rate == 0.7  # (6 + 1) / 10
    assert "70 %" in html
    assert f"{result.interval[0]:.3f} – {result.interval[1]:.3f}" in html
    assert f"p = {result.p_value:.4f}" in html
    assert "on 8 decisive votes (6 for B, 2 for A)" in html
    assert "Round 2 (B) vs Round 1 (A)" in html
    assert 'id="bt-table"' in html and "Round 2</th>" in html


def test_agreement_appears_when_pairs_have_several_votes(
    client, reviewer, annotator, other_annotator
):
    comparison = make_comparison(2, overlap=2)
    for evaluator in (annotator, other_annotator):
        vote(evaluator, comparison, "b")
        vote(evaluator, comparison, "b")
    client.force_login(reviewer)
    html = client.get(
        reverse("annotate:comparison-results", args=[comparison.pk])
    ).content.decode()
    assert "100 % of pairs of votes agree on 2 pairs seen by several" in html


def test_a_comparison_without_votes_says_so(client, reviewer):
    comparison = make_comparison(2)
    client.force_login(reviewer)
    html = client.get(
        reverse("annotate:comparison-results", args=[comparison.pk])
    ).content.decode()
    assert "No votes yet." in html


def test_the_rounds_dashboard_has_a_row_per_round_with_its_figures(client, reviewer, annotator):
    comparison = _voted(3, 1)
    run = models.TrainingRun.objects.create(
        status=models.JobStatus.SUCCEEDED,
        output_dir="/runs/run-1",
        metrics={"validation": {"gain": 0.25, "approved_delta": 0.125}},
    )
    models.Round.objects.filter(number=2).update(training_run=run)
    responses = models.Response.objects.filter(round_id=2)[:4]
    for response, verdict in zip(
        responses, ["negative", "positive", "positive", "positive"], strict=True
    ):
        models.Judgment.objects.create(
            response=response, annotator=annotator, verdict=verdict, critique="x"
        )
    base = compare.create(system_a="base", system_b="round:2", sample_size=4, seed=2)
    vote(make_user("ev-base", "annotators"), base, "b")
    client.force_login(reviewer)
    html = client.get(reverse("annotate:rounds")).content.decode()
    row = html[html.index('<th scope="row">2</th>') :].split("</tr>")[0]
    assert ADAPTER_GENERATOR in row and "Run " + str(run.pk) in row
    assert "0.250" in row and "0.125" in row
    assert "25 % (" in row  # 1 of 4 judgments has problems, with its Wilson interval
    low, high = compare_stats.wilson(1, 4)
    assert f"{low:.3f} – {high:.3f}" in row
    assert f"/compare/{comparison.pk}/results/" in row  # vs previous: round 1
    assert "75 %" in row  # 3 of 4 votes for round 2 over round 1
    assert f"/compare/{base.pk}/results/" in row  # vs base
    assert 'id="negative-table"' in html and 'id="base-table"' in html and 'id="bt-table"' in html
    assert "chart.umd.min.js" in html


def test_the_rounds_dashboard_without_rounds_says_so(client, staff):
    client.force_login(staff)
    assert "No rounds yet." in client.get(reverse("annotate:rounds")).content.decode()


def test_the_results_from_the_pairs_tallies_equal_the_figures_of_the_votes(reviewer):
    comparison = _voted(5, 3, 2)
    rows = [(v.choice, v.a_on_left, 1) for v in models.Vote.objects.all()]
    assert compare_stats.comparison_result(comparison) == compare_stats.summarize(
        rows, evaluators=10
    )
