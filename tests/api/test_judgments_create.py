import pytest

from annotate import models, queue, validators
from tests.api.conftest import CAST

URL = "/api/judgments/"


def post(client, body):
    return client.post(URL, body, format="json")


def test_it_records_a_judgment_for_the_caller(api, annotator, response):
    client = api(annotator)
    client.get("/api/tasks/next/")
    r = post(
        client,
        {
            "response": response.pk,
            "verdict": "negative",
            "critique": "  It should say Paris is the capital, and it does; but too short.  ",
            "spans": [[0, 3]],
            "seconds_spent": 42,
        },
    )
    assert r.status_code == 201
    body = r.json()
    judgment = models.Judgment.objects.get()
    assert body["id"] == judgment.pk
    assert body["annotator"] == "alice"
    assert body["response"] == response.pk
    assert body["round"] == 1
    assert body["review_state"] == "pending"
    assert judgment.annotator == annotator
    assert judgment.verdict == "negative"
    # Cleaned by the model, as the page's form is.
    assert judgment.critique == "It should say Paris is the capital, and it does; but too short."
    assert judgment.spans == [[0, 3]]
    assert judgment.seconds_spent == 42
    response.refresh_from_db()
    assert response.judgment_count == 1
    assert not models.Reservation.objects.exists()


def test_a_positive_verdict_needs_no_critique(api, annotator, response):
    r = post(api(annotator), {"response": response.pk, "verdict": "positive"})
    assert r.status_code == 201
    assert r.json()["critique"] == ""
    assert r.json()["spans"] == []


def test_a_negative_verdict_needs_a_critique(api, annotator, response):
    for critique in ("", "   "):
        body = {"response": response.pk, "verdict": "negative", "critique": critique}
        r = post(api(annotator), body)
        assert r.status_code == 400
        assert "critique is required" in r.json()["critique"][0]
    assert not models.Judgment.objects.exists()
    response.refresh_from_db()
    assert response.judgment_count == 0


def test_it_needs_response_and_verdict(api, annotator, response):
    r = post(api(annotator), {})
    assert r.status_code == 400
    assert set(r.json()) == {"response", "verdict"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("response", "abc"),
        ("response", [1]),
        ("verdict", 5),
        ("verdict", "meh"),
        ("critique", ["a list"]),
        ("spans", "0-3"),
        ("spans", [[3, 1]]),
        ("spans", [[0, 1.5]]),
        ("spans", [[0, 999]]),
        ("seconds_spent", "lots"),
        ("seconds_spent", -1),
        ("seconds_spent", 24 * 60 * 60 + 1),
    ],
)
def test_it_rejects_wrong_types(api, annotator, response, field, value):
    body = {"response": response.pk, "verdict": "negative", "critique": "Wrong.", field: value}
    r = post(api(annotator), body)
    assert r.status_code == 400
    assert field in r.json()
    assert not models.Judgment.objects.exists()


def test_it_rejects_an_oversized_critique(api, annotator, response):
    critique = "x" * (validators.MAX_CRITIQUE_CHARS + 1)
    r = post(
        api(annotator), {"response": response.pk, "verdict": "negative", "critique": critique}
    )
    assert r.status_code == 400
    assert "critique" in r.json()
    assert not models.Judgment.objects.exists()


def test_it_rejects_an_unknown_response(api, annotator, response):
    r = post(api(annotator), {"response": 999999, "verdict": "positive"})
    assert r.status_code == 400
    assert "does not exist" in r.json()["response"][0]


def test_it_rejects_unknown_fields(api, annotator, response):
    body = {"response": response.pk, "verdict": "negative", "critque": "Typo in the key."}
    r = post(api(annotator), body)
    assert r.status_code == 400
    assert r.json()["critque"][0].startswith("Unknown field. Allowed fields: critique,")
    assert not models.Judgment.objects.exists()


@pytest.mark.parametrize("field", ["annotator", "review_state", "reviewer", "id"])
def test_the_caller_cannot_set_server_side_fields(
    api, annotator, other_annotator, response, field
):
    value = {"annotator": "bob", "review_state": "accepted", "reviewer": "rita", "id": 5}[field]
    r = post(api(annotator), {"response": response.pk, "verdict": "positive", field: value})
    assert r.status_code == 400
    assert r.json() == {field: ["This field is read-only and cannot be set."]}
    assert not models.Judgment.objects.exists()


def test_a_second_judgment_of_the_same_response_is_a_409(api, annotator, make_responses):
    (response,) = make_responses(1, overlap=2)
    client = api(annotator)
    assert post(client, {"response": response.pk, "verdict": "positive"}).status_code == 201
    r = post(client, {"response": response.pk, "verdict": "negative", "critique": "Changed."})
    assert r.status_code == 409
    assert r.json() == {"detail": "You have already judged this response."}
    response.refresh_from_db()
    assert response.judgment_count == 1
    assert models.Judgment.objects.get().verdict == "positive"


def test_a_full_response_is_a_409(api, annotator, other_annotator, response):
    queue.submit(other_annotator, response, verdict="positive")
    r = post(api(annotator), {"response": response.pk, "verdict": "positive"})
    assert r.status_code == 409
    assert r.json() == {"detail": "This response already has all the judgments it needs."}
    assert models.Judgment.objects.count() == 1


def test_a_retired_response_is_a_409(api, annotator, response):
    response.retired = True
    response.save()
    r = post(api(annotator), {"response": response.pk, "verdict": "positive"})
    assert r.status_code == 409
    assert "retired" in r.json()["detail"]
    assert not models.Judgment.objects.exists()


def test_it_accepts_form_posts(api, annotator, response):
    r = api(annotator).post(URL, {"response": response.pk, "verdict": "positive"})
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 201, 201, 201, 201], strict=True),
)
def test_it_checks_the_role(as_cast, response, who, expected):
    user, client = as_cast(who)
    r = post(client, {"response": response.pk, "verdict": "positive"})
    assert r.status_code == expected
    assert models.Judgment.objects.filter(annotator=user).exists() == (expected == 201)
