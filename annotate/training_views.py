"""The training pages (staff): the runs, a new run with its preview, a run's live page.

Every page works with plain form posts and redirects; htmx swaps the page's partials
("page.html#name") and static/js/training.js draws the charts from the series endpoint.
Long work never runs here: the views record rows and enqueue jobs (annotate.jobs).
"""

from functools import wraps
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_tasks.exceptions import TaskException

from annotate import jobs, models, training_forms, training_preview, training_runs, workers


def staff_required(view):
    """login_required, then 403 for anyone but staff."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("Only staff may use the training pages.")
        return view(request, *args, **kwargs)

    return wrapper


def _template(request: HttpRequest, page: str, partial: str) -> str:
    return f"{page}#{partial}" if request.htmx else page


@require_GET
@staff_required
def list_runs(request: HttpRequest) -> HttpResponse:
    jobs.sweep_stale()
    runs = models.TrainingRun.objects.select_related("created_by").prefetch_related("rounds")
    rows = training_runs.rows(runs)
    waiting = any(row.run.status == models.TrainingRun.Status.QUEUED for row in rows)
    context = {"rows": rows, "no_worker": waiting and not workers.alive("gpu")}
    return render(request, "annotate/training_list.html", context)


@require_http_methods(["GET", "POST"])
@staff_required
def new_run(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        form = training_forms.NewRunForm()
        return render(request, "annotate/training_new.html", {"form": form})
    form = training_forms.NewRunForm(request.POST)
    action = request.POST.get("action", form.START)
    if not form.is_valid():
        return _render_new(request, form)
    if action == form.PREVIEW:
        result = training_preview.preview_run.enqueue(
            form.filters(), form.cleaned_data["base_model"], form.cleaned_data["overrides"]
        )
        return _render_new(request, form, preview=_preview_context(result))
    data = form.cleaned_data
    try:
        run, created = training_runs.start(
            filters=form.filters(),
            base_model=data["base_model"],
            overrides=data["overrides"],
            user=request.user,
            token=data["request_token"],
        )
    except ValueError as error:  # a config the trainer refuses: nothing was recorded
        form.add_error("overrides", str(error))
        return _render_new(request, form)
    if created:
        warning = training_runs.base_model_warning(data["base_model"])
        messages.success(request, f"Training run {run.pk} is queued. {warning}".strip())
    if request.htmx:
        return HttpResponseClientRedirect(run.get_absolute_url())
    return redirect(run)


def _render_new(request: HttpRequest, form, preview: dict | None = None) -> HttpResponse:
    # Re-rendered with what was typed: the same request token, so a run started from here
    # after a preview is still the one run of this form.
    context = {"form": form, "preview": preview}
    return render(request, _template(request, "annotate/training_new.html", "new-run"), context)


def _preview_context(result) -> dict:
    context = {"id": result.id, "status": result.status, "finished": result.is_finished}
    if not result.is_finished:
        context["worker_alive"] = workers.alive("gpu")
    if result.status == "SUCCESSFUL":
        plan = result.return_value
        context["plan"] = plan
        if "error" not in plan:
            config = training_forms.apply_overrides(
                training_forms.CUTConfig(), result.args[2]
            ).to_dict()
            seconds = training_runs.estimate_seconds(plan, config, plan["base_model"])
            context["estimate"] = training_runs.format_duration(seconds) if seconds else ""
    elif result.status == "FAILED":
        errors = [e.traceback.strip().splitlines()[-1] for e in result.errors if e.traceback]
        context["failure"] = errors[-1] if errors else "The preview job failed."
    return context


@require_GET
@staff_required
def show_preview(request: HttpRequest, result_id: str) -> HttpResponse:
    try:
        result = training_preview.preview_run.get_result(str(result_id))
    except TaskException as error:  # unknown id, or the result of another task
        raise Http404("No such preview.") from error
    context = {"preview": _preview_context(result)}
    page = "annotate/training_preview.html"
    return render(request, _template(request, page, "preview"), context)


# A run's page ------------------------------------------------------------------------


def _run(pk: int) -> models.TrainingRun:
    return get_object_or_404(models.TrainingRun.objects.select_related("created_by"), pk=pk)


def _run_context(run: models.TrainingRun, *, with_charts: bool = True) -> dict:
    """What the run page shows; without the charts for the partials (the status poll)."""
    context = {}
    if with_charts:
        charts = training_runs.charts(run)
        context["charts"] = charts
        context["chart_data"] = {
            "series_url": reverse("annotate:training-series", args=[run.pk]),
            "finished": run.is_finished,
            "charts": [chart.as_json() for chart in charts],
        }
    return {
        **context,
        "run": run,
        "worker_alive": workers.alive("gpu"),
        "generations": run.generation_runs.order_by("-pk")[:10],
        "progress": training_runs.progress(run),
        "selection": training_runs.selection_text(run.filters),
        "generate_form": training_forms.GenerateForm(initial={"round": _next_round()}),
    }


def _next_round() -> int:
    latest = models.Round.objects.order_by("-number").values_list("number", flat=True).first()
    return (latest or 0) + 1


@require_GET
@staff_required
def show_run(request: HttpRequest, pk: int) -> HttpResponse:
    jobs.sweep_stale()  # a run whose worker was killed shows as interrupted
    run = _run(pk)
    page = "annotate/training_run.html"
    if not request.htmx:
        return render(request, page, _run_context(run))
    context = _run_context(run, with_charts=False)
    # The poll's answer: the status, and the Generate form out of band, so the form
    # appears when the run succeeds (polling stops then).
    status = render_to_string(f"{page}#run-status", context, request)
    generate = render_to_string(f"{page}#generate", {**context, "oob": True}, request)
    return HttpResponse(status + generate)


@require_GET
@staff_required
def run_series(request: HttpRequest, pk: int) -> JsonResponse:
    """The run's status and the chart rows after step ?after=N, for the page's script."""
    run = _run(pk)
    try:
        after = int(request.GET.get("after", -1))
    except ValueError:
        return JsonResponse({"detail": "after must be a step number."}, status=400)
    charts = [chart.as_json() for chart in training_runs.charts(run, after=after)]
    return JsonResponse(
        {
            "status": run.status,
            "finished": run.is_finished,
            "progress": training_runs.progress(run),
            "charts": charts,
        }
    )


@require_POST
@staff_required
def cancel_run(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    if not jobs.request_cancel(run):
        messages.error(request, f"Training run {run.pk} is {run.status}: nothing to cancel.")
    elif run.status == models.TrainingRun.Status.CANCELLED:
        messages.success(request, f"Training run {run.pk} was cancelled before it started.")
    else:
        messages.success(
            request,
            f"Cancelling training run {run.pk}: it stops at the next optimizer step and keeps "
            "a checkpoint.",
        )
    return redirect(run)


@require_POST
@staff_required
def resume_run(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    try:
        jobs.enqueue_resume(run)
    except jobs.JobError as error:
        messages.error(request, f"Could not resume training run {run.pk}. {error}")
    else:
        messages.success(request, f"Training run {run.pk} is queued to resume.")
    return redirect(run)


@require_POST
@staff_required
def generate_round(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    form = training_forms.GenerateForm(request.POST)
    if form.is_valid():
        try:
            generation = training_runs.start_generation(run, form.cleaned_data, request.user)
        except ValidationError as error:
            form.add_generation_errors(error)
        else:
            messages.success(
                request,
                f"Generation of round {generation.round_number} with this adapter is queued.",
            )
            if request.htmx:
                return HttpResponseClientRedirect(run.get_absolute_url())
            return redirect(run)
    context = {**_run_context(run, with_charts=not request.htmx), "generate_form": form}
    page = "annotate/training_run.html"
    return render(request, _template(request, page, "generate"), context)


@require_GET
@staff_required
def download_snapshot(request: HttpRequest, pk: int) -> FileResponse:
    run = _run(pk)
    path = Path(run.snapshot_path) if run.snapshot_path else None
    if path is None or not path.is_file():
        raise Http404(
            "The data snapshot of this run is not on this server (it lives under the "
            "worker's TRAINING_DIR)."
        )
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"run-{run.pk}-{path.name}",
        content_type="application/x-ndjson",
    )
