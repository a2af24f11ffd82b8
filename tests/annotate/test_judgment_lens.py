"""A judgment's stored lens: on the review page, the edit page, its own URL and the admin;
kept fresh when the critique changes."""

import re
import uuid
from html.parser import HTMLParser

from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from annotate import lens, models
from tests.annotate.lens_helpers import finish, store_lens

HX = {"HX-Request": "true"}


def lens_url(judgment) -> str:
    return reverse("annotate:judgment-lens", args=[judgment.pk])


def judge(response, annotator, critique="The capital is not Paris.", **kw):
    kw.setdefault("verdict", "negative")
    return models.Judgment.objects.create(
        response=response, annotator=annotator, critique=critique, **kw
    )


class Marks(HTMLParser):
    """The text inside each <mark class="lens ..."> of a lens panel, with its attributes."""

    def __init__(self):
        super().__init__()
        self.marks: list[dict] = []
        self._open = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "mark" and "tabindex" in attrs:
            self._open = {**attrs, "text": ""}
        if tag in ("script", "img"):
            raise AssertionError(f"a live <{tag}> element was rendered: {attrs}")

    def handle_endtag(self, tag):
        if tag == "mark" and self._open is not None:
            self.marks.append(self._open)
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data


def marks(html: str) -> list[dict]:
    start = html.index('class="lens-text"')
    parser = Marks()
    parser.feed(html[start - 5 : html.index("</pre>", start)])
    return parser.marks


def test_the_review_page_marks_the_flagged_tokens_beside_the_highlights(
    client, reviewer, annotator, response
):
    judgment = judge(response, annotator, spans=[[25, 31]])  # "Paris."
    store_lens(judgment, {"Paris.": 12.0, "capital": 1.3})
    client.force_login(reviewer)
    html = client.get(reverse("annotate:judgment-review", args=[judgment.pk])).content.decode()
    found = marks(html)
    assert [m["text"] for m in found] == ["capital", "Paris."]
    assert [m["class"] for m in found] == ["lens lens-1", "lens lens-4"]
    assert found[1]["title"] == "12× as likely with the critique (log ratio +2.48)"
    assert found[1]["aria-label"] == "Flagged “Paris.”: 12× as likely with the critique"
    assert '<span class="lens-hl">Paris.</span>' in html  # the annotator's highlight
    assert "100% of the highlighted characters are flagged" in html
    assert "Show the marking" in html  # the toggle
    assert "lens-legend" in html


def test_a_critique_that_flags_nothing_gets_a_plain_warning(client, reviewer, annotator, response):
    judgment = judge(response, annotator, critique="Could be better.")
    store_lens(judgment, {})
    client.force_login(reviewer)
    html = client.get(reverse("annotate:judgment-review", args=[judgment.pk])).content.decode()
    assert "This critique points at no part of the response" in html
    assert "flags most of the response" not in html


def test_a_critique_that_flags_most_of_the_response_gets_a_warning(
    client, reviewer, annotator, response
):
    judgment = judge(response, annotator, critique="All of it is wrong.")
    store_lens(judgment, dict.fromkeys(response.text.split(), 2.0))
    client.force_login(reviewer)
    html = client.get(reverse("annotate:judgment-review", args=[judgment.pk])).content.decode()
    assert "This critique flags most of the response" in html


def test_without_a_lens_the_review_page_offers_to_compute_it(
    client, reviewer, annotator, response
):
    judgment = judge(response, annotator)
    client.force_login(reviewer)
    html = client.get(reverse("annotate:judgment-review", args=[judgment.pk])).content.decode()
    assert f'hx-post="{lens_url(judgment)}"' in html
    assert 'hx-trigger="load, submit"' in html
    assert "Compute the lens" in html


def test_computing_a_judgments_lens_queues_a_job_and_polls_until_it_is_stored(
    client, reviewer, annotator, response, lens_worker
):
    judgment = judge(response, annotator)
    client.force_login(reviewer)
    page = client.post(lens_url(judgment), headers=HX)
    job = DBTaskResult.objects.get()
    assert job.args_kwargs["args"] == [[judgment.pk]]
    assert job.priority == lens.PREVIEW_PRIORITY  # ahead of a round's bulk jobs
    poll = f"{lens_url(judgment)}?job={job.pk}"
    assert f'hx-get="{poll}"' in page.content.decode()
    pending = client.get(poll, headers=HX).content.decode()
    assert "Computing what training will learn" in pending
    assert pending.count('id="judgment-lens"') == 1
    assert 'hx-target="#judgment-lens" hx-swap="outerHTML"' in pending  # the whole box
    store_lens(judgment, {"Paris.": 3.5})  # what the job does
    finish(job.pk, {"stored": 1})
    html = client.get(poll, headers=HX).content.decode()
    assert "hx-get" not in html
    assert [m["text"] for m in marks(html)] == ["Paris."]


def test_computing_without_a_worker_says_so(client, reviewer, annotator, response):
    judgment = judge(response, annotator)
    client.force_login(reviewer)
    page = client.post(lens_url(judgment), headers=HX)
    assert page.status_code == 200  # htmx swaps only 2xx answers
    assert "No lens worker is running" in page.content.decode()
    assert not DBTaskResult.objects.exists()


def test_a_positive_judgment_has_nothing_to_mark(client, reviewer, annotator, response):
    judgment = judge(response, annotator, critique="", verdict="positive")
    client.force_login(reviewer)
    html = client.get(lens_url(judgment), headers=HX).content.decode()
    assert "nothing is marked" in html


# Who may see what ----------------------------------------------------------------------


def test_an_annotator_sees_the_lens_of_their_own_judgment(client, annotator, response):
    judgment = judge(response, annotator)
    store_lens(judgment, {"Paris.": 2.0})
    client.force_login(annotator)
    page = client.get(lens_url(judgment))
    assert page.status_code == 200
    assert [m["text"] for m in marks(page.content.decode())] == ["Paris."]


def test_another_annotators_judgment_lens_is_a_404(client, annotator, other_annotator, response):
    judgment = judge(response, annotator)
    store_lens(judgment, {"Paris.": 2.0})
    client.force_login(other_annotator)
    assert client.get(lens_url(judgment)).status_code == 404
    assert client.post(lens_url(judgment)).status_code == 404


def test_reviewers_and_staff_see_every_judgments_lens(
    client, annotator, reviewer, staff, response
):
    judgment = judge(response, annotator)
    store_lens(judgment, {"Paris.": 2.0})
    for user in (reviewer, staff):
        client.force_login(user)
        assert client.get(lens_url(judgment)).status_code == 200


def test_someone_in_no_group_gets_a_403_for_a_judgments_lens(
    client, outsider, annotator, response
):
    judgment = judge(response, annotator)
    client.force_login(outsider)
    assert client.get(lens_url(judgment)).status_code == 403


def test_the_edit_page_of_a_reviewed_judgment_shows_its_lens(
    client, annotator, reviewer, response
):
    judgment = judge(response, annotator)
    judgment.accept(reviewer)
    store_lens(judgment, {"Paris.": 2.0})
    client.force_login(annotator)
    html = client.get(reverse("annotate:judgment-edit", args=[judgment.pk])).content.decode()
    assert [m["text"] for m in marks(html)] == ["Paris."]


# Fresh or stale --------------------------------------------------------------------------


def test_editing_the_critique_makes_the_lens_stale_and_queues_a_recompute(
    client, annotator, response, django_capture_on_commit_callbacks
):
    judgment = judge(response, annotator)
    store_lens(judgment, {"Paris.": 2.0})
    client.force_login(annotator)
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            reverse("annotate:judgment-edit", args=[judgment.pk]),
            {"verdict": "negative", "critique": "It is Paris, but the sentence is clumsy."},
        )
    assert page.status_code == 302
    job = DBTaskResult.objects.get()
    assert job.args_kwargs["args"] == [[judgment.pk]]
    judgment.refresh_from_db()
    assert not judgment.lens.is_fresh
    html = client.get(lens_url(judgment)).content.decode()
    assert "computed for an earlier version of the critique" in html
    assert 'class="lens-text"' not in html


def test_a_reviewers_edit_of_the_critique_queues_a_recompute(
    client, annotator, reviewer, response, django_capture_on_commit_callbacks
):
    judgment = judge(response, annotator)
    store_lens(judgment, {"Paris.": 2.0})
    client.force_login(reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("annotate:judgment-review", args=[judgment.pk]),
            {"action": "edit", "verdict": "negative", "critique": "Clumsy.", "review_note": ""},
        )
    judgment.refresh_from_db()
    assert judgment.review_state == "accepted"
    assert DBTaskResult.objects.get().args_kwargs["args"] == [[judgment.pk]]


def test_saving_without_changing_the_critique_queues_nothing(
    annotator, reviewer, response, django_capture_on_commit_callbacks
):
    judgment = judge(response, annotator)
    store_lens(judgment, {"Paris.": 2.0})
    with django_capture_on_commit_callbacks(execute=True):
        judgment.accept(reviewer)
        judgment.save()
    assert not DBTaskResult.objects.exists()


# The admin -----------------------------------------------------------------------------


def test_the_admin_shows_the_judgments_lens(client, staff, annotator, response):
    judgment = judge(response, annotator)
    store_lens(judgment, {"Paris.": 2.0})
    client.force_login(staff)
    html = client.get(
        reverse("admin:annotate_judgment_change", args=[judgment.pk])
    ).content.decode()
    assert "What training will learn" in html
    assert [m["text"] for m in marks(html)] == ["Paris."]
    assert "css/lens.css" in html


def test_the_admin_action_queues_the_lens_of_the_selected_negative_judgments(
    client, staff, annotator, other_annotator, make_responses, lens_worker
):
    first, second, third = make_responses(3)
    negative = judge(first, annotator)
    positive = judge(second, annotator, critique="", verdict="positive")
    fresh = judge(third, other_annotator)
    store_lens(fresh, {})
    client.force_login(staff)
    page = client.post(
        reverse("admin:annotate_judgment_changelist"),
        {"action": "compute_lens", "_selected_action": [negative.pk, positive.pk, fresh.pk]},
        follow=True,
    )
    assert "Queued the lens of 1 negative judgments (1 jobs)" in page.content.decode()
    assert DBTaskResult.objects.get().args_kwargs["args"] == [[negative.pk]]


def test_marks_are_focusable_and_labelled(client, reviewer, annotator, response):
    judgment = judge(response, annotator)
    store_lens(judgment, {"France": 1.6})
    client.force_login(reviewer)
    html = client.get(lens_url(judgment)).content.decode()
    [mark] = marks(html)
    assert mark["tabindex"] == "0"
    assert re.fullmatch(r"Flagged “France”: 1\.6× as likely with the critique", mark["aria-label"])


def test_a_response_longer_than_the_cutoff_says_its_end_is_not_marked(
    client, reviewer, annotator, response
):
    judgment = judge(response, annotator)
    stored = store_lens(judgment, {"Paris.": 2.0})
    client.force_login(reviewer)
    assert "longer than training" not in client.get(lens_url(judgment)).content.decode()
    models.LensResult.objects.filter(pk=stored.pk).update(truncated=True)
    assert "longer than training" in client.get(lens_url(judgment)).content.decode()


def test_a_bad_or_foreign_job_id_is_a_404(client, reviewer, annotator, response, lens_worker):
    judgment = judge(response, annotator)
    client.force_login(reviewer)
    assert client.get(lens_url(judgment), {"job": "not-a-uuid"}).status_code == 404
    assert client.get(lens_url(judgment), {"job": str(uuid.uuid4())}).status_code == 404
    client.post(reverse("annotate:lens-preview"), {"response": response.pk, "critique": "Draft."})
    preview_job = DBTaskResult.objects.get().pk  # a preview is not this judgment's job
    assert client.get(lens_url(judgment), {"job": str(preview_job)}).status_code == 404


def test_computing_without_javascript_redirects_to_a_page_that_refreshes(
    client, reviewer, annotator, response, lens_worker
):
    judgment = judge(response, annotator)
    client.force_login(reviewer)
    page = client.post(lens_url(judgment))
    assert page.status_code == 302
    pending = client.get(page.url)
    assert pending["Refresh"] == "1"
    assert "Computing what training will learn" in pending.content.decode()


def test_asking_again_replaces_the_job_not_yet_started(
    client, reviewer, annotator, response, make_responses, lens_worker
):
    judgment = judge(response, annotator)
    (elsewhere,) = make_responses(1)
    other = judge(elsewhere, annotator)
    lens.enqueue_compute([judgment.pk, other.pk])  # a bulk job with both stays
    client.force_login(reviewer)
    client.post(lens_url(judgment), headers=HX)
    client.post(lens_url(judgment), headers=HX)
    jobs = sorted(job.args_kwargs["args"][0] for job in DBTaskResult.objects.all())
    assert jobs == sorted([[judgment.pk, other.pk], [judgment.pk]])
