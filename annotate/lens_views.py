"""The critique lens on the pages: the annotator's preview of a draft critique, and the
stored lens of a judgment (review page, "My judgments").

Both enqueue a job on the lens worker and poll for it: htmx re-requests the pending
fragment every POLL_MS; without JavaScript the full page refreshes itself. Where no
worker serves the lens queue the page says so at once instead of waiting.

Who sees what: an annotator previews on responses handed to them or judged by them, and
reads only their own previews and judgments' lens (anyone else's is a 404); reviewers and
staff see all.
"""

import uuid

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tasks import TaskResultStatus
from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch

from annotate import lens, models, roles
from annotate import validators as v
from annotate.roles import annotator_required

PAGE = "annotate/lens_page.html"
PANEL = "annotate/lens_panel.html"
POLL_MS = 300
NO_WORKER = (
    "No lens worker is running, so the lens cannot be computed now. "
    "Start one with: manage.py db_worker --queue-name {queue}"
)


class PreviewForm(forms.Form):
    response = forms.IntegerField(min_value=1)
    critique = forms.CharField(
        strip=True,
        max_length=v.MAX_CRITIQUE_CHARS,
        error_messages={"required": "Write a critique first: the preview shows what it flags."},
    )


def _render(request: HttpRequest, partial: str, context: dict, status: int = 200):
    """The fragment for htmx, else the whole page around it. htmx swaps only 2xx answers,
    so a fragment always comes with 200; the page keeps its status."""
    panel = f"{PANEL}#{partial}"
    context = {**context, "panel_template": panel, "poll_ms": POLL_MS}
    page = render(
        request, panel if request.htmx else PAGE, context, status=200 if request.htmx else status
    )
    if context.get("poll_url") and not request.htmx:
        page["Refresh"] = "1"  # without JavaScript the page polls by reloading itself
    return page


def _may_preview(user, response_id: int) -> bool:
    if roles.is_reviewer(user):
        return models.Response.objects.filter(pk=response_id).exists()
    return (
        models.Reservation.objects.filter(response_id=response_id, annotator=user).exists()
        or models.Judgment.objects.filter(response_id=response_id, annotator=user).exists()
    )


@require_POST
@annotator_required
def preview_lens(request: HttpRequest) -> HttpResponse:
    form = PreviewForm(request.POST)
    if not form.is_valid():
        return _render(request, "preview-error", {"errors": form.errors.values()})
    response_id = form.cleaned_data["response"]
    if not _may_preview(request.user, response_id):
        raise Http404("No such response.")
    if not lens.worker_alive():
        message = NO_WORKER.format(queue=settings.LENS_QUEUE)
        return _render(request, "preview-error", {"errors": [[message]]}, status=503)
    response = models.Response(pk=response_id)
    job = lens.enqueue_preview(response, form.cleaned_data["critique"], request.user)
    url = reverse("annotate:lens-preview-result", args=[job])
    if not request.htmx:
        return redirect(url)
    return _render(request, "pending", {"poll_url": url})


def _job(job_id: uuid.UUID, task, user):
    """The job, if it is this task's and the user may read it; else a 404."""
    try:
        job = task.get_result(str(job_id))
    except (TaskResultDoesNotExist, TaskResultMismatch):
        raise Http404("No such lens job.") from None
    # A preview's arguments: (response_id, critique, user_id), see lens.enqueue_preview.
    if task is lens.preview and job.args[2] != user.pk and not roles.is_reviewer(user):
        raise Http404("No such lens job.")
    return job


def _failed(job) -> str:
    error = job.errors[-1].traceback.strip().splitlines()[-1] if job.errors else "unknown error"
    return f"The lens could not be computed: {error}"


@require_GET
@annotator_required
def show_preview(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    job = _job(job_id, lens.preview, request.user)
    if job.status == TaskResultStatus.FAILED:
        return _render(request, "preview-error", {"errors": [[_failed(job)]]})
    if job.status != TaskResultStatus.SUCCESSFUL:
        return _render(request, "pending", {"poll_url": request.path, "waiting": _waiting(job)})
    response = get_object_or_404(models.Response, pk=job.args[0])
    context = {"result": job.return_value, "text": response.text, "preview": True}
    return _render(request, "preview-result", context)


def _waiting(job) -> str:
    """After a few seconds, say why it takes long."""
    if job.status == TaskResultStatus.READY and job.enqueued_at:
        seconds = (timezone.now() - job.enqueued_at).total_seconds()
        if seconds > 5:
            if not lens.worker_alive():
                return NO_WORKER.format(queue=settings.LENS_QUEUE)
            return f"Waiting for the lens worker ({seconds:.0f} s): it is busy with other work."
    if job.status == TaskResultStatus.RUNNING and job.started_at:
        seconds = (timezone.now() - job.started_at).total_seconds()
        if seconds > 5:
            return (
                f"Still computing ({seconds:.0f} s). The first lens after the worker starts "
                "also loads the model, which takes a while."
            )
    return ""


# A judgment's stored lens ----------------------------------------------------------------


def _judgment(request: HttpRequest, pk: int) -> models.Judgment:
    judgments = models.Judgment.objects.select_related("response")
    if not roles.is_reviewer(request.user):
        judgments = judgments.filter(annotator=request.user)
    return get_object_or_404(judgments, pk=pk)


@require_http_methods(["GET", "POST"])
@annotator_required
def judgment_lens(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the stored lens (or, with ?job=, the progress of computing it). POST: compute
    it now on the worker."""
    judgment = _judgment(request, pk)
    context = {"judgment": judgment}
    if request.method == "POST":
        if not judgment.critique:
            return _render(request, "judgment-lens", context)
        if not lens.worker_alive():
            message = NO_WORKER.format(queue=settings.LENS_QUEUE)
            return _render(request, "judgment-lens", {**context, "error": message}, status=503)
        [job] = lens.enqueue_compute([judgment.pk], priority=lens.PREVIEW_PRIORITY)
        url = reverse("annotate:judgment-lens", args=[pk]) + f"?job={job}"
        if not request.htmx:
            return redirect(url)
        return _render(request, "judgment-lens", {**context, "poll_url": url})
    job_id = request.GET.get("job")
    if job_id:
        try:
            job = _job(uuid.UUID(job_id), lens.compute, request.user)
        except ValueError:
            raise Http404("No such lens job.") from None
        if job.status == TaskResultStatus.FAILED:
            return _render(request, "judgment-lens", {**context, "error": _failed(job)})
        if job.status != TaskResultStatus.SUCCESSFUL:
            context.update(poll_url=request.get_full_path(), waiting=_waiting(job))
    return _render(request, "judgment-lens", context)
