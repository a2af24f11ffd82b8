import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate import models, queue

HX = {"HX-Request": "true"}


def url(response) -> str:
    return reverse("annotate:judgment-submit", args=[response.pk])


@pytest.fixture
def alice(client, annotator):
    client.force_login(annotator)
    return annotator


def test_it_saves_the_judgment_and_redirects_to_the_next_task(client, alice, response):
    queue.next_for(alice)
    page = client.post(
        url(response),
        {"verdict": "negative", "critique": "  Too terse.  ", "spans": "[[4, 11]]"},
    )
    assert page.status_code == 302
    assert page.url == reverse("annotate:home")
    judgment = models.Judgment.objects.get()
    assert (judgment.annotator, judgment.response) == (alice, response)
    assert judgment.verdict == "negative"
    assert judgment.critique == "Too terse."
    assert judgment.spans == [[4, 11]]
    assert judgment.seconds_spent is not None  # from the reservation when no timer was sent
    response.refresh_from_db()
    assert response.judgment_count == 1
    assert not models.Reservation.objects.exists()
    assert "Judgment saved." in client.get(page.url).content.decode()


def test_it_records_the_time_the_page_measured(client, alice, response):
    client.post(url(response), {"verdict": "positive", "seconds_spent": "37"})
    assert models.Judgment.objects.get().seconds_spent == 37


def test_without_a_timer_time_is_counted_from_the_reservation(client, alice, response):
    queue.next_for(alice, now=timezone.now() - timedelta(seconds=90))
    client.post(url(response), {"verdict": "positive"})
    assert 90 <= models.Judgment.objects.get().seconds_spent < 200


def test_htmx_swaps_in_the_next_task(client, alice, make_responses):
    first, second = make_responses(2)
    queue.next_for(alice)
    page = client.post(url(first), {"verdict": "positive"}, headers=HX)
    html = page.content.decode()
    assert page.status_code == 200
    assert "<html" not in html
    assert "Judgment saved." in html
    assert f'data-done="{first.pk}"' in html  # the page script drops that draft
    assert page.context["response"] == second
    assert "<strong>1</strong> done today" in html


def test_htmx_after_the_last_task_says_the_queue_is_empty(client, alice, response):
    page = client.post(url(response), {"verdict": "positive"}, headers=HX)
    assert "Your queue is empty" in page.content.decode()


def test_a_negative_verdict_needs_a_critique_and_keeps_the_text(client, alice, response):
    page = client.post(
        url(response), {"verdict": "negative", "critique": "   ", "spans": "[[0, 3]]"}, headers=HX
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "a critique is required" in html
    assert re.search(r'value="negative"[^>]*checked', html)
    assert "[[0, 3]]" in html
    assert not models.Judgment.objects.exists()


def test_a_validation_error_keeps_the_typed_critique(client, alice, response):
    page = client.post(url(response), {"critique": "I typed this & more"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "<html" in html
    assert "Choose a verdict" in html
    assert "I typed this &amp; more</textarea>" in html
    assert not models.Judgment.objects.exists()


def test_bad_spans_are_refused_with_a_message(client, alice, response):
    page = client.post(url(response), {"verdict": "positive", "spans": "not json"})
    assert "could not be read" in page.content.decode()
    page = client.post(url(response), {"verdict": "positive", "spans": json.dumps([[0, 999]])})
    assert "runs past the response" in page.content.decode()
    assert not models.Judgment.objects.exists()


def test_a_full_response_is_refused_with_the_text_kept(client, alice, other_annotator, response):
    past = timezone.now() - timedelta(hours=1)
    queue.next_for(alice, now=past)  # expired by now
    queue.submit(other_annotator, response, verdict="positive")
    page = client.post(url(response), {"verdict": "negative", "critique": "My careful critique"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "This response already has all the judgments it needs." in html
    assert "My careful critique</textarea>" in html
    assert "Go to the next task" in html
    assert models.Judgment.objects.count() == 1


def test_an_expired_reservation_is_still_accepted_when_a_slot_is_free(client, alice, response):
    queue.next_for(alice, now=timezone.now() - timedelta(hours=1))
    page = client.post(url(response), {"verdict": "positive"})
    assert page.status_code == 302
    assert models.Judgment.objects.get().annotator == alice


def test_judging_twice_is_refused(client, alice, make_responses):
    (response,) = make_responses(1, overlap=2)
    client.post(url(response), {"verdict": "positive"})
    page = client.post(url(response), {"verdict": "positive"})
    assert "You have already judged this response." in page.content.decode()
    assert models.Judgment.objects.count() == 1


def test_a_retired_response_is_refused(client, alice, response):
    models.Response.objects.filter(pk=response.pk).update(retired=True)
    page = client.post(url(response), {"verdict": "positive"})
    assert "retired" in page.content.decode()
    assert not models.Judgment.objects.exists()


def test_an_unknown_response_is_a_404(client, alice, db):
    assert client.post("/responses/999999/judgment/", {"verdict": "positive"}).status_code == 404


def test_it_refuses_get(client, alice, response):
    assert client.get(url(response)).status_code == 405


def test_a_user_in_no_group_is_refused(client, outsider, response):
    client.force_login(outsider)
    assert client.post(url(response), {"verdict": "positive"}).status_code == 403
    assert not models.Judgment.objects.exists()


def test_anonymous_posts_go_to_login(client, response):
    page = client.post(url(response), {"verdict": "positive"})
    assert page.status_code == 302
    assert not models.Judgment.objects.exists()


def test_it_checks_the_csrf_token(annotator, response):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(annotator)
    assert strict.post(url(response), {"verdict": "positive"}).status_code == 403
    assert not models.Judgment.objects.exists()


def test_a_critique_over_the_limit_gets_one_clear_error_and_the_text_is_kept(
    client, alice, response
):
    pasted = "x" * 200_000
    page = client.post(url(response), {"verdict": "negative", "critique": pasted}, headers=HX)
    html = page.content.decode()
    assert page.status_code == 200
    assert "The critique is 200,000 characters long; the limit is 20,000." in html
    assert "a critique is required" not in html
    assert "Ensure this value" not in html
    assert pasted in html  # kept in the form
    assert not models.Judgment.objects.exists()


def test_the_critique_box_does_not_cut_a_paste_with_maxlength(client, alice, response):
    html = client.get(reverse("annotate:home")).content.decode()
    box = re.search(r"<textarea[^>]*name=\"critique\"[^>]*>", html).group(0)
    assert "maxlength" not in box
    assert 'data-limit="20000"' in box
