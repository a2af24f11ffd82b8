"""The curators' UI: search, filter, bulk review, retire responses, export.

Lists are built to open fast at 100k rows: list_select_related instead of a query per row,
raw_id_fields instead of <select>s of every user or prompt, and show_full_result_count
off so a filtered list doesn't count the whole table a second time.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import Count, OuterRef
from django.db.models.functions import Substr
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, StreamingHttpResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator

from annotate import admin_curation, exports, lens, models
from annotate import validators as v

admin.site.site_header = "Critique Loop"
admin.site.site_title = "Critique Loop"
admin.site.index_title = "Curation"


RESPONSE_PREVIEW_CHARS = 140


def excerpt(text: str, chars: int = 80) -> str:
    return Truncator(text.replace("\n", " ")).chars(chars)


def recount_judgments(response_ids) -> None:
    """Set Response.judgment_count from the judgments themselves, for the responses given.

    The admin can add, move and delete judgments in ways that skip the code that keeps the
    count (queue.submit, Judgment.delete), so it recounts instead of adjusting.
    """
    ids = [pk for pk in set(response_ids) if pk is not None]
    counts = models.count_subquery(
        models.Judgment.objects.filter(response=OuterRef("pk")), "response"
    )
    for start in range(0, len(ids), 1000):
        models.Response.objects.filter(pk__in=ids[start : start + 1000]).update(
            judgment_count=counts
        )


class JudgmentForm(forms.ModelForm):
    # Highlights edited as highlights (annotate/admin_curation.py), stored as the same JSON.
    spans = admin_curation.SpansField(required=False, label="Highlights")

    class Meta:
        model = models.Judgment
        fields = (
            "response",
            "annotator",
            "verdict",
            "critique",
            "spans",
            "review_state",
            "reviewer",
            "review_note",
            "seconds_spent",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["spans"].widget.response_text = self.instance.response.text

    def clean(self) -> dict:
        data = super().clean()
        rejected = data.get("review_state") == models.Judgment.ReviewState.REJECTED
        if rejected and not (data.get("review_note") or "").strip():
            self.add_error("review_note", "Say why the judgment is rejected.")
        return data


class RejectForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        max_length=v.MAX_NOTE_CHARS,
        help_text="Why these judgments are rejected; their annotators see it.",
    )


class LabelledDeleteFormSet(BaseInlineFormSet):
    """Django's tabular inline gives each row's delete box no label of its own (only the
    column header), which screen readers cannot tie to it."""

    def add_fields(self, form, index) -> None:
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].widget.attrs["aria-label"] = "Delete this judgment"


class JudgmentInline(admin.TabularInline):
    """The response's judgments, to read; each is changed on its own page (the link),
    where reviews are recorded with who made them."""

    model = models.Judgment
    fk_name = "response"
    extra = 0
    fields = ("annotator", "verdict", "critique_preview", "review_state", "reviewer", "created")
    readonly_fields = fields
    show_change_link = True
    classes = ("judgments-inline",)
    formset = LabelledDeleteFormSet

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="critique")
    def critique_preview(self, obj: models.Judgment) -> str:
        return admin_curation.preview_cell(obj.critique, 200)


class ResponseInline(admin.TabularInline):
    model = models.Response
    extra = 0
    fields = ("text_excerpt", "generator", "round", "overlap", "judgment_count", "retired")
    readonly_fields = ("text_excerpt", "judgment_count")
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="text")
    def text_excerpt(self, obj: models.Response) -> str:
        return excerpt(obj.text)


@admin.register(models.Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ("id", "instruction_excerpt", "source", "external_id", "created")
    list_filter = ("source", "created")
    search_fields = ("instruction", "input", "external_id")
    show_full_result_count = False
    ordering = ("-id",)
    inlines = [ResponseInline]
    fieldsets = (
        (None, {"fields": ("instruction", "input")}),
        ("Origin", {"fields": ("source", "external_id")}),
        ("Advanced options", {"classes": ("collapse",), "fields": ("metadata", "created")}),
    )

    @admin.display(description="instruction")
    def instruction_excerpt(self, obj: models.Prompt) -> str:
        return excerpt(obj.instruction)


@admin.register(models.Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "prompt_excerpt",
        "text_excerpt",
        "generator",
        "round",
        "overlap",
        "judgment_count",
        "retired",
        "created",
    )
    list_filter = ("retired", "round", "generator", "created")
    search_fields = ("prompt__instruction", "text")
    list_select_related = ("prompt", "round")
    raw_id_fields = ("prompt",)
    readonly_fields = ("judgment_count", "created")
    show_full_result_count = False
    ordering = ("-id",)
    inlines = [JudgmentInline]
    actions = ["retire", "unretire"]

    class Media:
        css = {"all": ["css/admin_curation.css"]}

    @admin.display(description="prompt")
    def prompt_excerpt(self, obj: models.Response) -> str:
        return excerpt(obj.prompt.instruction, 60)

    @admin.display(description="text")
    def text_excerpt(self, obj: models.Response) -> str:
        return excerpt(obj.text)

    def save_formset(self, request, form, formset, change) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is models.Judgment:
            recount_judgments([form.instance.pk])

    @admin.action(description="Retire selected responses (take them out of the queue)")
    def retire(self, request: HttpRequest, queryset) -> None:
        changed = queryset.filter(retired=False).update(retired=True)
        self.message_user(request, f"Retired {changed} responses.", messages.SUCCESS)

    @admin.action(description="Put selected responses back in the queue")
    def unretire(self, request: HttpRequest, queryset) -> None:
        changed = queryset.filter(retired=True).update(retired=False)
        self.message_user(request, f"Put {changed} responses back in the queue.", messages.SUCCESS)


@admin.register(models.Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    form = JudgmentForm
    list_display = (
        "id",
        "verdict",
        "critique_excerpt",
        "response_link",
        "instruction_excerpt",
        "round",
        "annotator",
        "review_state",
        "reviewer",
        "created",
    )
    list_filter = (
        "verdict",
        "review_state",
        "response__round",
        ("annotator", admin.RelatedOnlyFieldListFilter),
        "response__generator",
        "created",
    )
    search_fields = ("response__prompt__instruction", "response__text", "critique")
    list_select_related = ("response__prompt", "annotator", "reviewer")
    raw_id_fields = ("response", "annotator", "reviewer")
    readonly_fields = (
        "reviewed_at",
        "created",
        "updated",
        "response_rendered",
        "others",
        "lens_marking",
    )
    show_full_result_count = False
    ordering = ("-id",)
    actions = ["accept_selected", "reject_selected", "export_selected", "compute_lens"]
    fieldsets = (
        (None, {"fields": ("response", "response_rendered", "annotator", "verdict", "critique")}),
        ("Highlights", {"fields": ("spans",)}),
        ("What training will learn", {"fields": ("lens_marking",)}),
        ("Review", {"fields": ("review_state", "reviewer", "review_note", "reviewed_at")}),
        ("Other judgments of this response", {"fields": ("others",)}),
        (
            "Advanced options",
            {"classes": ("collapse",), "fields": ("seconds_spent", "created", "updated")},
        ),
    )

    def get_queryset(self, request):
        # The list shows none of these; leaving them out shrinks what a filtered list sorts
        # (SQLite sorts whole rows) and sends. The change page loads them when it needs them.
        return (
            super()
            .get_queryset(request)
            .defer(
                "spans", "response__text", "response__prompt__input", "response__prompt__metadata"
            )
            # The list's preview needs only the response's first characters.
            .annotate(response_start=Substr("response__text", 1, RESPONSE_PREVIEW_CHARS + 40))
        )

    class Media:
        css = {"all": ["css/admin_curation.css", "css/lens.css"]}
        js = ["js/admin_spans.js"]

    @admin.display(description="lens")
    def lens_marking(self, obj: models.Judgment) -> str:
        """The response with the tokens the critique flags marked (annotate/lens.py)."""
        if obj.pk is None:
            return "—"
        return render_to_string(
            "annotate/lens_panel.html#judgment-lens", {"judgment": obj, "admin": True}
        )

    @admin.action(description="Compute the lens of selected judgments", permissions=["change"])
    def compute_lens(self, request: HttpRequest, queryset) -> None:
        ids = list(lens.needing_lens(queryset.select_related(None)).values_list("pk", flat=True))
        jobs = lens.enqueue_compute(ids)
        message = (
            f"Queued the lens of {len(ids)} negative judgments ({len(jobs)} jobs); "
            "those with a lens of their current critique were left as they are."
        )
        if ids and not lens.worker_alive():
            message += " No worker serves the lens queue now: start one with manage.py db_worker."
        self.message_user(request, message, messages.SUCCESS)

    @admin.display(description="critique")
    def critique_excerpt(self, obj: models.Judgment) -> str:
        return admin_curation.preview_cell(obj.critique, 160)

    @admin.display(description="instruction")
    def instruction_excerpt(self, obj: models.Judgment) -> str:
        return admin_curation.preview_cell(obj.response.prompt.instruction, 80)

    @admin.display(description="response", ordering="response")
    def response_link(self, obj: models.Judgment) -> str:
        url = reverse("admin:annotate_response_change", args=[obj.response_id])
        start = getattr(obj, "response_start", None)
        if start is None:
            start = obj.response.text
        return format_html(
            '<a href="{}">#{}</a> {}',
            url,
            obj.response_id,
            admin_curation.preview_cell(start, RESPONSE_PREVIEW_CHARS),
        )

    @admin.display(description="response as the app shows it")
    def response_rendered(self, obj: models.Judgment) -> str:
        return admin_curation.rendered_response(obj)

    @admin.display(description="judgments")
    def others(self, obj: models.Judgment) -> str:
        return admin_curation.other_judgments(obj)

    @admin.display(description="round", ordering="response__round")
    def round(self, obj: models.Judgment) -> int | None:
        return obj.response.round_id

    def save_model(self, request, obj: models.Judgment, form, change: bool) -> None:
        if "review_state" in form.changed_data:
            # A review made in the form is recorded like one made with accept()/reject().
            reviewed = obj.review_state != models.Judgment.ReviewState.PENDING
            if "reviewer" not in form.changed_data:
                obj.reviewer = request.user if reviewed else None
            obj.reviewed_at = timezone.now() if reviewed else None
        moved_from = form.initial.get("response") if change else None
        super().save_model(request, obj, form, change)
        recount_judgments([obj.response_id, moved_from])

    def delete_queryset(self, request, queryset) -> None:
        # A bulk delete skips Judgment.delete(), which keeps the responses' counts.
        with transaction.atomic():
            response_ids = list(queryset.values_list("response_id", flat=True))
            super().delete_queryset(request, queryset)
            recount_judgments(response_ids)

    @admin.action(description="Accept selected judgments", permissions=["change"])
    def accept_selected(self, request: HttpRequest, queryset) -> None:
        with transaction.atomic():
            judgments = list(queryset.select_related(None))
            for judgment in judgments:
                judgment.accept(request.user)
        self.message_user(request, f"Accepted {len(judgments)} judgments.", messages.SUCCESS)

    @admin.action(description="Reject selected judgments…", permissions=["change"])
    def reject_selected(self, request: HttpRequest, queryset):
        """Asks for the note on an intermediate page, then rejects with it."""
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            note = form.cleaned_data["note"]
            with transaction.atomic():
                judgments = list(queryset.select_related(None))
                for judgment in judgments:
                    judgment.reject(request.user, note)
            self.message_user(request, f"Rejected {len(judgments)} judgments.", messages.SUCCESS)
            return None
        select_across = request.POST.get("select_across") == "1"
        context = {
            **self.admin_site.each_context(request),
            "title": "Reject judgments",
            "opts": self.model._meta,
            "form": form,
            "count": queryset.count(),
            "shown": queryset[:20],
            # Across all pages the changelist re-runs its filters; otherwise pass the pks on.
            "select_across": select_across,
            "selected": [] if select_across else queryset.values_list("pk", flat=True),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/annotate/judgment/reject_selected.html", context)

    @admin.action(description="Export selected judgments as JSONL")
    def export_selected(self, request: HttpRequest, queryset) -> StreamingHttpResponse:
        lines = exports.iter_jsonl(queryset.select_related(None).order_by("pk"))
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson; charset=utf-8")
        name = f"judgments-{timezone.now():%Y%m%d-%H%M%S}.jsonl"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


@admin.register(models.Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ("number", "base_model", "adapter", "training_run", "responses", "created")
    search_fields = ("base_model", "adapter", "notes")
    list_select_related = ("training_run",)
    raw_id_fields = ("training_run",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(response_total=Count("responses"))

    @admin.display(description="responses", ordering="response_total")
    def responses(self, obj: models.Round) -> int:
        return obj.response_total


class JobAdmin(admin.ModelAdmin):
    """Training and generation jobs: a record of what happened, written by the jobs
    (annotate/jobs.py); curators cancel or resume them here or on the run's page."""

    actions = ["cancel_selected", "resume_selected"]
    job_fields = (
        "status",
        "worker_host",
        "heartbeat_at",
        "cancel_requested",
        "task_id",
        "error",
        "log_tail",
        "created",
        "started_at",
        "finished_at",
    )

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset) -> None:
        from annotate import jobs

        done = sum(jobs.request_cancel(job) for job in queryset)
        self.message_user(request, f"Asked {done} jobs to cancel.")

    @admin.action(description="Resume selected jobs", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset) -> None:
        from annotate import jobs

        queued = 0
        for job in queryset:
            try:
                jobs.enqueue_resume(job)
                queued += 1
            except jobs.JobError as error:
                self.message_user(request, str(error), messages.WARNING)
        self.message_user(request, f"Queued {queued} jobs again.")


@admin.register(models.TrainingRun)
class TrainingRunAdmin(JobAdmin):
    list_display = (
        "id",
        "status",
        "base_model",
        "positive_count",
        "negative_count",
        "output_dir",
        "worker_host",
        "created_by",
        "created",
        "finished_at",
    )
    list_filter = ("status", "created")
    search_fields = ("base_model", "output_dir", "error")
    list_select_related = ("created_by",)
    raw_id_fields = ("created_by",)
    # A run is a record of what happened; only train_cut and the jobs write it.
    readonly_fields = (
        *JobAdmin.job_fields,
        "snapshot_path",
        "snapshot_sha256",
        "positive_count",
        "negative_count",
        "output_dir",
        "total_steps",
        "plan",
        "series",
    )
    fieldsets = (
        (None, {"fields": ("status", "base_model", "output_dir", "created_by", "error")}),
        (
            "Job",
            {
                "fields": (
                    "worker_host",
                    "heartbeat_at",
                    "total_steps",
                    "cancel_requested",
                    "task_id",
                    "log_tail",
                )
            },
        ),
        (
            "Data",
            {
                "fields": (
                    "snapshot_path",
                    "snapshot_sha256",
                    "positive_count",
                    "negative_count",
                    "filters",
                )
            },
        ),
        (
            "Advanced options",
            {
                "classes": ("collapse",),
                "fields": (
                    "config",
                    "metrics",
                    "plan",
                    "series",
                    "created",
                    "started_at",
                    "finished_at",
                ),
            },
        ),
    )


@admin.register(models.GenerationRun)
class GenerationRunAdmin(JobAdmin):
    list_display = (
        "id",
        "status",
        "round_number",
        "adapter",
        "prompts",
        "done_count",
        "prompt_count",
        "created_count",
        "worker_host",
        "created",
    )
    list_filter = ("status", "created")
    search_fields = ("adapter", "base_model", "error")
    list_select_related = ("created_by",)
    raw_id_fields = ("created_by", "training_run")
    readonly_fields = (
        *JobAdmin.job_fields,
        "prompt_count",
        "done_count",
        "created_count",
        "empty_count",
    )


@admin.register(models.Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ("host", "pid", "queues", "started_at", "last_seen")
    readonly_fields = ("worker_id", "host", "pid", "queues", "started_at", "last_seen")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(models.Guideline)
class GuidelineAdmin(admin.ModelAdmin):
    list_display = ("title", "updated")


@admin.register(models.Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ("id", "response", "annotator", "created", "expires", "live")
    list_filter = ("expires",)
    list_select_related = ("response", "annotator")
    raw_id_fields = ("response", "annotator")
    show_full_result_count = False

    @admin.display(description="live", boolean=True)
    def live(self, obj: models.Reservation) -> bool:
        return obj.is_live


@admin.register(models.Skip)
class SkipAdmin(admin.ModelAdmin):
    list_display = ("id", "response", "annotator", "reason_excerpt", "created")
    list_filter = ("created",)
    search_fields = ("reason",)
    list_select_related = ("response", "annotator")
    raw_id_fields = ("response", "annotator")
    show_full_result_count = False

    @admin.display(description="reason")
    def reason_excerpt(self, obj: models.Skip) -> str:
        return excerpt(obj.reason)


# Comparisons register their own admin (annotate/compare_admin.py).
from annotate import compare_admin  # noqa: E402, F401
