"""The annotator's and reviewer's pages.

Every page works with plain form posts and redirects; with htmx (request.htmx) the same
view renders just the page's inline partial, "page.html#name", for the swap.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate import forms, models, queue, stats, validators
from annotate.roles import annotator_required, reviewer_required

JUDGMENTS_PER_PAGE = 20
UPCOMING_REVIEWS = 10


def _template(request: HttpRequest, page: str, partial: str) -> str:
    return f"{page}#{partial}" if request.htmx else page


# The annotator's task -----------------------------------------------------------------


def _render_task(
    request: HttpRequest,
    response: models.Response | None,
    *,
    form: forms.JudgmentForm | None = None,
    skip_form: forms.SkipForm | None = None,
    done: int | None = None,
    notice: str = "",
) -> HttpResponse:
    context = {
        "response": response,
        "form": form or forms.JudgmentForm(),
        "skip_form": skip_form or forms.SkipForm(),
        "progress": queue.progress(request.user),
        # The response just submitted or skipped: the page's script drops its draft.
        "done": done,
        "notice": notice,
    }
    return render(request, _template(request, "annotate/task.html", "task"), context)


def _next_response(request: HttpRequest) -> models.Response | None:
    reservation = queue.next_for(request.user)
    return reservation.response if reservation else None


def _task_response(pk: int) -> models.Response:
    return get_object_or_404(models.Response.objects.select_related("prompt", "round"), pk=pk)


def _after_task(request: HttpRequest, done: int, notice: str) -> HttpResponse:
    if request.htmx:
        return _render_task(request, _next_response(request), done=done, notice=notice)
    messages.success(request, notice)
    return redirect("annotate:home")


def _seconds_since_reserved(annotator, response: models.Response) -> int | None:
    """Fallback when the page's timer sent nothing (no JavaScript): wall time since the
    task was handed out. One query."""
    reservation = models.Reservation.objects.filter(annotator=annotator, response=response).first()
    if reservation is None:
        return None
    seconds = int((timezone.now() - reservation.created).total_seconds())
    return max(0, min(seconds, validators.MAX_SECONDS))


@require_GET
@annotator_required
def show_task(request: HttpRequest) -> HttpResponse:
    return _render_task(request, _next_response(request))


@require_POST
@annotator_required
def submit_judgment(request: HttpRequest, pk: int) -> HttpResponse:
    form = forms.JudgmentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        # queue.submit loads and locks the row itself; loading it here as well would cost
        # a query on every submit, so the page is rendered from a fresh copy on error only.
        response = models.Response(pk=pk)
        seconds = data["seconds_spent"]
        if seconds is None:
            seconds = _seconds_since_reserved(request.user, response)
        try:
            queue.submit(
                request.user,
                response,
                verdict=data["verdict"],
                critique=data["critique"],
                spans=data["spans"],
                seconds_spent=seconds,
            )
        except models.Response.DoesNotExist:
            raise Http404("No such response.") from None
        except ValidationError as error:
            forms.add_model_errors(form, error)
        except queue.QueueError as error:
            form.add_error(None, str(error))
        else:
            return _after_task(request, pk, "Judgment saved.")
    # Status 200 so htmx swaps the form back in with the text kept and the errors shown.
    return _render_task(request, _task_response(pk), form=form)


@require_POST
@annotator_required
def skip_response(request: HttpRequest, pk: int) -> HttpResponse:
    response = _task_response(pk)
    skip_form = forms.SkipForm(request.POST)
    if skip_form.is_valid():
        try:
            queue.skip(request.user, response, skip_form.cleaned_data["reason"])
        except ValidationError as error:
            skip_form.add_error("reason", error.messages)
        else:
            return _after_task(request, response.pk, "Skipped; it won't come back to you.")
    return _render_task(request, response, skip_form=skip_form)


# My judgments --------------------------------------------------------------------------


@require_GET
@annotator_required
def list_judgments(request: HttpRequest) -> HttpResponse:
    judgments = (
        models.Judgment.objects.filter(annotator=request.user)
        .select_related("response__prompt", "response__round", "reviewer")
        .order_by("-created", "-id")
    )
    state = request.GET.get("state", "")
    if state in models.Judgment.ReviewState.values:
        judgments = judgments.filter(review_state=state)
    page = Paginator(judgments, JUDGMENTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page": page, "state": state, "states": models.Judgment.ReviewState.choices}
    return render(request, _template(request, "annotate/judgments.html", "judgment-list"), context)


def _own_judgment(request: HttpRequest, pk: int) -> models.Judgment:
    """404 unless it is the requester's judgment: others' judgments don't exist for them."""
    return get_object_or_404(
        models.Judgment.objects.select_related("response__prompt", "response__round", "reviewer"),
        pk=pk,
        annotator=request.user,
    )


def _refuse_reviewed(judgment: models.Judgment) -> None:
    if judgment.is_reviewed:
        raise PermissionDenied(
            f"This judgment was {judgment.get_review_state_display().lower()} by a reviewer "
            "and can no longer be edited."
        )


def _save_edit(pk: int, data: dict) -> models.Judgment:
    with transaction.atomic():
        # Locked so a review that lands meanwhile is not overwritten by the edit.
        judgment = models.Judgment.objects.select_for_update().get(pk=pk)
        _refuse_reviewed(judgment)
        judgment.verdict = data["verdict"]
        judgment.critique = data["critique"]
        judgment.spans = data["spans"]
        judgment.full_clean()
        judgment.save(update_fields=["verdict", "critique", "spans", "updated"])
    return judgment


@require_http_methods(["GET", "POST"])
@annotator_required
def edit_judgment(request: HttpRequest, pk: int) -> HttpResponse:
    judgment = _own_judgment(request, pk)
    if request.method == "POST":
        _refuse_reviewed(judgment)
        form = forms.JudgmentForm(request.POST)
        if form.is_valid():
            try:
                _save_edit(judgment.pk, form.cleaned_data)
            except ValidationError as error:
                forms.add_model_errors(form, error)
            else:
                messages.success(request, "Judgment updated.")
                return redirect("annotate:judgment-list")
    else:
        form = forms.JudgmentForm.for_judgment(judgment)
    context = {"judgment": judgment, "response": judgment.response, "form": form}
    return render(request, "annotate/judgment_edit.html", context)


@require_GET
@annotator_required
def show_guidelines(request: HttpRequest) -> HttpResponse:
    guideline = models.Guideline.objects.order_by("-updated", "-id").first()
    return render(request, "annotate/guidelines.html", {"guideline": guideline})


# The reviewer's page -------------------------------------------------------------------


def _pending(reviewer, filters: forms.ReviewFilterForm) -> QuerySet:
    judgments = (
        models.Judgment.objects.filter(review_state=models.Judgment.ReviewState.PENDING)
        .exclude(annotator=reviewer)
        .select_related("annotator", "response__prompt", "response__round")
        .order_by("created", "id")
    )
    if filters.is_valid():
        if filters.cleaned_data["annotator"]:
            judgments = judgments.filter(annotator=filters.cleaned_data["annotator"])
        if filters.cleaned_data["round"]:
            judgments = judgments.filter(response__round=filters.cleaned_data["round"])
    return judgments


def _filter_query(filters: forms.ReviewFilterForm) -> str:
    if not filters.is_valid():
        return ""
    data = filters.cleaned_data
    query = {
        "annotator": data["annotator"].username if data["annotator"] else "",
        "round": data["round"].pk if data["round"] else "",
    }
    return urlencode({k: v for k, v in query.items() if v})


def _render_review(
    request: HttpRequest,
    judgment: models.Judgment | None,
    filters: forms.ReviewFilterForm,
    *,
    form: forms.ReviewForm | None = None,
    edit_form: forms.JudgmentForm | None = None,
    notice: str = "",
    done: int | None = None,
) -> HttpResponse:
    pending = _pending(request.user, filters)
    others = []
    if judgment is not None:
        others = (
            judgment.response.judgments.exclude(pk=judgment.pk)
            .select_related("annotator")
            .order_by("created")
        )
        pending = pending.exclude(pk=judgment.pk)
    context = {
        "judgment": judgment,
        "others": others,
        "form": form or forms.ReviewForm(),
        "edit_form": edit_form or (judgment and forms.JudgmentForm.for_judgment(judgment)),
        "filters": filters,
        "filter_query": _filter_query(filters),
        "upcoming": pending[:UPCOMING_REVIEWS],
        "pending_count": pending.count() + (judgment is not None),
        "notice": notice,
        # The judgment just reviewed: tells the page (and its tests) the swap is a new one.
        "done": done,
    }
    return render(request, _template(request, "annotate/review.html", "review"), context)


@require_GET
@reviewer_required
def show_review_queue(request: HttpRequest) -> HttpResponse:
    filters = forms.ReviewFilterForm(request.GET)
    return _render_review(request, _pending(request.user, filters).first(), filters)


def _apply_review(pk: int, reviewer, form: forms.ReviewForm, edits: dict | None) -> str:
    """Accept, reject or edit-and-accept under a row lock; returns what happened."""
    action = form.cleaned_data["action"]
    note = form.cleaned_data["review_note"]
    with transaction.atomic():
        judgment = models.Judgment.objects.select_for_update().get(pk=pk)
        if judgment.is_reviewed:
            raise ValidationError(
                f"Another reviewer has already {judgment.get_review_state_display().lower()} "
                "this judgment."
            )
        if action == form.REJECT:
            judgment.reject(reviewer, note)
            return "Rejected."
        if action == form.EDIT:
            judgment.verdict = edits["verdict"]
            judgment.critique = edits["critique"]
            judgment.spans = edits["spans"]
            judgment.full_clean()
            judgment.save(update_fields=["verdict", "critique", "spans", "updated"])
            note = note or "Edited by the reviewer before accepting."
        judgment.accept(reviewer, note)
    return "Edited and accepted." if action == form.EDIT else "Accepted."


@require_http_methods(["GET", "POST"])
@reviewer_required
def review_judgment(request: HttpRequest, pk: int) -> HttpResponse:
    judgment = get_object_or_404(
        models.Judgment.objects.select_related("annotator", "response__prompt", "response__round"),
        pk=pk,
    )
    if judgment.annotator_id == request.user.pk:
        raise PermissionDenied("Your own judgments are reviewed by someone else.")
    filters = forms.ReviewFilterForm(request.GET if request.method == "GET" else request.POST)
    if request.method == "GET":
        return _render_review(request, judgment, filters)

    form = forms.ReviewForm(request.POST)
    edit_form = forms.JudgmentForm(request.POST)
    if form.is_valid():
        editing = form.cleaned_data["action"] == form.EDIT
        if not editing or edit_form.is_valid():
            try:
                outcome = _apply_review(
                    judgment.pk, request.user, form, edit_form.cleaned_data if editing else None
                )
            except ValidationError as error:
                forms.add_model_errors(edit_form if editing else form, error)
            else:
                if request.htmx:
                    next_judgment = _pending(request.user, filters).first()
                    return _render_review(
                        request, next_judgment, filters, notice=outcome, done=judgment.pk
                    )
                messages.success(request, outcome)
                query = _filter_query(filters)
                return redirect(reverse("annotate:review-queue") + (f"?{query}" if query else ""))
        if not editing:
            edit_form = None  # only the edit fields' errors matter when editing
    return _render_review(request, judgment, filters, form=form, edit_form=edit_form)


@require_GET
@reviewer_required
def show_agreement(request: HttpRequest) -> HttpResponse:
    context = {"rounds": stats.round_agreement(), "annotators": stats.annotator_stats()}
    return render(request, "annotate/agreement.html", context)
