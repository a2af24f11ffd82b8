"""Forms of the comparison pages: a vote, a skip, and staff's new comparison."""

from django import forms

from annotate import compare_systems, models
from annotate import validators as v
from annotate.forms import PageForm


class VoteForm(PageForm):
    choice = forms.ChoiceField(
        choices=models.Vote.Choice.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose: 1 left is better, 2 right is better, 3 tie, 4 both are bad."
        },
    )
    reason = forms.CharField(
        required=False,
        strip=True,
        max_length=v.MAX_REASON_CHARS,
        label="Reason (optional)",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    seconds_spent = forms.IntegerField(
        required=False, min_value=0, max_value=v.MAX_SECONDS, widget=forms.HiddenInput
    )


class PairSkipForm(PageForm):
    reason = forms.CharField(
        required=False,
        strip=True,
        max_length=v.MAX_REASON_CHARS,
        label="Why do you skip it? (optional) It won't come back to you.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ComparisonForm(PageForm):
    system_a = forms.ChoiceField(label="System A")
    system_b = forms.ChoiceField(label="System B")
    prompt_set = forms.CharField(
        initial="all",
        max_length=300,
        help_text="all, source=NAME or round=N (the prompts that round answered).",
    )
    sample_size = forms.IntegerField(min_value=1, initial=100, help_text="Prompts to compare.")
    overlap = forms.IntegerField(
        min_value=1, max_value=20, initial=1, help_text="How many people see each pair."
    )
    instructions = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to evaluators above each pair.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = compare_systems.system_choices()
        self.fields["system_a"].choices = choices
        self.fields["system_b"].choices = choices

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("system_a") and cleaned.get("system_a") == cleaned.get("system_b"):
            self.add_error("system_b", "Choose two different systems: A and B are the same.")
        return cleaned
