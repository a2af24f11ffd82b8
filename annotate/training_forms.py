"""Forms of the training pages: a new run, and a generation round from a run's adapter.

The config overrides are checked by training.config.apply_overrides, the function behind
`train_cut --name=value`, so the page, the API and the command accept and refuse the same
things with the same words. training.config imports nothing heavy (no torch), so the web
process may use it.
"""

import uuid

from django import forms
from django.core.exceptions import ValidationError

from annotate import exports, generation, jobs, models, training_runs
from annotate import validators as v
from annotate.forms import PageForm
from training.config import CUTConfig, apply_overrides

MAX_OVERRIDES_CHARS = 5_000
MAX_BASE_MODEL_CHARS = 1_000


def parse_overrides(overrides: str | list[str] | dict) -> dict:
    """Config overrides -> {name: value} as CUTConfig holds them.

    `overrides` is the page's text (one `name=value` or `--name=value` a line; blank lines
    and # comments skipped), a list of such strings, or a dict (from JSON, whose values
    keep their types). Raises ValidationError with apply_overrides' message (unknown key,
    wrong type, out of range) or for a key the run sets itself.
    """
    if isinstance(overrides, dict):
        pairs = overrides
    else:
        lines = overrides.splitlines() if isinstance(overrides, str) else map(str, overrides)
        pairs = [line.strip() for line in lines]
        pairs = [line for line in pairs if line and not line.startswith("#")]
    names = list(pairs) if isinstance(pairs, dict) else [_key(line) for line in pairs]
    # Set by the page itself (the base model field, the run's own directory), never
    # overrides; the same keys train_cut refuses.
    reserved = sorted(set(names) & jobs.RESERVED_KEYS)
    if reserved:
        raise ValidationError(
            f"{', '.join(reserved)} cannot be overridden: the run sets "
            f"{'it' if len(reserved) == 1 else 'them'} itself (the base model has its own field)."
        )
    try:
        config = apply_overrides(CUTConfig(), pairs).to_dict()
    except ValueError as error:
        raise ValidationError(str(error)) from None
    return {name: config[name] for name in names}


def _key(line: str) -> str:
    return line.removeprefix("--").partition("=")[0].strip().replace("-", "_")


class NewRunForm(PageForm):
    """The selection of judgments, the base model and the config overrides of a new run."""

    PREVIEW, START = "preview", "start"

    status = forms.ChoiceField(
        choices=[(s, s.capitalize()) for s in exports.STATUSES],
        initial="accepted",
        label="Review status",
        help_text="Which judgments to train on; usually the accepted ones.",
    )
    rounds = forms.ModelMultipleChoiceField(
        queryset=models.Round.objects.order_by("number"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Rounds",
        help_text="None ticked: every round (and judgments of responses in no round).",
    )
    since = forms.DateField(
        required=False,
        label="Judged since",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Only judgments made on or after this day.",
    )
    base_model = forms.CharField(
        required=False,
        strip=True,
        max_length=MAX_BASE_MODEL_CHARS,
        label="Base model",
        help_text="A model directory on the worker, or empty for the embedded "
        "SmolLM2-135M-Instruct.",
    )
    overrides = forms.CharField(
        required=False,
        max_length=MAX_OVERRIDES_CHARS,
        label="Config overrides",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="One name=value a line, as train_cut's --name=value: e.g. threshold=1.2, "
        "max_steps=50.",
    )
    # A fresh token with every empty form: a second POST with the same token (a double
    # click, a resent form) finds the run the first one started instead of a new one.
    request_token = forms.UUIDField(
        required=False,
        widget=forms.HiddenInput,
        initial=uuid.uuid4,
        error_messages={"invalid": "This form is damaged; reload the page and try again."},
    )

    def clean_request_token(self) -> uuid.UUID:
        # A post without one (a script, not the page) gets its own: no repeat protection.
        return self.cleaned_data["request_token"] or uuid.uuid4()

    def clean_overrides(self) -> dict:
        return parse_overrides(self.cleaned_data["overrides"])

    def clean(self) -> dict:
        cleaned = super().clean()
        if not self.errors:
            training_runs.check_selection(self.filters())
        return cleaned

    def filters(self) -> dict:
        """The selection as JSON, as TrainingRun.filters records it."""
        data = self.cleaned_data
        return {
            "status": data["status"],
            "rounds": [r.number for r in data.get("rounds") or []],
            "since": data["since"].isoformat() if data.get("since") else None,
        }


class GenerateForm(PageForm):
    """Generate the next round with a run's adapter: which prompts, into which round."""

    round = forms.IntegerField(
        min_value=0,
        max_value=v.MAX_ROUND,
        label="Round number",
        help_text="The round the new responses go into.",
    )
    prompts = forms.CharField(
        initial="all",
        max_length=v.MAX_SOURCE_CHARS + len("source="),
        label="Prompt set",
        help_text="all, source=NAME or round=N (the prompts of an earlier round).",
    )
    limit = forms.IntegerField(
        required=False, min_value=1, max_value=1_000_000, help_text="At most this many prompts."
    )

    def clean_prompts(self) -> str:
        value = self.cleaned_data["prompts"].strip()
        try:
            generation.parse_prompts(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None
        return value

    def add_generation_errors(self, error: ValidationError) -> None:
        """generation.new_generation_run's errors, on this form's fields."""
        fields = {"round_number": "round", "prompts": "prompts", "limit": "limit"}
        for name, messages in error.message_dict.items():
            self.add_error(fields.get(name), messages)
