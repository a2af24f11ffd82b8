"""Serializers for the REST API.

Validation rules live in the models (annotate/validators.py, Judgment.clean()) so the pages,
the API and the importer share them; serializers pick up the field validators through
ModelSerializer, and writes go through full_clean() (in queue.submit or here).
"""

from collections.abc import Mapping
from datetime import date, datetime

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import dateparse, timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.settings import api_settings

from annotate import models, queue
from annotate import validators as v

# A bigger batch is better sent in several requests, or as a file to import_responses.
MAX_IMPORT_RECORDS = 10_000

# Keys that HTML forms (the browsable API, Swagger's form mode) add on their own.
FORM_KEYS = {"csrfmiddlewaretoken"}


def drf_error(exc: DjangoValidationError) -> serializers.ValidationError:
    """A model's ValidationError as DRF's, with "__all__" under DRF's non-field key."""
    detail = serializers.as_serializer_error(exc)
    if NON_FIELD_ERRORS in detail:
        detail[api_settings.NON_FIELD_ERRORS_KEY] = detail.pop(NON_FIELD_ERRORS)
    return serializers.ValidationError(detail)


class StrictFieldsMixin:
    """Reject keys the serializer does not accept.

    DRF ignores unknown keys by default, so a typo ("critque") would be dropped without a
    word; a read-only key (the annotator, the review state) would be ignored too.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = sorted(name for name, f in self.fields.items() if not f.read_only)
            errors = {}
            for key in data:
                if key in writable or key in FORM_KEYS:
                    continue
                if key in self.fields:
                    errors[key] = ["This field is read-only and cannot be set."]
                else:
                    errors[key] = [f"Unknown field. Allowed fields: {', '.join(writable)}."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class TokenRequestSerializer(StrictFieldsMixin, AuthTokenSerializer):
    pass


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(read_only=True)


class TaskSerializer(serializers.ModelSerializer):
    """A reserved response, as GET /api/tasks/next/ hands it out."""

    id = serializers.IntegerField(source="response_id", read_only=True)
    instruction = serializers.CharField(source="response.prompt.instruction", read_only=True)
    input = serializers.CharField(source="response.prompt.input", read_only=True)
    text = serializers.CharField(source="response.text", read_only=True)
    round = serializers.IntegerField(source="response.round_id", read_only=True, allow_null=True)
    generator = serializers.CharField(source="response.generator", read_only=True)
    reserved_until = serializers.DateTimeField(source="expires", read_only=True)

    class Meta:
        model = models.Reservation
        fields = ["id", "instruction", "input", "text", "round", "generator", "reserved_until"]


class SkipSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = models.Skip
        fields = ["response", "reason", "created"]
        read_only_fields = ["response", "created"]
        # queue.skip() strips and checks the reason; the length check here only makes the
        # schema say so.
        extra_kwargs = {"reason": {"max_length": v.MAX_REASON_CHARS}}


class JudgmentSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """Create: {response, verdict, critique, spans?, seconds_spent?}. The annotator is the
    caller, set by the view (serializer.save(annotator=...)), never a field."""

    response = serializers.PrimaryKeyRelatedField(queryset=models.Response.objects.all())
    round = serializers.IntegerField(source="response.round_id", read_only=True, allow_null=True)
    annotator = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reviewer = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = models.Judgment
        fields = [
            "id",
            "response",
            "round",
            "annotator",
            "verdict",
            "critique",
            "spans",
            "seconds_spent",
            "review_state",
            "reviewer",
            "review_note",
            "reviewed_at",
            "created",
            "updated",
        ]
        read_only_fields = [
            "review_state",
            "review_note",
            "reviewed_at",
            "created",
            "updated",
        ]
        # The annotator's page caps the time the same way: longer is a tab left open.
        extra_kwargs = {"seconds_spent": {"max_value": v.MAX_SECONDS}}

    def create(self, validated_data: dict) -> models.Judgment:
        # The browser and the API share one queue: same slots, same checks, same locks.
        annotator = validated_data.pop("annotator")
        response = validated_data.pop("response")
        try:
            return queue.submit(annotator, response, **validated_data)
        except DjangoValidationError as exc:
            raise drf_error(exc) from exc

    def update(self, instance: models.Judgment, validated_data: dict) -> models.Judgment:
        for name, value in validated_data.items():
            setattr(instance, name, value)
        try:
            instance.full_clean(validate_constraints=False)
        except DjangoValidationError as exc:
            raise drf_error(exc) from exc
        instance.save(update_fields=[*validated_data, "updated"])
        return instance


class JudgmentUpdateSerializer(JudgmentSerializer):
    """PATCH: the response a judgment belongs to cannot change."""

    response = serializers.PrimaryKeyRelatedField(read_only=True)


class ReviewSerializer(StrictFieldsMixin, serializers.Serializer):
    """Accept or reject a judgment; accepting may first correct its verdict, critique or
    spans (edit-and-accept, as on the review page)."""

    EDITABLE = ("verdict", "critique", "spans")

    decision = serializers.ChoiceField(choices=["accept", "reject"])
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=v.MAX_NOTE_CHARS, default=""
    )
    verdict = serializers.ChoiceField(choices=models.Judgment.Verdict.choices, required=False)
    critique = serializers.CharField(
        required=False, allow_blank=True, max_length=v.MAX_CRITIQUE_CHARS, trim_whitespace=False
    )
    spans = serializers.JSONField(required=False, validators=[v.validate_spans])

    def validate(self, attrs: dict) -> dict:
        if attrs["decision"] == "reject" and any(name in attrs for name in self.EDITABLE):
            raise serializers.ValidationError(
                "A rejected judgment is not edited: send verdict, critique or spans only "
                "with decision accept."
            )
        return attrs

    def save(self, judgment: models.Judgment, reviewer) -> models.Judgment:
        """Call inside a transaction with the judgment's row locked."""
        data = self.validated_data
        edits = {name: data[name] for name in self.EDITABLE if name in data}
        note = data["note"]
        try:
            with transaction.atomic():
                if edits:
                    for name, value in edits.items():
                        setattr(judgment, name, value)
                    judgment.full_clean(validate_constraints=False)
                    judgment.save(update_fields=[*edits, "updated"])
                    # The same default note as the review page's edit-and-accept.
                    note = note.strip() or "Edited by the reviewer before accepting."
                if data["decision"] == "accept":
                    judgment.accept(reviewer, note)
                else:
                    judgment.reject(reviewer, note)
        except DjangoValidationError as exc:
            error = drf_error(exc)
            if "review_note" in error.detail:
                error.detail["note"] = error.detail.pop("review_note")
            raise error from exc
        return judgment


class RoundSerializer(serializers.ModelSerializer):
    response_count = serializers.IntegerField(read_only=True)
    judgment_count = serializers.IntegerField(
        read_only=True, help_text="Judgments of this round's responses, rejected ones left out."
    )
    negative_count = serializers.IntegerField(
        read_only=True, help_text="Of those, how many found problems."
    )

    class Meta:
        model = models.Round
        fields = [
            "number",
            "base_model",
            "adapter",
            "training_run",
            "notes",
            "created",
            "response_count",
            "judgment_count",
            "negative_count",
        ]


@extend_schema_field(OpenApiTypes.STR)
class DateOrDateTimeField(serializers.Field):
    """ "2024-05-01" (the start of that day) or an ISO 8601 date-time."""

    default_error_messages = {
        "invalid": "Give a date (YYYY-MM-DD) or an ISO 8601 date-time "
        "(YYYY-MM-DDThh:mm[:ss][+hh:mm])."
    }

    def to_internal_value(self, value) -> date | datetime | None:
        if not isinstance(value, str):
            self.fail("invalid")
        if not value:
            return None  # "?since=" from a form left empty
        try:
            # Dates first: parse_datetime would read "2024-05-01" as a naive midnight.
            parsed = dateparse.parse_date(value) or dateparse.parse_datetime(value)
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        if isinstance(parsed, datetime) and timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        return parsed

    def to_representation(self, value) -> str:
        return value.isoformat()


class ExportQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    """Query parameters of GET /api/export/judgments.jsonl, as export_judgments takes them."""

    status = serializers.ChoiceField(
        choices=["accepted", "pending", "rejected", "all"], default="accepted"
    )
    round = serializers.IntegerField(required=False, min_value=0, max_value=v.MAX_ROUND)
    since = DateOrDateTimeField(
        required=False, help_text="Only judgments created at or after this date or date-time."
    )
    positive_judgment = serializers.BooleanField(
        default=False, help_text="Fill in the critique of positive judgments too (else null)."
    )


class ResponseImportSerializer(StrictFieldsMixin, serializers.Serializer):
    """POST /api/responses/: the records a file for import_responses would hold."""

    source = serializers.CharField(max_length=v.MAX_SOURCE_CHARS)
    round = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=v.MAX_ROUND, default=None
    )
    overlap = serializers.IntegerField(required=False, min_value=1, max_value=32767, default=1)
    accept_judgments = serializers.BooleanField(
        required=False,
        default=False,
        help_text="File the records' judgments as accepted instead of pending review.",
    )
    records = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=False,
        max_length=MAX_IMPORT_RECORDS,
        help_text='Alpaca-style records: {"instruction", "input"?, "output", "judgment"?, '
        '"id"?, "generator"?}; other keys go into the prompt\'s metadata.',
    )


class ImportSummarySerializer(serializers.Serializer):
    records = serializers.IntegerField()
    prompts_created = serializers.IntegerField()
    responses_created = serializers.IntegerField()
    judgments_created = serializers.IntegerField()
    unchanged = serializers.IntegerField()
