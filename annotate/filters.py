"""django-filter FilterSets for the API's list endpoints."""

import django_filters
from django import forms

from annotate import models

# Bounds keep a huge number a 400 instead of an OverflowError in the database driver.
MAX_ID = 2**63 - 1


class IntegerFilter(django_filters.NumberFilter):
    # NumberFilter parses to Decimal, so "1.5" would be a valid id.
    field_class = forms.IntegerField


class JudgmentFilter(django_filters.FilterSet):
    verdict = django_filters.ChoiceFilter(choices=models.Judgment.Verdict.choices)
    review_state = django_filters.ChoiceFilter(choices=models.Judgment.ReviewState.choices)
    round = IntegerFilter(field_name="response__round", min_value=0, max_value=MAX_ID)
    annotator = django_filters.CharFilter(
        field_name="annotator__username", help_text="The annotator's username."
    )
    response = IntegerFilter(field_name="response", min_value=1, max_value=MAX_ID)

    class Meta:
        model = models.Judgment
        fields = ["verdict", "review_state", "round", "annotator", "response"]
