import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotate import models

JUDGMENTS = reverse("admin:annotate_judgment_changelist")
RESPONSES = reverse("admin:annotate_response_changelist")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def judgments(annotator, other_annotator, make_responses, round1):
    """A negative judgment by alice in round 1 and a positive one by bob in no round."""
    (r1,) = make_responses(1, round=round1)
    (r0,) = make_responses(1)
    models.Response.objects.filter(pk=r1.pk).update(generator="smollm2")
    neg = models.Judgment.objects.create(
        response=r1, annotator=annotator, verdict="negative", critique="Misses the unit of mass."
    )
    pos = models.Judgment.objects.create(
        response=r0, annotator=other_annotator, verdict="positive", critique="Spot on, thanks."
    )
    models.Response.objects.filter(pk__in=[r1.pk, r0.pk]).update(judgment_count=1)
    return neg, pos


def action(client, url: str, name: str, objects, **extra):
    data = {"action": name, ACTION_CHECKBOX_NAME: [obj.pk for obj in objects], **extra}
    return client.post(url, data)


@pytest.mark.parametrize(
    "model",
    ["prompt", "response", "judgment", "round", "trainingrun", "guideline", "reservation", "skip"],
)
def test_each_changelist_and_add_page_opens_for_staff(staff_client, judgments, model):
    assert staff_client.get(reverse(f"admin:annotate_{model}_changelist")).status_code == 200
    assert staff_client.get(reverse(f"admin:annotate_{model}_add")).status_code == 200


@pytest.mark.parametrize("model", ["prompt", "response", "judgment", "reservation", "skip"])
def test_lists_take_the_same_number_of_queries_however_many_rows(
    staff_client, make_responses, round1, annotator, model, django_assert_max_num_queries
):
    def fill(n: int) -> None:
        for response in make_responses(n, round=round1):
            models.Judgment.objects.create(
                response=response, annotator=annotator, verdict="positive"
            )
            models.Skip.objects.create(response=response, annotator=annotator, reason="Unsure.")
            models.Reservation.objects.create(
                response=response, annotator=annotator, expires=response.created
            )

    url = reverse(f"admin:annotate_{model}_changelist")
    fill(1)
    with CaptureQueriesContext(connection) as one_row:
        assert staff_client.get(url).status_code == 200
    models.Prompt.objects.all().delete()
    fill(30)
    with django_assert_max_num_queries(len(one_row)):
        assert staff_client.get(url).status_code == 200


def test_change_pages_open_and_show_the_judgments_inline(staff_client, judgments):
    neg, _ = judgments
    page = staff_client.get(reverse("admin:annotate_response_change", args=[neg.response_id]))
    assert page.status_code == 200
    assert "Misses the unit of mass." in page.content.decode()
    prompt = neg.response.prompt_id
    assert staff_client.get(
        reverse("admin:annotate_prompt_change", args=[prompt])
    ).status_code == (200)
    assert staff_client.get(
        reverse("admin:annotate_judgment_change", args=[neg.pk])
    ).status_code == (200)


def test_non_staff_are_sent_to_the_login_page(client, reviewer, judgments):
    client.force_login(reviewer)
    page = client.get(JUDGMENTS)
    assert page.status_code == 302
    assert page.url.startswith(reverse("admin:login"))


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ({"q": "unit of mass"}, "neg"),  # critique
        ({"q": "Instruction 0"}, "both"),  # the prompt's instruction
        ({"q": "Answer"}, "both"),  # the response text
        ({"verdict__exact": "positive"}, "pos"),
        ({"review_state__exact": "pending"}, "both"),
        ({"response__round__number__exact": "1"}, "neg"),
        ({"annotator__id__exact": "ANNOTATOR"}, "neg"),
        ({"response__generator": "smollm2"}, "neg"),
        ({"created__gte": "2000-01-01 00:00:00+00:00"}, "both"),
    ],
)
def test_judgments_can_be_searched_and_filtered(staff_client, judgments, annotator, query, shown):
    query = {k: str(annotator.pk) if v == "ANNOTATOR" else v for k, v in query.items()}
    page = staff_client.get(JUDGMENTS, query)

    assert page.status_code == 200
    text = page.content.decode()
    assert ("Misses the unit of mass." in text) == (shown in ("neg", "both"))
    assert ("Spot on, thanks." in text) == (shown in ("pos", "both"))


def test_responses_can_be_searched_and_filtered(staff_client, judgments):
    neg, pos = judgments
    models.Response.objects.filter(pk=pos.response_id).update(retired=True)
    page = staff_client.get(RESPONSES, {"retired__exact": "1"})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [pos.response]
    page = staff_client.get(RESPONSES, {"generator": "smollm2", "q": "Answer"})
    assert list(page.context["cl"].result_list) == [neg.response]


def test_accept_action_accepts_and_records_the_reviewer(staff_client, staff, judgments):
    neg, pos = judgments
    page = action(staff_client, JUDGMENTS, "accept_selected", [neg])

    assert page.status_code == 302
    neg.refresh_from_db()
    pos.refresh_from_db()
    assert (neg.review_state, neg.reviewer, pos.review_state) == ("accepted", staff, "pending")
    assert neg.reviewed_at is not None


def test_reject_action_asks_for_a_note_first(staff_client, judgments):
    neg, pos = judgments
    page = action(staff_client, JUDGMENTS, "reject_selected", [neg, pos])

    assert page.status_code == 200
    assert "Reject 2 judgments?" in page.content.decode()
    assert set(models.Judgment.objects.values_list("review_state", flat=True)) == {"pending"}

    page = action(staff_client, JUDGMENTS, "reject_selected", [neg, pos], apply="yes", note=" ")
    assert page.status_code == 200
    assert "This field is required." in page.content.decode()
    assert set(models.Judgment.objects.values_list("review_state", flat=True)) == {"pending"}


def test_reject_action_rejects_with_the_note_and_the_reviewer(staff_client, staff, judgments):
    neg, pos = judgments
    page = action(
        staff_client, JUDGMENTS, "reject_selected", [neg], apply="yes", note="Not a problem."
    )

    assert page.status_code == 302
    neg.refresh_from_db()
    assert (neg.review_state, neg.reviewer, neg.review_note) == (
        "rejected",
        staff,
        "Not a problem.",
    )
    pos.refresh_from_db()
    assert pos.review_state == "pending"


def test_reject_action_across_all_pages_keeps_the_filter(staff_client, judgments):
    neg, pos = judgments
    data = {
        "action": "reject_selected",
        ACTION_CHECKBOX_NAME: [neg.pk],
        "select_across": "1",
        "apply": "yes",
        "note": "Bulk clean-up.",
    }
    staff_client.post(JUDGMENTS + "?verdict__exact=negative", data)

    assert models.Judgment.objects.get(pk=neg.pk).review_state == "rejected"
    assert models.Judgment.objects.get(pk=pos.pk).review_state == "pending"


def test_staff_who_may_only_view_judgments_cannot_review_them(
    client, judgments, django_user_model
):
    clerk = django_user_model.objects.create_user("clerk", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_judgment"))
    client.force_login(clerk)
    assert client.get(JUDGMENTS).status_code == 200
    neg, _ = judgments

    action(client, JUDGMENTS, "accept_selected", [neg])
    action(client, JUDGMENTS, "reject_selected", [neg], apply="yes", note="No.")

    assert models.Judgment.objects.get(pk=neg.pk).review_state == "pending"


def test_export_action_downloads_the_selected_judgments_as_jsonl(staff_client, judgments):
    neg, pos = judgments
    page = action(staff_client, JUDGMENTS, "export_selected", [neg])

    assert page.status_code == 200
    assert page["Content-Type"].startswith("application/x-ndjson")
    assert "attachment;" in page["Content-Disposition"]
    lines = b"".join(page.streaming_content).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "id": neg.pk,
            "instruction": neg.response.prompt.instruction,
            "input": "",
            "output": neg.response.text,
            "judgment": "Misses the unit of mass.",
            "verdict": "negative",
            "annotator": "alice",
            "round": 1,
            "response_id": neg.response_id,
        }
    ]


def test_retire_and_unretire_actions_move_responses_out_of_and_into_the_queue(
    staff_client, make_responses
):
    first, second = make_responses(2)
    page = action(staff_client, RESPONSES, "retire", [first])

    assert page.status_code == 302
    assert list(models.Response.objects.filter(retired=True)) == [first]
    action(staff_client, RESPONSES, "unretire", [first, second])
    assert not models.Response.objects.filter(retired=True).exists()


def test_bulk_delete_keeps_the_judgment_count(staff_client, judgments, reviewer):
    neg, pos = judgments
    second = models.Judgment.objects.create(
        response=neg.response, annotator=reviewer, verdict="positive"
    )
    models.Response.objects.filter(pk=neg.response_id).update(judgment_count=2)

    page = action(staff_client, JUDGMENTS, "delete_selected", [second, pos], post="yes")

    assert page.status_code == 302
    assert not models.Judgment.objects.filter(pk__in=[second.pk, pos.pk]).exists()
    assert models.Response.objects.get(pk=neg.response_id).judgment_count == 1
    assert models.Response.objects.get(pk=pos.response_id).judgment_count == 0


def judgment_form(judgment: models.Judgment, **changes) -> dict:
    data = {
        "response": judgment.response_id,
        "annotator": judgment.annotator_id,
        "verdict": judgment.verdict,
        "critique": judgment.critique,
        "spans": "[]",
        "review_state": judgment.review_state,
        "reviewer": judgment.reviewer_id or "",
        "review_note": judgment.review_note,
        "seconds_spent": "",
    }
    return {**data, **changes}


def test_adding_or_moving_a_judgment_in_the_admin_keeps_the_counts(
    staff_client, judgments, reviewer
):
    neg, pos = judgments
    add = reverse("admin:annotate_judgment_add")
    page = staff_client.post(add, judgment_form(neg, annotator=reviewer.pk))
    assert page.status_code == 302
    assert models.Response.objects.get(pk=neg.response_id).judgment_count == 2

    change = reverse("admin:annotate_judgment_change", args=[pos.pk])
    page = staff_client.post(change, judgment_form(pos, response=neg.response_id))
    assert page.status_code == 302
    assert models.Response.objects.get(pk=neg.response_id).judgment_count == 3
    assert models.Response.objects.get(pk=pos.response_id).judgment_count == 0


def test_reviewing_in_the_form_records_the_reviewer(staff_client, staff, judgments):
    neg, _ = judgments
    change = reverse("admin:annotate_judgment_change", args=[neg.pk])

    page = staff_client.post(change, judgment_form(neg, review_state="rejected"))
    assert page.status_code == 200
    assert "Say why the judgment is rejected." in page.content.decode()

    page = staff_client.post(change, judgment_form(neg, review_state="accepted"))
    assert page.status_code == 302
    neg.refresh_from_db()
    assert (neg.review_state, neg.reviewer) == ("accepted", staff)
    assert neg.reviewed_at is not None


def test_deleting_an_inline_judgment_keeps_the_count(staff_client, judgments):
    neg, _ = judgments
    response = neg.response
    data = {
        "prompt": response.prompt_id,
        "text": response.text,
        "generator": response.generator,
        "round": response.round_id,
        "overlap": response.overlap,
        "created_0": "2024-01-01",
        "created_1": "00:00:00",
        "judgments-TOTAL_FORMS": "1",
        "judgments-INITIAL_FORMS": "1",
        "judgments-MIN_NUM_FORMS": "0",
        "judgments-MAX_NUM_FORMS": "1000",
        "judgments-0-id": neg.pk,
        "judgments-0-response": response.pk,
        "judgments-0-annotator": neg.annotator_id,
        "judgments-0-verdict": neg.verdict,
        "judgments-0-critique": neg.critique,
        "judgments-0-DELETE": "on",
    }
    page = staff_client.post(reverse("admin:annotate_response_change", args=[response.pk]), data)

    assert page.status_code == 302, page.context and page.context["errors"]
    assert not models.Judgment.objects.filter(pk=neg.pk).exists()
    assert models.Response.objects.get(pk=response.pk).judgment_count == 0
