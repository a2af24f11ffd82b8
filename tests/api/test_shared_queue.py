"""The API and the pages share one queue: same slots, same reservations, same overlap."""

from django.urls import reverse

from annotate import models, queue
from tests.conftest import PASSWORD


def browser(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


def test_an_api_judgment_fills_the_slot_the_browser_would_take(
    api, client, annotator, other_annotator, response
):
    r = api(annotator).post(
        "/api/judgments/", {"response": response.pk, "verdict": "positive"}, format="json"
    )
    assert r.status_code == 201
    assert queue.next_for(other_annotator) is None

    page = browser(client, other_annotator).post(
        reverse("annotate:judgment-submit", args=[response.pk]),
        {"verdict": "negative", "critique": "Too late."},
    )
    assert "This response already has all the judgments it needs." in page.content.decode()
    assert not models.Judgment.objects.filter(annotator=other_annotator).exists()
    response.refresh_from_db()
    assert response.judgment_count == 1


def test_a_browser_judgment_fills_the_slot_the_api_would_take(
    api, client, annotator, other_annotator, response
):
    browser(client, other_annotator).post(
        reverse("annotate:judgment-submit", args=[response.pk]), {"verdict": "positive"}
    )
    assert models.Judgment.objects.filter(annotator=other_annotator).exists()
    client = api(annotator)
    assert client.get("/api/tasks/next/").status_code == 204
    r = client.post(
        "/api/judgments/", {"response": response.pk, "verdict": "positive"}, format="json"
    )
    assert r.status_code == 409


def test_a_task_open_in_the_browser_is_not_handed_out_by_the_api(
    api, client, annotator, other_annotator, response
):
    assert browser(client, other_annotator).get(reverse("annotate:home")).status_code == 200
    assert models.Reservation.objects.get().annotator == other_annotator
    client = api(annotator)
    assert client.get("/api/tasks/next/").status_code == 204
    r = client.post(
        "/api/judgments/", {"response": response.pk, "verdict": "positive"}, format="json"
    )
    assert r.status_code == 409
    assert r.json()["detail"] == "This response already has all the judgments it needs."


def test_a_task_reserved_through_the_api_is_not_shown_in_the_browser(
    api, client, annotator, other_annotator, response
):
    assert api(annotator).get("/api/tasks/next/").json()["id"] == response.pk
    browser(client, other_annotator).get(reverse("annotate:home"))
    assert not models.Reservation.objects.filter(annotator=other_annotator).exists()


def test_overlap_two_takes_one_judgment_from_each_side(
    api, client, annotator, other_annotator, reviewer, make_responses
):
    (response,) = make_responses(1, overlap=2)
    assert api(annotator).get("/api/tasks/next/").json()["id"] == response.pk
    browser(client, other_annotator).post(
        reverse("annotate:judgment-submit", args=[response.pk]), {"verdict": "positive"}
    )
    r = api(annotator).post(
        "/api/judgments/", {"response": response.pk, "verdict": "positive"}, format="json"
    )
    assert r.status_code == 201
    response.refresh_from_db()
    assert response.judgment_count == 2
    assert api(reviewer).get("/api/tasks/next/").status_code == 204
