"""Who may open which page: anonymous → login, no group → 403, wrong role → 403."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from annotate import models

ANNOTATOR_PAGES = ["annotate:home", "annotate:judgment-list", "annotate:guidelines"]
REVIEWER_PAGES = ["annotate:review-queue", "annotate:agreement"]

EXPECTED = {
    # role: (annotator pages, reviewer pages)
    "outsider": (403, 403),
    "annotator": (200, 403),
    "reviewer": (200, 200),
    "staff": (200, 200),
}


@pytest.mark.parametrize("name", ANNOTATOR_PAGES + REVIEWER_PAGES)
def test_anonymous_users_are_sent_to_login(client, db, name):
    page = client.get(reverse(name))
    assert page.status_code == 302
    assert page.url.startswith(reverse("login"))


@pytest.mark.parametrize("role", EXPECTED)
@pytest.mark.parametrize("name", ANNOTATOR_PAGES + REVIEWER_PAGES)
def test_each_role_reaches_only_its_pages(client, request, response, role, name):
    client.force_login(request.getfixturevalue(role))
    annotator_status, reviewer_status = EXPECTED[role]
    expected = annotator_status if name in ANNOTATOR_PAGES else reviewer_status
    assert client.get(reverse(name)).status_code == expected


@pytest.mark.parametrize("role", EXPECTED)
def test_object_pages_follow_the_same_rules(client, request, annotator, response, role):
    judgment = models.Judgment.objects.create(
        response=response, annotator=annotator, verdict="positive"
    )
    user = request.getfixturevalue(role)
    client.force_login(user)
    edit = client.get(reverse("annotate:judgment-edit", args=[judgment.pk])).status_code
    review = client.get(reverse("annotate:judgment-review", args=[judgment.pk])).status_code
    # Only alice edits alice's judgment: for other annotators it does not exist (404).
    assert edit == {"outsider": 403, "annotator": 200}.get(role, 404)
    assert review == EXPECTED[role][1]


def test_an_annotator_cannot_edit_a_judgment_by_guessing_ids(
    client, annotator, other_annotator, response
):
    theirs = models.Judgment.objects.create(
        response=response, annotator=other_annotator, verdict="positive"
    )
    client.force_login(annotator)
    assert client.get(reverse("annotate:judgment-edit", args=[theirs.pk])).status_code == 404


def test_only_staff_reach_the_admin(client, annotator, reviewer, staff):
    for user, expected in ((annotator, 302), (reviewer, 302), (staff, 200)):
        client.force_login(user)
        assert client.get("/admin/").status_code == expected


def test_a_role_taken_away_applies_on_the_next_request(client, annotator, response):
    client.force_login(annotator)
    assert client.get(reverse("annotate:home")).status_code == 200
    annotator.groups.clear()
    assert client.get(reverse("annotate:home")).status_code == 403
    annotator.groups.add(Group.objects.get(name="reviewers"))
    assert client.get(reverse("annotate:review-queue")).status_code == 200


def test_a_deactivated_user_is_logged_out(client, annotator, response):
    client.force_login(annotator)
    annotator.is_active = False
    annotator.save()
    page = client.get(reverse("annotate:home"))
    assert page.status_code == 302
    assert page.url.startswith(reverse("login"))
