from django.urls import reverse

from annotate import models, queue

HX = {"HX-Request": "true"}


def url(response) -> str:
    return reverse("annotate:response-skip", args=[response.pk])


def test_it_records_the_reason_and_moves_on(client, annotator, make_responses):
    first, second = make_responses(2)
    client.force_login(annotator)
    queue.next_for(annotator)
    page = client.post(url(first), {"reason": "  Needs medical knowledge. "})
    assert page.status_code == 302
    assert page.url == reverse("annotate:home")
    skip = models.Skip.objects.get()
    assert (skip.annotator, skip.response, skip.reason) == (
        annotator,
        first,
        "Needs medical knowledge.",
    )
    assert not models.Reservation.objects.filter(response=first).exists()
    assert client.get(page.url).context["response"] == second


def test_the_skipped_response_stays_in_other_queues(client, annotator, other_annotator, response):
    client.force_login(annotator)
    client.post(url(response), {"reason": "Not my field."})
    assert queue.next_for(other_annotator).response == response


def test_htmx_swaps_in_the_next_task(client, annotator, make_responses):
    first, second = make_responses(2)
    client.force_login(annotator)
    page = client.post(url(first), {"reason": "Unclear prompt."}, headers=HX)
    html = page.content.decode()
    assert "<html" not in html
    assert "Skipped" in html
    assert f'data-done="{first.pk}"' in html
    assert page.context["response"] == second


def test_a_reason_is_required(client, annotator, response):
    client.force_login(annotator)
    page = client.post(url(response), {"reason": "  "}, headers=HX)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Say why you skip this response." in html
    assert 'id="skip-details" open' in html
    assert not models.Skip.objects.exists()


def test_a_reason_that_is_too_long_is_refused_and_kept(client, annotator, response):
    client.force_login(annotator)
    page = client.post(url(response), {"reason": "long " * 500})
    assert page.status_code == 200
    assert "The reason is 2,499 characters long; the limit is 2,000." in page.content.decode()
    assert "long long long" in page.content.decode()
    assert not models.Skip.objects.exists()


def test_it_refuses_get_and_outsiders(client, annotator, outsider, response):
    client.force_login(annotator)
    assert client.get(url(response)).status_code == 405
    client.force_login(outsider)
    assert client.post(url(response), {"reason": "x"}).status_code == 403
    assert not models.Skip.objects.exists()
