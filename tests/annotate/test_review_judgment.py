import pytest
from django.urls import reverse

from annotate import models
from tests.conftest import make_user

HX = {"HX-Request": "true"}
QUEUE = reverse("annotate:review-queue")


def url(judgment) -> str:
    return reverse("annotate:judgment-review", args=[judgment.pk])


def judge(response, annotator, **kw) -> models.Judgment:
    kw.setdefault("verdict", "negative")
    kw.setdefault("critique", f"Critique by {annotator.username}.")
    return models.Judgment.objects.create(response=response, annotator=annotator, **kw)


@pytest.fixture
def rita(client, reviewer):
    client.force_login(reviewer)
    return reviewer


def test_the_queue_shows_the_oldest_pending_judgment_with_the_others(
    client, rita, annotator, other_annotator, make_responses
):
    first, second = make_responses(2, overlap=2)
    oldest = judge(first, annotator, spans=[[0, 3]])
    judge(first, other_annotator, verdict="positive", critique="Looks fine to me.")
    judge(second, annotator)
    page = client.get(QUEUE)
    html = page.content.decode()
    assert page.status_code == 200
    assert page.context["judgment"] == oldest
    assert "Critique by alice." in html
    assert "Looks fine to me." in html  # bob's judgment of the same response
    assert "<mark>Ans</mark>" in html  # alice's highlighted span
    assert "3 pending" in html
    assert url(oldest) in html


def test_the_queue_filters_by_annotator_and_round(
    client, rita, annotator, other_annotator, make_responses
):
    round2 = models.Round.objects.create(number=2)
    (plain,) = make_responses(1)
    (in_round,) = make_responses(1, round=round2)
    judge(plain, annotator)
    bobs = judge(in_round, other_annotator)
    alices_in_round = judge(make_responses(1, overlap=2, round=round2)[0], annotator)
    assert client.get(QUEUE, {"annotator": "bob"}).context["judgment"] == bobs
    assert client.get(QUEUE, {"round": 2}).context["judgment"] == bobs
    page = client.get(QUEUE, {"round": 2, "annotator": "alice"})
    assert page.context["judgment"] == alices_in_round
    assert "1 pending (filtered)" in page.content.decode()


def test_the_queue_leaves_out_my_own_judgments(client, rita, response):
    judge(response, rita)
    page = client.get(QUEUE)
    assert page.context["judgment"] is None
    assert "Nothing to review" in page.content.decode()


def test_htmx_gets_the_review_fragment(client, rita, annotator, response):
    judge(response, annotator)
    page = client.get(QUEUE, headers=HX)
    html = page.content.decode()
    assert "<html" not in html
    assert 'id="review"' in html


def test_accept_records_reviewer_and_time(client, rita, annotator, response):
    judgment = judge(response, annotator)
    page = client.post(url(judgment), {"action": "accept", "review_note": ""})
    assert page.status_code == 302
    assert page.url == QUEUE
    judgment.refresh_from_db()
    assert judgment.review_state == "accepted"
    assert judgment.reviewer == rita
    assert judgment.reviewed_at is not None


def test_reject_needs_a_note_and_keeps_it(client, rita, annotator, response):
    judgment = judge(response, annotator)
    page = client.post(url(judgment), {"action": "reject", "review_note": "  "})
    assert page.status_code == 200
    assert "Say why the judgment is rejected." in page.content.decode()
    judgment.refresh_from_db()
    assert judgment.review_state == "pending"
    page = client.post(url(judgment), {"action": "reject", "review_note": " Misses the error. "})
    judgment.refresh_from_db()
    assert judgment.review_state == "rejected"
    assert judgment.review_note == "Misses the error."


def test_the_annotator_sees_the_outcome(client, rita, annotator, response):
    judgment = judge(response, annotator)
    client.post(url(judgment), {"action": "reject", "review_note": "Misses the error."})
    client.force_login(annotator)
    html = client.get(reverse("annotate:judgment-list")).content.decode()
    assert "Rejected" in html and "Misses the error." in html


def test_edit_and_accept_saves_the_edits(client, rita, annotator, response):
    judgment = judge(response, annotator)
    page = client.post(
        url(judgment),
        {"action": "edit", "verdict": "negative", "critique": "Sharper critique.", "spans": ""},
    )
    assert page.status_code == 302
    judgment.refresh_from_db()
    assert judgment.review_state == "accepted"
    assert judgment.critique == "Sharper critique."
    assert judgment.review_note == "Edited by the reviewer before accepting."


def test_edit_with_an_invalid_judgment_keeps_the_text(client, rita, annotator, response):
    judgment = judge(response, annotator)
    page = client.post(
        url(judgment),
        {"action": "edit", "verdict": "negative", "critique": "", "review_note": "My note"},
        headers=HX,
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "a critique is required" in html
    assert "My note</textarea>" in html
    assert 'id="edit-details" open' in html
    judgment.refresh_from_db()
    assert judgment.review_state == "pending"


def test_htmx_review_swaps_in_the_next_judgment(client, rita, annotator, make_responses):
    first, second = make_responses(2)
    j1, j2 = judge(first, annotator), judge(second, annotator)
    page = client.post(url(j1), {"action": "accept"}, headers=HX)
    html = page.content.decode()
    assert "<html" not in html
    assert "Accepted." in html
    assert page.context["judgment"] == j2


def test_filters_are_kept_after_an_action(
    client, rita, annotator, other_annotator, make_responses
):
    first, second, third = make_responses(3)
    judge(first, other_annotator)
    j2, j3 = judge(second, annotator), judge(third, annotator)
    page = client.post(url(j2), {"action": "accept", "annotator": "alice"})
    assert page.url == f"{QUEUE}?annotator=alice"
    assert client.get(page.url).context["judgment"] == j3


def test_a_judgment_reviewed_meanwhile_is_not_reviewed_again(client, rita, annotator, response):
    judgment = judge(response, annotator)
    judgment.accept(make_user("rob", "reviewers"))
    page = client.post(url(judgment), {"action": "reject", "review_note": "No."})
    assert page.status_code == 200
    assert "Another reviewer has already accepted this judgment." in page.content.decode()
    judgment.refresh_from_db()
    assert judgment.review_state == "accepted"


def test_reviewing_my_own_judgment_is_refused(client, rita, response):
    judgment = judge(response, rita)
    assert client.post(url(judgment), {"action": "accept"}).status_code == 403
    judgment.refresh_from_db()
    assert judgment.review_state == "pending"


def test_annotators_cannot_review(client, annotator, other_annotator, response):
    judgment = judge(response, other_annotator)
    client.force_login(annotator)
    assert client.get(QUEUE).status_code == 403
    assert client.get(url(judgment)).status_code == 403
    assert client.post(url(judgment), {"action": "accept"}).status_code == 403
    judgment.refresh_from_db()
    assert judgment.review_state == "pending"


def test_staff_can_review(client, staff, annotator, response):
    judgment = judge(response, annotator)
    client.force_login(staff)
    client.post(url(judgment), {"action": "accept"})
    judgment.refresh_from_db()
    assert judgment.reviewer == staff


def test_an_unknown_judgment_is_a_404(client, rita):
    assert client.get("/review/999999/").status_code == 404


def test_an_unknown_action_is_refused(client, rita, annotator, response):
    judgment = judge(response, annotator)
    page = client.post(url(judgment), {"action": "delete"})
    assert page.status_code == 200
    assert "Choose accept, reject or edit and accept." in page.content.decode()
    assert models.Judgment.objects.filter(pk=judgment.pk, review_state="pending").exists()


def test_a_filter_with_nothing_left_says_so(client, rita, annotator, other_annotator, response):
    judgment = judge(response, annotator)
    judge(response, other_annotator)  # still pending, but not alice's
    page = client.post(url(judgment), {"action": "accept", "annotator": "alice"})
    page = client.get(page.url)
    assert page.context["judgment"] is None
    assert "No pending judgments match these filters." in page.content.decode()


def test_the_critique_under_review_is_shown_in_the_readable_font_with_its_line_breaks(
    client, reviewer, annotator, response
):
    models.Judgment.objects.create(
        response=response, annotator=annotator, verdict="negative", critique="One.\nTwo."
    )
    client.force_login(reviewer)
    html = client.get(reverse("annotate:review-queue")).content.decode()
    assert '<dd class="prose">One.\nTwo.</dd>' in html


def test_a_note_over_the_limit_gets_one_clear_error_and_is_kept(client, rita, annotator, response):
    judgment = judge(response, annotator)
    note = "n" * 6_000
    page = client.post(url(judgment), {"action": "reject", "review_note": note}, headers=HX)
    html = page.content.decode()
    assert "The note is 6,000 characters long; the limit is 5,000." in html
    assert "Say why the judgment is rejected." not in html
    assert note in html
    judgment.refresh_from_db()
    assert judgment.review_state == "pending"
