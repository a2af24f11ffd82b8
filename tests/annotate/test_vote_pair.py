"""The evaluator's page: a blind pair, a vote by form post or htmx, skips."""

import re

from django.urls import reverse

from annotate import models
from tests.annotate.compare_helpers import ADAPTER_GENERATOR, BASE_GENERATOR, make_comparison

HX = {"HX-Request": "true"}


def _page(client, comparison):
    return client.get(reverse("annotate:compare-pair", args=[comparison.pk]))


def test_it_shows_the_prompt_and_two_answers_and_reserves_the_pair(client, annotator):
    comparison = make_comparison(2)
    client.force_login(annotator)
    page = _page(client, comparison)
    assert page.status_code == 200
    reservation = models.PairReservation.objects.get(evaluator=annotator)
    left, right = (
        (reservation.pair.response_a, reservation.pair.response_b)
        if reservation.a_on_left
        else (reservation.pair.response_b, reservation.pair.response_a)
    )
    html = page.content.decode()
    assert reservation.pair.prompt.instruction in html
    assert html.index(left.text) < html.index(right.text)


def test_nothing_in_the_page_source_says_which_system_wrote_which_side(client, annotator):
    comparison = make_comparison(3)
    client.force_login(annotator)
    html = _page(client, comparison).content.decode()
    pair = models.PairReservation.objects.get(evaluator=annotator).pair
    for secret in (BASE_GENERATOR, ADAPTER_GENERATOR, "round:", "system", "a_on_left"):
        assert secret.lower() not in html.lower()
    assert not re.search(r"\bround\b\W*\d", html, re.I), "a round number is on the page"
    for response_id in (pair.response_a_id, pair.response_b_id):
        assert not re.search(rf"response\W*{response_id}\b", html, re.I)
        assert f"/responses/{response_id}/" not in html
    assert "data-response-id" not in html


def test_a_vote_is_saved_with_the_order_seen_and_the_next_pair_follows(client, annotator):
    comparison = make_comparison(2)
    client.force_login(annotator)
    _page(client, comparison)
    reservation = models.PairReservation.objects.get(evaluator=annotator)
    url = reverse("annotate:pair-vote", args=[comparison.pk, reservation.pair_id])
    answer = client.post(url, {"choice": "right", "reason": " clearer ", "seconds_spent": "12"})
    assert answer.status_code == 302
    assert answer.url == reverse("annotate:compare-pair", args=[comparison.pk])
    saved = models.Vote.objects.get()
    assert (saved.choice, saved.reason, saved.seconds_spent) == ("right", "clearer", 12)
    assert saved.a_on_left == reservation.a_on_left
    assert "Vote saved." in client.get(answer.url).content.decode()


def test_htmx_gets_the_next_pair_as_a_fragment(client, annotator):
    comparison = make_comparison(2)
    client.force_login(annotator)
    _page(client, comparison)
    pair_id = models.PairReservation.objects.get(evaluator=annotator).pair_id
    url = reverse("annotate:pair-vote", args=[comparison.pk, pair_id])
    answer = client.post(url, {"choice": "tie"}, headers=HX)
    html = answer.content.decode()
    assert answer.status_code == 200
    assert "<html" not in html
    assert 'data-notice="Vote saved."' in html
    assert models.PairReservation.objects.get(evaluator=annotator).pair_id != pair_id


def test_a_vote_without_a_choice_keeps_the_reason_and_says_what_is_missing(client, annotator):
    comparison = make_comparison(1)
    client.force_login(annotator)
    _page(client, comparison)
    pair_id = models.PairReservation.objects.get(evaluator=annotator).pair_id
    url = reverse("annotate:pair-vote", args=[comparison.pk, pair_id])
    answer = client.post(url, {"reason": "my typed reason"}, headers=HX)
    html = answer.content.decode()
    assert answer.status_code == 200
    assert "Choose: 1 left is better" in html
    assert "my typed reason" in html
    assert not models.Vote.objects.exists()


def test_a_vote_on_a_pair_not_reserved_says_so_and_loses_nothing_else(client, annotator):
    comparison = make_comparison(2)
    client.force_login(annotator)
    pair = comparison.pairs.first()
    url = reverse("annotate:pair-vote", args=[comparison.pk, pair.pk])
    answer = client.post(url, {"choice": "left"}, follow=True)
    assert "Your vote was not saved: This pair is not reserved for you" in answer.content.decode()
    assert not models.Vote.objects.exists()


def test_a_pair_of_another_comparison_is_a_404(client, annotator):
    comparison = make_comparison(2)
    client.force_login(annotator)
    url = reverse("annotate:pair-vote", args=[comparison.pk + 1, comparison.pairs.first().pk])
    assert client.post(url, {"choice": "left"}).status_code == 404


def test_skipping_takes_the_pair_out_of_my_queue(client, annotator):
    comparison = make_comparison(1)
    client.force_login(annotator)
    _page(client, comparison)
    pair_id = models.PairReservation.objects.get(evaluator=annotator).pair_id
    url = reverse("annotate:pair-skip", args=[comparison.pk, pair_id])
    answer = client.post(url, {"reason": ""}, follow=True)
    assert "Nothing left to compare" in answer.content.decode()
    assert models.PairSkip.objects.filter(evaluator=annotator, pair_id=pair_id).exists()


def test_votes_and_skips_are_posts_only(client, annotator):
    comparison = make_comparison(1)
    client.force_login(annotator)
    pair = comparison.pairs.get()
    for name in ("annotate:pair-vote", "annotate:pair-skip"):
        assert client.get(reverse(name, args=[comparison.pk, pair.pk])).status_code == 405


def test_the_list_shows_open_comparisons_without_their_systems(client, annotator):
    comparison = make_comparison(2)
    client.force_login(annotator)
    html = client.get(reverse("annotate:compare")).content.decode()
    assert f"Comparison {comparison.pk}" in html
    assert BASE_GENERATOR not in html and "round:" not in html
