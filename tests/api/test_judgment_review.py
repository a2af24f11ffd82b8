import pytest

from annotate import models, validators
from tests.api.conftest import CAST


@pytest.fixture
def judgment(annotator, response) -> models.Judgment:
    return models.Judgment.objects.create(
        response=response, annotator=annotator, verdict="negative", critique="Too short."
    )


def review(client, judgment, body):
    return client.post(f"/api/judgments/{judgment.pk}/review/", body, format="json")


def test_a_reviewer_accepts(api, reviewer, judgment):
    r = review(api(reviewer), judgment, {"decision": "accept"})
    assert r.status_code == 200
    assert r.json()["review_state"] == "accepted"
    assert r.json()["reviewer"] == "rita"
    judgment.refresh_from_db()
    assert judgment.review_state == "accepted"
    assert judgment.reviewer == reviewer
    assert judgment.reviewed_at is not None


def test_a_reviewer_rejects_with_a_note(api, reviewer, judgment):
    r = review(api(reviewer), judgment, {"decision": "reject", "note": "  Not about the answer. "})
    assert r.status_code == 200
    judgment.refresh_from_db()
    assert judgment.review_state == "rejected"
    assert judgment.review_note == "Not about the answer."


@pytest.mark.parametrize("body", [{"decision": "reject"}, {"decision": "reject", "note": "  "}])
def test_a_rejection_needs_a_note(api, reviewer, judgment, body):
    r = review(api(reviewer), judgment, body)
    assert r.status_code == 400
    assert r.json() == {"note": ["Say why the judgment is rejected."]}
    judgment.refresh_from_db()
    assert judgment.review_state == "pending"


def test_a_reviewer_edits_and_accepts(api, reviewer, judgment):
    body = {
        "decision": "accept",
        "critique": "Too short: it gives no reason.",
        "note": "Made the critique specific.",
    }
    r = review(api(reviewer), judgment, body)
    assert r.status_code == 200
    judgment.refresh_from_db()
    assert judgment.critique == "Too short: it gives no reason."
    assert judgment.review_state == "accepted"
    assert judgment.review_note == "Made the critique specific."


def test_a_reviewer_can_flip_the_verdict_when_accepting(api, reviewer, judgment):
    r = review(
        api(reviewer), judgment, {"decision": "accept", "verdict": "positive", "critique": ""}
    )
    assert r.status_code == 200
    judgment.refresh_from_db()
    assert (judgment.verdict, judgment.critique, judgment.review_state) == (
        "positive",
        "",
        "accepted",
    )


def test_an_edit_that_breaks_the_rules_changes_nothing(api, reviewer, judgment):
    r = review(api(reviewer), judgment, {"decision": "accept", "critique": ""})
    assert r.status_code == 400
    assert "critique" in r.json()
    judgment.refresh_from_db()
    assert (judgment.critique, judgment.review_state) == ("Too short.", "pending")


def test_a_rejection_comes_without_edits(api, reviewer, judgment):
    body = {"decision": "reject", "note": "No.", "critique": "Better words."}
    r = review(api(reviewer), judgment, body)
    assert r.status_code == 400
    judgment.refresh_from_db()
    assert (judgment.critique, judgment.review_state) == ("Too short.", "pending")


@pytest.mark.parametrize("state", ["accepted", "rejected"])
def test_a_reviewed_judgment_is_not_reviewed_again(api, reviewer, staff, judgment, state):
    if state == "accepted":
        judgment.accept(reviewer)
    else:
        judgment.reject(reviewer, "First look.")
    r = review(api(staff), judgment, {"decision": "accept" if state == "rejected" else "reject"})
    assert r.status_code == 409
    assert r.json() == {"detail": f"Another reviewer has already {state} this judgment."}
    judgment.refresh_from_db()
    assert (judgment.review_state, judgment.reviewer) == (state, reviewer)


def test_edit_and_accept_can_fix_spans_and_notes_the_edit(api, reviewer, judgment):
    r = review(api(reviewer), judgment, {"decision": "accept", "spans": [[4, 11]]})
    assert r.status_code == 200
    judgment.refresh_from_db()
    assert judgment.spans == [[4, 11]]
    assert judgment.review_note == "Edited by the reviewer before accepting."


def test_nobody_reviews_their_own_judgment(api, reviewer, response):
    own = models.Judgment.objects.create(response=response, annotator=reviewer, verdict="positive")
    r = review(api(reviewer), own, {"decision": "accept"})
    assert r.status_code == 403
    own.refresh_from_db()
    assert own.review_state == "pending"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"decision": "approve"},
        {"decision": ["accept"]},
        {"decision": "accept", "verdict": "fine"},
        {"decision": "accept", "note": "x" * (validators.MAX_NOTE_CHARS + 1)},
        {"decision": "accept", "critique": "x" * (validators.MAX_CRITIQUE_CHARS + 1)},
        {"decision": "accept", "state": "accepted"},
        {"decision": "accept", "spans": [[0, 999]]},
        {"decision": "accept", "spans": "0-4"},
    ],
)
def test_it_rejects_bad_input(api, reviewer, judgment, body):
    assert review(api(reviewer), judgment, body).status_code == 400
    judgment.refresh_from_db()
    assert judgment.review_state == "pending"


def test_an_unknown_judgment_is_a_404(api, reviewer, db):
    r = api(reviewer).post("/api/judgments/999999/review/", {"decision": "accept"}, format="json")
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 403, 403, 200, 200], strict=True),
)
def test_it_checks_the_role(as_cast, judgment, who, expected):
    _, client = as_cast(who)
    assert review(client, judgment, {"decision": "accept"}).status_code == expected
    judgment.refresh_from_db()
    assert (judgment.review_state == "accepted") == (expected == 200)
