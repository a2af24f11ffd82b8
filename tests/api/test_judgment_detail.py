import pytest

from annotate import models, validators
from tests.api.conftest import CAST


@pytest.fixture
def judgment(annotator, response) -> models.Judgment:
    return models.Judgment.objects.create(
        response=response, annotator=annotator, verdict="negative", critique="Too short."
    )


def url(judgment) -> str:
    return f"/api/judgments/{judgment.pk}/"


def patch(client, judgment, body):
    return client.patch(url(judgment), body, format="json")


def test_an_annotator_reads_their_own(api, annotator, judgment):
    r = api(annotator).get(url(judgment))
    assert r.status_code == 200
    assert r.json()["critique"] == "Too short."
    assert r.json()["annotator"] == "alice"


@pytest.mark.parametrize(
    ("who", "expected"),
    # Another annotator's judgment does not exist for them: 404, not 403.
    zip(CAST, [401, 403, 200, 404, 200, 200], strict=True),
)
def test_reading_checks_role_and_ownership(as_cast, judgment, who, expected):
    _, client = as_cast(who)
    assert client.get(url(judgment)).status_code == expected


def test_an_unknown_judgment_is_a_404(api, reviewer, judgment):
    assert api(reviewer).get("/api/judgments/999999/").status_code == 404
    assert api(reviewer).get("/api/judgments/abc/").status_code == 404


def test_an_annotator_edits_their_own_until_it_is_reviewed(api, annotator, judgment):
    r = patch(
        api(annotator), judgment, {"critique": "  Too short; no reasons.  ", "spans": [[4, 7]]}
    )
    assert r.status_code == 200
    assert r.json()["critique"] == "Too short; no reasons."
    judgment.refresh_from_db()
    assert judgment.critique == "Too short; no reasons."
    assert judgment.spans == [[4, 7]]
    assert judgment.verdict == "negative"


def test_switching_to_positive_keeps_the_critique_optional(api, annotator, judgment):
    r = patch(api(annotator), judgment, {"verdict": "positive", "critique": ""})
    assert r.status_code == 200
    judgment.refresh_from_db()
    assert (judgment.verdict, judgment.critique) == ("positive", "")


@pytest.mark.parametrize("state", ["accepted", "rejected"])
def test_a_reviewed_judgment_cannot_be_edited(api, annotator, reviewer, judgment, state):
    if state == "accepted":
        judgment.accept(reviewer)
    else:
        judgment.reject(reviewer, "Not a critique.")
    r = patch(api(annotator), judgment, {"critique": "Edited after review."})
    assert r.status_code == 409
    assert r.json() == {"detail": f"This judgment has been {state} and can no longer be changed."}
    judgment.refresh_from_db()
    assert judgment.critique == "Too short."


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 200, 404, 403, 403], strict=True),
)
def test_editing_checks_role_and_ownership(as_cast, judgment, who, expected):
    _, client = as_cast(who)
    assert patch(client, judgment, {"critique": "Someone else's words."}).status_code == expected
    judgment.refresh_from_db()
    assert (judgment.critique == "Someone else's words.") == (expected == 200)


def test_reviewers_edit_their_own_judgments(api, reviewer, response):
    own = models.Judgment.objects.create(response=response, annotator=reviewer, verdict="positive")
    assert patch(api(reviewer), own, {"seconds_spent": 9}).status_code == 200


def test_a_negative_verdict_still_needs_a_critique(api, annotator, judgment):
    r = patch(api(annotator), judgment, {"critique": " "})
    assert r.status_code == 400
    assert "critique is required" in r.json()["critique"][0]
    judgment.refresh_from_db()
    assert judgment.critique == "Too short."


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("verdict", "maybe"),
        ("critique", "x" * (validators.MAX_CRITIQUE_CHARS + 1)),
        ("spans", [[0, 10_000]]),
        ("spans", {"start": 0}),
        ("seconds_spent", "ten"),
    ],
)
def test_it_rejects_bad_values(api, annotator, judgment, field, value):
    r = patch(api(annotator), judgment, {field: value})
    assert r.status_code == 400
    assert field in r.json()
    judgment.refresh_from_db()
    assert judgment.critique == "Too short."


@pytest.mark.parametrize("field", ["response", "annotator", "review_state", "review_note"])
def test_server_side_fields_cannot_be_edited(api, annotator, judgment, field, make_responses):
    value = {"response": make_responses(1)[0].pk, "annotator": "bob"}.get(field, "accepted")
    r = patch(api(annotator), judgment, {field: value})
    assert r.status_code == 400
    assert r.json() == {field: ["This field is read-only and cannot be set."]}


def test_it_rejects_unknown_fields(api, annotator, judgment):
    r = patch(api(annotator), judgment, {"comment": "Hello"})
    assert r.status_code == 400
    assert "Unknown field" in r.json()["comment"][0]


@pytest.mark.parametrize("method", ["put", "delete"])
def test_put_and_delete_are_not_allowed(api, annotator, judgment, method):
    r = getattr(api(annotator), method)(url(judgment), {"verdict": "positive"}, format="json")
    assert r.status_code == 405
    assert models.Judgment.objects.filter(pk=judgment.pk, verdict="negative").exists()
