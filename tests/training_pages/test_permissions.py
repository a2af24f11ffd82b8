"""Who may reach the training pages and the training-run API: staff only.

Anonymous: the login page (pages) or 401 (API); everyone else but staff: 403.
"""

import pytest
from django.urls import reverse

from annotate import models
from tests.api.conftest import CAST, client_for

ROLES = ["outsider", "annotator", "reviewer", "staff"]


def pages(run: models.TrainingRun) -> list[tuple[str, str]]:
    """(method, url) of every training page, with the status staff get."""
    return [
        ("get", reverse("annotate:training-list")),
        ("get", reverse("annotate:training-new")),
        ("post", reverse("annotate:training-new")),
        ("get", reverse("annotate:training-run", args=[run.pk])),
        ("get", reverse("annotate:training-series", args=[run.pk])),
        ("post", reverse("annotate:training-cancel", args=[run.pk])),
        ("post", reverse("annotate:training-resume", args=[run.pk])),
        ("post", reverse("annotate:training-generate", args=[run.pk])),
        ("get", reverse("annotate:training-snapshot", args=[run.pk])),
        (
            "get",
            reverse("annotate:training-preview", args=["0" * 8 + "-0000-0000-0000-" + "0" * 12]),
        ),
    ]


STAFF_STATUS = [200, 200, 200, 200, 200, 302, 302, 200, 200, 404]


@pytest.fixture
def run(succeeded_run) -> models.TrainingRun:
    return succeeded_run


def test_anonymous_users_are_sent_to_login(client, run):
    for method, url in pages(run):
        page = getattr(client, method)(url)
        assert page.status_code == 302, url
        assert page.url.startswith(reverse("login")), url


@pytest.mark.parametrize("role", ROLES)
def test_only_staff_reach_the_training_pages(client, request, run, role):
    client.force_login(request.getfixturevalue(role))
    for (method, url), staff_status in zip(pages(run), STAFF_STATUS, strict=True):
        expected = staff_status if role == "staff" else 403
        assert getattr(client, method)(url).status_code == expected, (method, url)


def test_the_nav_shows_training_to_staff_only(client, annotator, reviewer, staff):
    link = f'href="{reverse("annotate:training-list")}"'
    for user, shown in ((annotator, False), (reviewer, False), (staff, True)):
        client.force_login(user)
        assert (link in client.get(reverse("annotate:guidelines")).content.decode()) is shown


@pytest.mark.parametrize("who", CAST)
def test_only_staff_reach_the_training_run_api(request, run, judged, training_dir, who):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    api = client_for(user)
    base = "/api/training-runs/"
    expected = {"anonymous": 401, "staff": None}.get(who, 403)
    answers = {
        "list": api.get(base).status_code,
        "detail": api.get(f"{base}{run.pk}/").status_code,
        "create": api.post(base, {}, format="json").status_code,
        "cancel": api.post(f"{base}{run.pk}/cancel/").status_code,
        "resume": api.post(f"{base}{run.pk}/resume/").status_code,
    }
    if expected is None:
        # A succeeded run can be neither cancelled nor resumed: 409, not a refusal of staff.
        assert answers == {
            "list": 200,
            "detail": 200,
            "create": 201,
            "cancel": 409,
            "resume": 409,
        }
    else:
        assert set(answers.values()) == {expected}, answers
        assert models.TrainingRun.objects.count() == 1
