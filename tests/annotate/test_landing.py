"""Where logging in leads: annotators to the task, reviewers to the review queue, staff
to the overview. Only opening the task page reserves a task."""

import pytest
from django.urls import reverse

from annotate import models
from tests.conftest import PASSWORD


def log_in(client, username: str, **extra):
    return client.post(
        reverse("login"), {"username": username, "password": PASSWORD, **extra}, follow=True
    )


def test_an_annotator_lands_on_the_task_page_which_reserves_a_task(client, annotator, response):
    page = log_in(client, "alice")
    assert page.redirect_chain[-1][0] == reverse("annotate:home")
    assert models.Reservation.objects.filter(annotator=annotator, response=response).exists()


def test_a_reviewer_lands_on_the_review_queue_and_reserves_nothing(client, reviewer, response):
    page = log_in(client, "rita")
    assert page.redirect_chain[-1][0] == reverse("annotate:review-queue")
    assert page.status_code == 200
    assert not models.Reservation.objects.exists()


def test_staff_land_on_the_overview_and_reserve_nothing(client, staff, response):
    page = log_in(client, "sam")
    assert page.redirect_chain[-1][0] == reverse("annotate:overview")
    assert page.status_code == 200
    assert not models.Reservation.objects.exists()


def test_the_page_asked_for_still_wins_over_the_landing(client, reviewer):
    page = log_in(client, "rita", next=reverse("annotate:guidelines"))
    assert page.redirect_chain[-1][0] == reverse("annotate:guidelines")


def test_the_brand_link_goes_to_the_landing_not_to_a_task(client, reviewer):
    client.force_login(reviewer)
    html = client.get(reverse("annotate:review-queue")).content.decode()
    assert f'class="brand" href="{reverse("annotate:landing")}"' in html


def test_the_overview_shows_rounds_training_runs_and_queue_depth(
    client, staff, annotator, make_responses, round1
):
    responses = make_responses(3, overlap=2, round=round1)
    models.Judgment.objects.create(
        response=responses[0], annotator=annotator, verdict="negative", critique="Wrong."
    )
    models.Response.objects.filter(pk=responses[0].pk).update(judgment_count=1)
    models.TrainingRun.objects.create(
        status="failed", error="CUDA out of memory", created_by=staff
    )
    client.force_login(staff)
    page = client.get(reverse("annotate:overview"))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<td data-label="Open responses">3</td>' in html
    assert '<td data-label="Judgments still needed">5</td>' in html
    assert '<td data-label="Pending review">1</td>' in html
    assert '<th scope="row">Round 1</th>' in html
    assert "CUDA out of memory" in html
    assert not models.Reservation.objects.exists()


@pytest.mark.parametrize("who, status", [("reviewer", 403), ("annotator", 403)])
def test_the_overview_is_for_staff_only(client, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("annotate:overview")).status_code == status


def test_the_overview_logged_out_asks_for_a_login(client, db):
    page = client.get(reverse("annotate:overview"))
    assert page.status_code == 302 and page.url.startswith(reverse("login"))


def test_someone_without_a_role_is_told_to_ask_staff(client, outsider):
    page = log_in(client, "charlie")
    assert page.status_code == 403
    assert "ask staff to add you to the annotators or reviewers" in page.content.decode()
