"""Comparisons in the admin (the curators' UI): create, close, follow the votes."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from annotate import compare, compare_systems, models


class ComparisonAdminForm(forms.ModelForm):
    system_a = forms.ChoiceField(label="System A")
    system_b = forms.ChoiceField(label="System B")

    class Meta:
        model = models.Comparison
        fields = ("system_a", "system_b", "prompt_set", "sample_size", "overlap", "instructions")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        choices = compare_systems.system_choices()
        self.fields["system_a"].choices = choices
        self.fields["system_b"].choices = choices

    def clean(self) -> dict:
        data = super().clean()
        if self.instance.pk is None and not self.errors:
            # ModelForm copies the data onto the instance only after clean(); sample() needs it.
            for name in ComparisonAdminForm.Meta.fields:
                setattr(self.instance, name, data.get(name))
            try:
                compare.sample(self.instance)
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    self.add_error(field if field in self.fields else None, problems)
        return data


@admin.register(models.Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    form = ComparisonAdminForm
    list_display = (
        "id",
        "system_a",
        "system_b",
        "prompt_set",
        "sample_size",
        "overlap",
        "state",
        "created_by",
        "created",
    )
    list_filter = ("state",)
    search_fields = ("system_a", "system_b", "prompt_set", "instructions")
    list_select_related = ("created_by",)
    readonly_fields = ("state", "created_by", "created")
    actions = ["close_comparisons"]

    def get_readonly_fields(self, request, obj=None):
        # The sample and the systems define the pairs: fixed once the comparison exists.
        if obj is not None:
            return (
                *self.readonly_fields,
                "system_a",
                "system_b",
                "prompt_set",
                "sample_size",
                "overlap",
            )
        return self.readonly_fields

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            compare.refresh(obj)

    @admin.action(description="Close: take no more votes")
    def close_comparisons(self, request, queryset) -> None:
        for comparison in queryset:
            compare.close(comparison)
        messages.success(request, f"{queryset.count()} comparison(s) closed.")


@admin.register(models.Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("id", "pair", "evaluator", "choice", "a_on_left", "seconds_spent", "created")
    list_filter = ("choice", "pair__comparison")
    list_select_related = ("evaluator", "pair")
    raw_id_fields = ("pair", "evaluator")
    search_fields = ("evaluator__username", "reason")
    show_full_result_count = False

    # Votes are cast on the compare page or the API only: their pairs keep tallies
    # (compare.submit) that an edit here would leave wrong.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
