import pytest
from django.utils import timezone

from annotate import models, validators
from tests.api.conftest import CAST

NEXT = "/api/tasks/next/"


def skip_url(response) -> str:
    return f"/api/tasks/{response.pk}/skip/"


def test_it_hands_out_and_reserves_the_next_response(api, annotator, response):
    r = api(annotator).get(NEXT)
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == response.pk
    assert body["instruction"] == "Name the capital of France."
    assert body["input"] == ""
    assert body["text"] == "The capital of France is Paris."
    assert body["round"] == 1
    assert body["generator"] == "tiny"
    reservation = models.Reservation.objects.get(annotator=annotator)
    assert reservation.response == response
    assert reservation.expires > timezone.now()
    assert body["reserved_until"] == reservation.expires.isoformat().replace("+00:00", "Z")


def test_it_hands_out_the_same_response_until_it_is_judged(api, annotator, make_responses):
    make_responses(3)
    client = api(annotator)
    first = client.get(NEXT).json()["id"]
    assert client.get(NEXT).json()["id"] == first
    assert models.Reservation.objects.filter(annotator=annotator).count() == 1


def test_it_says_204_when_nothing_is_left(api, annotator):
    r = api(annotator).get(NEXT)
    assert r.status_code == 204
    assert r.content == b""


def test_a_reservation_holds_the_slot_against_other_annotators(
    api, annotator, other_annotator, response
):
    assert api(annotator).get(NEXT).status_code == 200
    assert api(other_annotator).get(NEXT).status_code == 204


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 200, 200, 200, 200], strict=True),
)
def test_next_checks_the_role(as_cast, response, who, expected):
    _, client = as_cast(who)
    assert client.get(NEXT).status_code == expected


def test_next_takes_only_get(api, annotator, response):
    assert api(annotator).post(NEXT).status_code == 405


def test_skip_takes_the_response_out_of_the_callers_queue(
    api, annotator, other_annotator, response
):
    client = api(annotator)
    client.get(NEXT)
    r = client.post(skip_url(response), {"reason": "  Not my language.  "}, format="json")
    assert r.status_code == 201
    assert r.json()["response"] == response.pk
    assert r.json()["reason"] == "Not my language."
    skipped = models.Skip.objects.get(annotator=annotator)
    assert skipped.response == response
    assert skipped.reason == "Not my language."
    assert not models.Reservation.objects.exists()
    assert client.get(NEXT).status_code == 204
    # Only for the caller: the slot is free for someone else.
    assert api(other_annotator).get(NEXT).json()["id"] == response.pk


def test_skip_needs_a_reason(api, annotator, response):
    for body in ({}, {"reason": ""}, {"reason": "   "}):
        r = api(annotator).post(skip_url(response), body, format="json")
        assert r.status_code == 400, body
        assert "reason" in r.json()
    assert not models.Skip.objects.exists()


def test_skip_refuses_an_oversized_reason(api, annotator, response):
    reason = "x" * (validators.MAX_REASON_CHARS + 1)
    r = api(annotator).post(skip_url(response), {"reason": reason}, format="json")
    assert r.status_code == 400
    assert "reason" in r.json()
    assert not models.Skip.objects.exists()


def test_skip_refuses_wrong_types(api, annotator, response):
    r = api(annotator).post(skip_url(response), {"reason": ["a", "b"]}, format="json")
    assert r.status_code == 400
    assert "reason" in r.json()


def test_skip_rejects_unknown_fields(api, annotator, response):
    r = api(annotator).post(
        skip_url(response), {"reason": "Off topic.", "response": 7}, format="json"
    )
    assert r.status_code == 400
    assert r.json() == {"response": ["This field is read-only and cannot be set."]}
    r = api(annotator).post(skip_url(response), {"reason": "x", "why": "y"}, format="json")
    assert r.status_code == 400
    assert "Unknown field" in r.json()["why"][0]
    assert not models.Skip.objects.exists()


def test_skip_of_an_unknown_response_is_a_404(api, annotator, response):
    r = api(annotator).post("/api/tasks/999999/skip/", {"reason": "x"}, format="json")
    assert r.status_code == 404
    assert api(annotator).post("/api/tasks/abc/skip/", {"reason": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 201, 201, 201, 201], strict=True),
)
def test_skip_checks_the_role(as_cast, response, who, expected):
    user, client = as_cast(who)
    r = client.post(skip_url(response), {"reason": "Off topic."}, format="json")
    assert r.status_code == expected
    assert models.Skip.objects.filter(annotator=user).exists() == (expected == 201)
