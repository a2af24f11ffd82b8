"""Serializers of the training-run API (annotate/training_api.py).

A new run is checked by the same code as the New run page: the selection by
training_runs.check_selection, the overrides by training_forms.parse_overrides (which is
training.config.apply_overrides, the code behind `train_cut --name=value`).
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from annotate import exports, models, training_forms, training_runs
from annotate import validators as v
from annotate.serializers import StrictFieldsMixin


class TrainingRunSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    url = serializers.CharField(source="get_absolute_url", read_only=True)

    class Meta:
        model = models.TrainingRun
        fields = [
            "id",
            "url",
            "status",
            "base_model",
            "positive_count",
            "negative_count",
            "output_dir",
            "worker_host",
            "heartbeat_at",
            "total_steps",
            "cancel_requested",
            "created_by",
            "created",
            "started_at",
            "finished_at",
        ]


class TrainingRunDetailSerializer(TrainingRunSerializer):
    series = serializers.SerializerMethodField(
        help_text="The metric series: one object per recorded optimizer step, as training "
        "writes metrics.jsonl (step, loss, l_mle, l_ul, flagged, lr, tokens_per_s, ...; "
        "holdout numbers under eval on evaluation steps)."
    )

    class Meta(TrainingRunSerializer.Meta):
        fields = [
            *TrainingRunSerializer.Meta.fields,
            "config",
            "filters",
            "snapshot_path",
            "snapshot_sha256",
            "metrics",
            "series",
            "log_tail",
            "error",
        ]

    def get_series(self, run: models.TrainingRun) -> list[dict]:
        return training_runs.steps(run.series)


class NewTrainingRunSerializer(StrictFieldsMixin, serializers.Serializer):
    """POST /api/training-runs/: what the New run page asks for."""

    status = serializers.ChoiceField(choices=exports.STATUSES, default="accepted")
    rounds = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=v.MAX_ROUND),
        default=list,
        # Bounded well below DATA_UPLOAD_MAX_NUMBER_FIELDS, so a form-encoded body that
        # keeps to the schema is never refused by Django before the serializer sees it.
        max_length=100,
        help_text="Round numbers to train on (at most 100); empty: every round.",
    )
    since = serializers.DateField(
        required=False, allow_null=True, help_text="Only judgments made on or after this day."
    )
    base_model = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=training_forms.MAX_BASE_MODEL_CHARS,
        help_text="A model directory on the worker; empty for the embedded SmolLM2-135M.",
    )
    overrides = serializers.JSONField(
        required=False,
        default=dict,
        help_text='CUTConfig fields, as train_cut\'s --name=value: {"threshold": 1.2} or '
        '["--threshold=1.2"].',
    )
    request_token = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Any UUID: a second request with the same token returns the run the first "
        "one started (200) instead of starting another.",
    )

    def validate_rounds(self, value: list[int]) -> list[int]:
        numbers = sorted(set(value))
        known = set(models.Round.objects.filter(pk__in=numbers).values_list("pk", flat=True))
        unknown = [n for n in numbers if n not in known]
        if unknown:
            raise serializers.ValidationError(
                f"No round {', '.join(str(n) for n in unknown)}. Known rounds are on /api/rounds/."
            )
        return numbers

    def validate_overrides(self, value) -> dict:
        if not isinstance(value, dict | list):
            raise serializers.ValidationError(
                'Give an object of config fields ({"threshold": 1.2}) or a list of '
                '"--name=value" strings.'
            )
        try:
            return training_forms.parse_overrides(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None

    def validate(self, attrs: dict) -> dict:
        try:
            training_runs.check_selection(self.filters(attrs))
        except DjangoValidationError as error:
            raise serializers.ValidationError({"non_field_errors": error.messages}) from None
        return attrs

    @staticmethod
    def filters(attrs: dict) -> dict:
        since = attrs.get("since")
        return {
            "status": attrs["status"],
            "rounds": attrs["rounds"],
            "since": since.isoformat() if since else None,
        }
