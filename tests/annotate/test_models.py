import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from annotate import models


def test_migrate_creates_the_groups(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {"annotators", "reviewers"}


def test_migrate_creates_guidelines(db):
    assert models.Guideline.objects.get().body.startswith("Read the instruction")


def test_one_judgment_per_response_and_annotator(response, annotator):
    models.Judgment.objects.create(response=response, annotator=annotator, verdict="positive")
    with pytest.raises(IntegrityError), transaction.atomic():
        models.Judgment.objects.create(response=response, annotator=annotator, verdict="positive")


def test_the_database_refuses_a_negative_verdict_without_critique(response, annotator):
    with pytest.raises(IntegrityError), transaction.atomic():
        models.Judgment.objects.create(response=response, annotator=annotator, verdict="negative")


def test_clean_refuses_a_blank_critique_on_a_negative_verdict(response, annotator):
    judgment = models.Judgment(
        response=response, annotator=annotator, verdict="negative", critique="   "
    )
    with pytest.raises(ValidationError) as excinfo:
        judgment.full_clean()
    assert "critique" in excinfo.value.message_dict


def test_spans_must_lie_inside_the_response(response, annotator):
    judgment = models.Judgment(
        response=response, annotator=annotator, verdict="negative", critique="x", spans=[[0, 999]]
    )
    with pytest.raises(ValidationError) as excinfo:
        judgment.full_clean()
    assert "runs past the response" in str(excinfo.value)


def test_spans_must_be_pairs(response, annotator):
    judgment = models.Judgment(
        response=response, annotator=annotator, verdict="positive", spans=[[3]]
    )
    with pytest.raises(ValidationError):
        judgment.full_clean()


def test_external_id_is_unique_per_source(db):
    models.Prompt.objects.create(source="a", external_id="1", instruction="x")
    models.Prompt.objects.create(source="b", external_id="1", instruction="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        models.Prompt.objects.create(source="a", external_id="1", instruction="y")


def test_overlap_must_be_positive(prompt):
    with pytest.raises(IntegrityError), transaction.atomic():
        models.Response.objects.create(prompt=prompt, text="x", overlap=0)


def test_accept_records_the_reviewer(response, annotator, reviewer):
    judgment = models.Judgment.objects.create(
        response=response, annotator=annotator, verdict="positive"
    )
    judgment.accept(reviewer, "fine")
    judgment.refresh_from_db()
    assert judgment.review_state == "accepted"
    assert judgment.reviewer == reviewer
    assert judgment.reviewed_at is not None


def test_reject_needs_a_note(response, annotator, reviewer):
    judgment = models.Judgment.objects.create(
        response=response, annotator=annotator, verdict="positive"
    )
    with pytest.raises(ValidationError):
        judgment.reject(reviewer, " ")
    judgment.reject(reviewer, "The response has a bug the critique missed.")
    judgment.refresh_from_db()
    assert judgment.review_state == "rejected"
