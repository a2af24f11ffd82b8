"""Who may open which comparison page: anonymous -> login, wrong role -> 403."""

import pytest
from django.urls import reverse

from tests.annotate.compare_helpers import make_comparison

ROLES = ["outsider", "annotator", "reviewer", "staff"]
# page kind: the roles that get 200 (or a redirect after a POST); everyone else 403.
ALLOWED = {
    "evaluator": {"annotator", "reviewer", "staff"},
    "reviewer": {"reviewer", "staff"},
    "staff": {"staff"},
}


def _pages(comparison):
    pair = comparison.pairs.first()
    return [
        ("GET", reverse("annotate:compare"), "evaluator"),
        ("GET", reverse("annotate:compare-pair", args=[comparison.pk]), "evaluator"),
        ("POST", reverse("annotate:pair-skip", args=[comparison.pk, pair.pk]), "evaluator"),
        ("GET", reverse("annotate:comparison-results", args=[comparison.pk]), "reviewer"),
        ("GET", reverse("annotate:rounds"), "reviewer"),
        ("GET", reverse("annotate:comparison-create"), "staff"),
        ("POST", reverse("annotate:comparison-create"), "staff"),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_only_its_comparison_pages(client, request, db, role):
    comparison = make_comparison(3, overlap=4)
    client.force_login(request.getfixturevalue(role))
    for method, url, kind in _pages(comparison):
        answer = client.get(url) if method == "GET" else client.post(url, {})
        if role in ALLOWED[kind]:
            assert answer.status_code in (200, 302), (method, url)
        else:
            assert answer.status_code == 403, (method, url)


def test_anonymous_users_are_sent_to_login(client, db):
    comparison = make_comparison(1)
    for method, url, _ in _pages(comparison):
        answer = client.get(url) if method == "GET" else client.post(url, {})
        assert answer.status_code == 302 and answer.url.startswith(reverse("login")), url


def test_a_vote_needs_an_evaluator(client, outsider):
    comparison = make_comparison(1)
    client.force_login(outsider)
    url = reverse("annotate:pair-vote", args=[comparison.pk, comparison.pairs.get().pk])
    assert client.post(url, {"choice": "left"}).status_code == 403


def test_the_nav_links_compare_for_evaluators_and_rounds_for_reviewers(
    client, annotator, reviewer
):
    client.force_login(annotator)
    html = client.get(reverse("annotate:guidelines")).content.decode()
    assert 'href="/compare/"' in html and 'href="/rounds/"' not in html
    client.force_login(reviewer)
    html = client.get(reverse("annotate:guidelines")).content.decode()
    assert 'href="/compare/"' in html and 'href="/rounds/"' in html


def test_an_unknown_comparison_is_a_404(client, annotator, db):
    client.force_login(annotator)
    assert client.get(reverse("annotate:compare-pair", args=[999])).status_code == 404
