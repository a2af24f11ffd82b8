"""The annotator's preview: "Preview what training will learn" for the critique as typed."""

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from annotate import lens, models, queue
from tests.annotate.lens_helpers import finish, result_for, tokens_for

HX = {"HX-Request": "true"}
PREVIEW = reverse("annotate:lens-preview")


def result_url(job_id) -> str:
    return reverse("annotate:lens-preview-result", args=[job_id])


@pytest.fixture
def alice(client, annotator):
    client.force_login(annotator)
    return annotator


@pytest.fixture
def task(alice, response):
    """The response handed to alice by the queue."""
    assert queue.next_for(alice).response == response
    return response


def preview(client, response, critique="The capital is wrong.", **headers):
    return client.post(PREVIEW, {"response": response.pk, "critique": critique}, headers=headers)


def test_the_task_page_has_the_preview_button_inside_the_judgment_form(client, task):
    html = client.get(reverse("annotate:home")).content.decode()
    form = html[
        html.index('id="judgment-form"') : html.index("</form>", html.index("judgment-form"))
    ]
    assert "Preview what training will learn" in form
    assert f'formaction="{PREVIEW}"' in form
    assert f'name="response" value="{task.pk}"' in form


def test_the_edit_page_has_the_preview_button(client, alice, response):
    judgment = models.Judgment.objects.create(
        response=response, annotator=alice, verdict="negative", critique="Wrong."
    )
    html = client.get(reverse("annotate:judgment-edit", args=[judgment.pk])).content.decode()
    assert "Preview what training will learn" in html


def test_it_queues_a_preview_job_and_the_fragment_polls_for_it(client, task, lens_worker):
    page = preview(client, task, "  The capital is Lyon.  ", **HX)
    assert page.status_code == 200
    job = DBTaskResult.objects.get()
    assert job.queue_name == "lens"
    assert job.priority == lens.PREVIEW_PRIORITY
    assert job.args_kwargs["args"] == [task.pk, "The capital is Lyon.", page.wsgi_request.user.pk]
    html = page.content.decode()
    assert "<html" not in html
    assert f'hx-get="{result_url(job.pk)}"' in html
    assert 'hx-trigger="load delay:300ms"' in html
    # The fragment replaces itself: the judgment form's own hx-target must not apply.
    assert 'hx-target="this" hx-swap="outerHTML"' in html
    # Nothing was saved: no judgment, no stored lens.
    assert not models.Judgment.objects.exists()
    assert not models.LensResult.objects.exists()


def test_the_poll_shows_the_marking_once_the_worker_is_done(client, task, lens_worker):
    preview(client, task, **HX)
    job = DBTaskResult.objects.get()
    assert (
        "Computing what training will learn"
        in client.get(result_url(job.pk), headers=HX).content.decode()
    )
    finish(job.pk, result_for(task.text, tokens_for(task.text, {"Paris.": 4.0})))
    page = client.get(result_url(job.pk), headers=HX)
    html = page.content.decode()
    assert page.status_code == 200
    assert "hx-trigger" not in html  # done: no more polling
    assert "nothing was saved" in html
    assert '<mark class="lens lens-3" tabindex="0"' in html
    assert ">Paris.</mark>" in html
    assert "4.0× as likely with the critique" in html


def test_without_a_worker_it_says_so_at_once_and_queues_nothing(client, task):
    page = preview(client, task, **HX)
    assert page.status_code == 200  # htmx swaps only 2xx answers
    assert "No lens worker is running" in page.content.decode()
    assert "db_worker --queue-name lens" in page.content.decode()
    assert not DBTaskResult.objects.exists()
    page = preview(client, task)  # without JavaScript: the page, with its status
    assert page.status_code == 503
    assert "No lens worker is running" in page.content.decode()
    assert not DBTaskResult.objects.exists()


def test_a_worker_on_other_queues_only_does_not_count(client, task):
    from annotate import workers

    workers.register("gpu-only", ["default", "gpu"])
    assert "No lens worker is running" in preview(client, task, **HX).content.decode()


def test_an_empty_critique_asks_for_one(client, task, lens_worker):
    page = preview(client, task, "   ", **HX)
    assert page.status_code == 200
    assert "Write a critique first" in page.content.decode()
    assert not DBTaskResult.objects.exists()


def test_a_failed_job_says_why(client, task, lens_worker):
    preview(client, task, **HX)
    job = DBTaskResult.objects.get()
    finish(job.pk, failed="The model directory is missing.")
    html = client.get(result_url(job.pk), headers=HX).content.decode()
    assert "The lens could not be computed" in html
    assert "The model directory is missing." in html


def test_without_javascript_the_preview_is_a_page_that_refreshes_until_done(
    client, task, lens_worker
):
    page = preview(client, task)
    job = DBTaskResult.objects.get()
    assert page.status_code == 302
    assert page.url == result_url(job.pk)
    pending = client.get(page.url)
    assert pending["Refresh"] == "1"
    assert "<html" in pending.content.decode()
    finish(job.pk, result_for(task.text, tokens_for(task.text, {"Paris.": 2.0})))
    done = client.get(page.url)
    assert not done.has_header("Refresh")
    assert ">Paris.</mark>" in done.content.decode()


# Who may preview and read previews --------------------------------------------------------


def test_an_annotator_cannot_preview_on_a_response_not_handed_to_them(
    client, alice, response, lens_worker
):
    assert preview(client, response).status_code == 404
    assert not DBTaskResult.objects.exists()


def test_an_annotator_may_preview_on_a_response_they_judged(client, alice, response, lens_worker):
    models.Judgment.objects.create(response=response, annotator=alice, verdict="positive")
    assert preview(client, response).status_code == 302


def test_another_annotators_preview_is_a_404(client, task, lens_worker, other_annotator):
    preview(client, task)
    job = DBTaskResult.objects.get()
    client.force_login(other_annotator)
    assert client.get(result_url(job.pk)).status_code == 404


def test_reviewers_and_staff_may_read_anyones_preview(client, task, lens_worker, reviewer, staff):
    preview(client, task)
    job = DBTaskResult.objects.get()
    for user in (reviewer, staff):
        client.force_login(user)
        assert client.get(result_url(job.pk)).status_code == 200


def test_a_reviewer_may_preview_on_any_response(client, reviewer, response, lens_worker):
    client.force_login(reviewer)
    assert preview(client, response).status_code == 302


def test_someone_in_no_group_gets_a_403(client, outsider, response, lens_worker):
    client.force_login(outsider)
    assert preview(client, response).status_code == 403


def test_an_unknown_job_is_a_404(client, alice):
    assert client.get(result_url("6b0f7a3e-2d7b-4bdb-9a55-0c2f4e6f0a11")).status_code == 404


def test_a_lens_compute_job_is_not_a_preview(client, alice, response, annotator):
    judgment = models.Judgment.objects.create(
        response=response, annotator=annotator, verdict="negative", critique="Wrong."
    )
    [job] = lens.enqueue_compute([judgment.pk])
    assert client.get(result_url(job)).status_code == 404


def test_preview_answers_only_post(client, alice):
    assert client.get(PREVIEW).status_code == 405


def test_the_reviewer_can_preview_an_edited_critique_on_the_review_page(
    client, reviewer, annotator, response, lens_worker
):
    judgment = models.Judgment.objects.create(
        response=response, annotator=annotator, verdict="negative", critique="Vague."
    )
    client.force_login(reviewer)
    html = client.get(reverse("annotate:judgment-review", args=[judgment.pk])).content.decode()
    edit = html[
        html.index('id="edit-details"') : html.index("</details>", html.index("edit-details"))
    ]
    assert "Preview what training will learn" in edit
    assert f'name="response" value="{response.pk}"' in edit
    page = client.post(
        PREVIEW,
        {
            "response": response.pk,
            "critique": "Paris is right; the phrasing is odd.",
            "action": "edit",
            "review_note": "",
        },
        headers=HX,
    )
    assert "Computing what training will learn" in page.content.decode()
    assert (
        DBTaskResult.objects.get().args_kwargs["args"][1] == "Paris is right; the phrasing is odd."
    )


def test_a_new_preview_drops_the_users_previews_still_waiting(
    client, alice, task, lens_worker, reviewer
):
    client.force_login(reviewer)
    preview(client, task, "Someone else's draft.")  # stays: another user's
    client.force_login(alice)
    preview(client, task, "First try.")
    running = DBTaskResult.objects.get(args_kwargs__args__1="First try.")
    running.claim("worker-1")  # the worker has started it: it stays
    preview(client, task, "Second try.")
    preview(client, task, "Third try.")
    left = sorted(job.args_kwargs["args"][1] for job in DBTaskResult.objects.all())
    assert left == ["First try.", "Someone else's draft.", "Third try."]


def test_a_slow_preview_says_why(client, task, lens_worker):
    import datetime as dt

    preview(client, task, **HX)
    job = DBTaskResult.objects.get()
    url = result_url(job.pk)
    DBTaskResult.objects.filter(pk=job.pk).update(
        enqueued_at=job.enqueued_at - dt.timedelta(seconds=30)
    )
    assert "busy with other work" in client.get(url, headers=HX).content.decode()
    models.Worker.objects.all().delete()  # the worker went away meanwhile
    assert "No lens worker is running" in client.get(url, headers=HX).content.decode()
    job.refresh_from_db()
    job.claim("worker-2")
    DBTaskResult.objects.filter(pk=job.pk).update(
        started_at=job.started_at - dt.timedelta(seconds=30)
    )
    assert "also loads the model" in client.get(url, headers=HX).content.decode()


def test_the_preview_button_is_never_the_forms_default_button(client, task, reviewer, annotator):
    """Enter in a form clicks its first submit button: that must stay Submit / Save /
    Edit and accept, not the preview."""
    html = client.get(reverse("annotate:home")).content.decode()
    form = html[html.index('id="judgment-form"') :]
    assert form.index('class="primary"') < form.index("data-lens-preview")
    judgment = models.Judgment.objects.create(
        response=task, annotator=annotator, verdict="negative", critique="Wrong."
    )
    html = client.get(reverse("annotate:judgment-edit", args=[judgment.pk])).content.decode()
    assert html.index("Save changes") < html.index("data-lens-preview")
    client.force_login(reviewer)
    html = client.get(reverse("annotate:judgment-review", args=[judgment.pk])).content.decode()
    form = html[html.index('id="review-form"') :]
    assert form.index('type="submit"') == form.index('type="submit" name="action" value="edit"')
