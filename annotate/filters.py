"""django-filter FilterSets for the API's list endpoints."""

import django_filters

from annotate import models


class JudgmentFilter(django_filters.FilterSet):
    verdict = django_filters.ChoiceFilter(choices=models.Judgment.Verdict.choices)
    review_state = django_filters.ChoiceFilter(choices=models.Judgment.ReviewState.choices)
    round = django_filters.NumberFilter(field_name="response__round")
    annotator = django_filters.CharFilter(
        field_name="annotator__username", help_text="The annotator's username."
    )
    response = django_filters.NumberFilter(field_name="response")

    class Meta:
        model = models.Judgment
        fields = ["verdict", "review_state", "round", "annotator", "response"]
