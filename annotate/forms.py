"""HTML forms of the annotator's and reviewer's pages.

The rules themselves live in the models and validators (shared with the API); these forms
parse what a browser sends and carry errors back to the page with the typed text kept.
"""

import json

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.forms.renderers import Jinja2

from annotate import models
from annotate import validators as v

User = get_user_model()


def add_model_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a model's ValidationError on the form's matching fields, the rest on the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        form.add_error(field if field in form.fields else None, messages)


class PageForm(forms.Form):
    """A form of the annotator's and reviewer's pages.

    Their widgets render through Django's Jinja2 form templates: the same HTML, in a third
    of the time the template engine takes, on a page annotators load all day (about 1.5 ms
    of a 20 ms task page here). One renderer for all, so Jinja2 compiles each template once.
    The admin keeps Django's renderer: its own widgets exist only as Django templates.
    """

    default_renderer = Jinja2()


class LimitedText(forms.CharField):
    """Text with a length limit that never cuts what was typed or pasted.

    No `maxlength` attribute: a browser silently truncates a paste to it, and the page
    then saved the truncated text as if nothing happened. The limit goes to the page as
    `data-limit` (static/js/app.js shows a counter near it) and the server says, once and
    plainly, how long the text is; the form comes back with the whole text in it.
    """

    def __init__(self, *, noun: str, limit: int, **kwargs) -> None:
        self.noun, self.limit = noun, limit
        super().__init__(**kwargs)

    def widget_attrs(self, widget) -> dict:
        return {**super().widget_attrs(widget), "data-limit": str(self.limit)}

    def validate(self, value: str) -> None:
        super().validate(value)
        if len(value) > self.limit:
            raise ValidationError(
                f"The {self.noun} is {len(value):,} characters long; the limit is "
                f"{self.limit:,}. Shorten it; your text is kept.",
                code="max_length",
            )


class JudgmentForm(PageForm):
    verdict = forms.ChoiceField(
        choices=models.Judgment.Verdict.choices,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a verdict: 1 = good, 2 = has problems."},
    )
    critique = LimitedText(
        noun="critique",
        limit=v.MAX_CRITIQUE_CHARS,
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Required when the response has problems: say what is wrong and why.",
    )
    spans = forms.CharField(required=False, widget=forms.HiddenInput)
    seconds_spent = forms.IntegerField(
        required=False, min_value=0, max_value=v.MAX_SECONDS, widget=forms.HiddenInput
    )

    def clean_spans(self) -> list:
        raw = self.cleaned_data["spans"].strip()
        if not raw:
            return []
        try:
            spans = json.loads(raw)
        except ValueError:
            raise ValidationError("The highlighted passages could not be read.") from None
        v.validate_spans(spans)
        return spans

    def clean(self) -> dict:
        cleaned = super().clean()
        # Said here as well as in Judgment.clean() so a plain POST gets every error at once;
        # not when the critique was refused for its length, which would contradict that.
        if (
            cleaned.get("verdict") == models.Judgment.Verdict.NEGATIVE
            and "critique" not in self.errors
            and not cleaned.get("critique")
        ):
            self.add_error(
                "critique", "Say what is wrong with the response: a critique is required."
            )
        return cleaned

    @classmethod
    def for_judgment(cls, judgment: models.Judgment, data=None) -> "JudgmentForm":
        initial = {
            "verdict": judgment.verdict,
            "critique": judgment.critique,
            "spans": json.dumps(judgment.spans),
            "seconds_spent": judgment.seconds_spent,
        }
        return cls(data, initial=initial)


class SkipForm(PageForm):
    reason = LimitedText(
        noun="reason",
        limit=v.MAX_REASON_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why you skip this response."},
    )


class ReviewForm(PageForm):
    """Accept, reject (a note is required) or edit and accept.

    For "edit" the page also posts a JudgmentForm's fields, checked by the view.
    """

    ACCEPT, REJECT, EDIT = "accept", "reject", "edit"

    action = forms.ChoiceField(
        choices=[(ACCEPT, "Accept"), (REJECT, "Reject"), (EDIT, "Edit and accept")],
        error_messages={
            "required": "Choose accept, reject or edit and accept.",
            "invalid_choice": "Choose accept, reject or edit and accept.",
        },
    )
    review_note = LimitedText(
        noun="note",
        limit=v.MAX_NOTE_CHARS,
        required=False,
        strip=True,
        label="Note to the annotator",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        if (
            cleaned.get("action") == self.REJECT
            and "review_note" not in self.errors
            and not cleaned.get("review_note")
        ):
            self.add_error("review_note", "Say why the judgment is rejected.")
        return cleaned


class ReviewFilterForm(PageForm):
    annotator = forms.ModelChoiceField(
        queryset=User.objects.none(),
        required=False,
        empty_label="All annotators",
        to_field_name="username",
    )
    round = forms.ModelChoiceField(
        queryset=models.Round.objects.all(), required=False, empty_label="All rounds"
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Everyone who has judged, so a filter stays valid after its last pending judgment.
        self.fields["annotator"].queryset = User.objects.filter(
            Exists(models.Judgment.objects.filter(annotator=OuterRef("pk")))
        ).order_by("username")
