"""The admin as the curators' UI: readable lists, the response as the app renders it with
the highlights, the other judgments beside it, and highlights edited as highlights."""

import json

import pytest
from django.urls import reverse

from annotate import models

TEXT = "The capital of **France** is Paris.\n\n<script>alert(1)</script>\n\nIt lies on the Seine."
LONG_CRITIQUE = "Wordy. " * 200


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def judged(response, annotator, other_annotator, reviewer):
    """alice highlighted "Paris"; bob and rita judged the same response."""
    models.Response.objects.filter(pk=response.pk).update(text=TEXT)
    response.refresh_from_db()
    paris = TEXT.index("Paris")
    mine = models.Judgment.objects.create(
        response=response,
        annotator=annotator,
        verdict="negative",
        critique=LONG_CRITIQUE,
        spans=[[paris, paris + 5]],
    )
    bob = models.Judgment.objects.create(
        response=response,
        annotator=other_annotator,
        verdict="negative",
        critique="The river is wrong.",
        spans=[[TEXT.index("Seine"), TEXT.index("Seine") + 5]],
    )
    rita = models.Judgment.objects.create(
        response=response, annotator=reviewer, verdict="positive"
    )
    return mine, bob, rita


def change_url(judgment) -> str:
    return reverse("admin:annotate_judgment_change", args=[judgment.pk])


def form_data(judgment, **changes) -> dict:
    data = {
        "response": judgment.response_id,
        "annotator": judgment.annotator_id,
        "verdict": judgment.verdict,
        "critique": judgment.critique,
        "spans": json.dumps(judgment.spans),
        "review_state": judgment.review_state,
        "reviewer": judgment.reviewer_id or "",
        "review_note": judgment.review_note,
        "seconds_spent": "",
    }
    return {**data, **changes}


def test_the_admin_is_titled_critique_loop(staff_client):
    html = staff_client.get(reverse("admin:index")).content.decode()
    assert "<title>Curation | Critique Loop</title>" in html
    assert '<a href="/admin/">Critique Loop</a>' in html
    assert '<a href="/staff/users/add/">Add many people at once</a>' in html


def test_the_judgment_list_shows_readable_previews_of_critique_and_response(staff_client, judged):
    html = staff_client.get(reverse("admin:annotate_judgment_changelist")).content.decode()
    assert "css/admin_curation.css" in html
    # Truncated to a line or two, with the whole text (up to 1,000 characters) on hover.
    assert '<span class="preview" title="Wordy. Wordy.' in html
    assert ("Wordy. " * 30) not in html.split('title="')[0]
    assert "The capital of **France** is Paris. &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


def test_the_judgment_page_shows_the_rendered_response_with_the_highlights(staff_client, judged):
    mine, _, _ = judged
    html = staff_client.get(change_url(mine)).content.decode()
    # Safe Markdown, as the app renders it: markup rendered, raw HTML shown as text.
    assert "The capital of <strong>France</strong> is Paris." in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    # alice's highlight, in the highlights editor.
    assert "is <mark>Paris</mark>." in html
    assert 'name="spans" value="[[' in html


def test_the_judgment_page_lists_the_other_judgments_of_the_response(staff_client, judged):
    mine, bob, rita = judged
    html = staff_client.get(change_url(mine)).content.decode()
    others = html[html.index("Other judgments of this response") :]
    assert f'href="{change_url(bob)}"' in others
    assert "The river is wrong." in others
    assert "<mark>Seine</mark>" in others
    assert f'href="{change_url(rita)}"' in others
    assert f'href="{change_url(mine)}"' not in others


def test_a_response_page_lists_its_judgments_read_only(staff_client, judged):
    mine, bob, _ = judged
    page = staff_client.get(reverse("admin:annotate_response_change", args=[mine.response_id]))
    html = page.content.decode()
    assert "The river is wrong." in html
    assert f'href="{change_url(bob)}"' in html
    assert 'name="judgments-0-critique"' not in html
    assert 'name="judgments-0-verdict"' not in html
    assert 'name="judgments-MAX_NUM_FORMS" value="0"' in html  # none can be added here


def test_a_highlight_is_removed_by_ticking_it_without_javascript(staff_client, judged):
    mine, _, _ = judged
    page = staff_client.post(change_url(mine), form_data(mine, **{"spans-remove": "0"}))
    assert page.status_code == 302
    mine.refresh_from_db()
    assert mine.spans == []


def test_a_highlight_is_added_by_pasting_its_passage_without_javascript(staff_client, judged):
    mine, _, _ = judged
    page = staff_client.post(change_url(mine), form_data(mine, **{"spans-add": " the Seine "}))
    assert page.status_code == 302
    mine.refresh_from_db()
    seine = TEXT.index("the Seine")
    assert mine.spans == [[TEXT.index("Paris"), TEXT.index("Paris") + 5], [seine, seine + 9]]


def test_a_passage_already_highlighted_is_found_again_further_on(staff_client, judged):
    mine, _, _ = judged
    for _ in range(2):
        mine.refresh_from_db()
        staff_client.post(change_url(mine), form_data(mine, **{"spans-add": "a"}))
    mine.refresh_from_db()
    first = TEXT.index("a")
    second = TEXT.index("a", first + 1)
    paris = TEXT.index("Paris")
    assert mine.spans == [[first, first + 1], [second, second + 1], [paris, paris + 5]]


def test_a_passage_not_in_the_response_is_refused_and_nothing_changes(staff_client, judged):
    mine, _, _ = judged
    page = staff_client.post(
        change_url(mine),
        form_data(mine, critique="Changed.", **{"spans-add": "Lyon", "spans-remove": "0"}),
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "“Lyon” is not in the response text as written" in html
    assert ">Lyon</textarea>" in html
    assert 'name="spans-remove" value="0" checked>' in html  # what was ticked stays ticked
    mine.refresh_from_db()
    assert mine.critique == LONG_CRITIQUE


def test_the_scripts_spans_are_stored_as_the_same_json(staff_client, judged):
    mine, _, _ = judged
    page = staff_client.post(change_url(mine), form_data(mine, spans="[[4, 11], [0, 3]]"))
    assert page.status_code == 302
    mine.refresh_from_db()
    assert mine.spans == [[0, 3], [4, 11]]


def test_spans_past_the_end_of_the_response_are_refused(staff_client, judged):
    mine, _, _ = judged
    page = staff_client.post(change_url(mine), form_data(mine, spans="[[0, 100000]]"))
    assert page.status_code == 200
    assert "runs past the response" in page.content.decode()
    mine.refresh_from_db()
    assert mine.spans == [[TEXT.index("Paris"), TEXT.index("Paris") + 5]]
