"""The comparison pages: evaluators vote on pairs, staff create comparisons, reviewers and
staff read the results. Plain form posts and redirects; with htmx the vote and skip
answer with the page's "compare" partial (the next pair)."""

from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotate import (
    compare,
    compare_forms,
    compare_stats,
    compare_systems,
    forms,
    models,
    queue,
    rounds,
)
from annotate.roles import annotator_required, reviewer_required


def staff_required(view):
    @wraps(view)
    @reviewer_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("Only staff may do this.")
        return view(request, *args, **kwargs)

    return wrapper


def _comparison(pk: int) -> models.Comparison:
    # prompt_ids (the sample, thousands of ids) is loaded only if refresh() asks for it.
    return get_object_or_404(models.Comparison.objects.defer("prompt_ids"), pk=pk)


# The evaluator's page ------------------------------------------------------------------


@require_GET
@annotator_required
def list_comparisons(request: HttpRequest) -> HttpResponse:
    context = {"comparisons": compare.open_comparisons(request.user)}
    return render(request, "annotate/compare_list.html", context)


def _render_pair(
    request: HttpRequest,
    comparison: models.Comparison,
    *,
    form: compare_forms.VoteForm | None = None,
    skip_form: compare_forms.PairSkipForm | None = None,
    notice: str = "",
) -> HttpResponse:
    reservation = compare.next_for(request.user, comparison)
    left = right = None
    if reservation is not None:
        left, right = compare.sides(reservation)
    context = {
        "comparison": comparison,
        "reservation": reservation,
        "pair": reservation.pair if reservation else None,
        "left": left,
        "right": right,
        "form": form or compare_forms.VoteForm(),
        "skip_form": skip_form or compare_forms.PairSkipForm(),
        "progress": compare.progress(request.user, comparison),
        "notice": notice,
    }
    template = "annotate/compare.html#compare" if request.htmx else "annotate/compare.html"
    return render(request, template, context)


@require_GET
@annotator_required
def show_pair(request: HttpRequest, pk: int) -> HttpResponse:
    comparison = _comparison(pk)
    if comparison.state == models.Comparison.State.WAITING:
        # Generation jobs may have answered since: their responses become pairs now.
        compare.refresh(comparison)
    return _render_pair(request, comparison)


def _after(request: HttpRequest, comparison: models.Comparison, notice: str) -> HttpResponse:
    if request.htmx:
        return _render_pair(request, comparison, notice=notice)
    messages.success(request, notice)
    return redirect("annotate:compare-pair", comparison.pk)


@require_POST
@annotator_required
def vote_pair(request: HttpRequest, pk: int, pair_pk: int) -> HttpResponse:
    comparison = _comparison(pk)
    pair = get_object_or_404(models.ComparisonPair, pk=pair_pk, comparison=comparison)
    form = compare_forms.VoteForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            compare.submit(
                request.user,
                pair,
                choice=data["choice"],
                reason=data["reason"],
                seconds_spent=data["seconds_spent"],
            )
        except ValidationError as error:
            forms.add_model_errors(form, error)
        except queue.QueueError as error:
            # The pair is gone for this person: say so and show the next one.
            return _after(request, comparison, f"Your vote was not saved: {error}")
        else:
            return _after(request, comparison, "Vote saved.")
    # The same pair comes back (the reservation holds it), with the reason kept.
    return _render_pair(request, comparison, form=form)


@require_POST
@annotator_required
def skip_pair(request: HttpRequest, pk: int, pair_pk: int) -> HttpResponse:
    comparison = _comparison(pk)
    pair = get_object_or_404(models.ComparisonPair, pk=pair_pk, comparison=comparison)
    skip_form = compare_forms.PairSkipForm(request.POST)
    if skip_form.is_valid():
        try:
            compare.skip(request.user, pair, skip_form.cleaned_data["reason"])
        except ValidationError as error:
            skip_form.add_error("reason", error.messages)
        else:
            return _after(request, comparison, "Skipped; it won't come back to you.")
    return _render_pair(request, comparison, skip_form=skip_form)


# Staff: a new comparison -------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@staff_required
def create_comparison(request: HttpRequest) -> HttpResponse:
    form = compare_forms.ComparisonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            comparison = compare.create(**form.cleaned_data, created_by=request.user)
        except ValidationError as error:
            forms.add_model_errors(form, error)
        else:
            messages.success(request, f"Comparison {comparison.pk} created.")
            return redirect(comparison)
    return render(request, "annotate/compare_new.html", {"form": form})


# Results ---------------------------------------------------------------------------------


@require_GET
@reviewer_required
def show_results(request: HttpRequest, pk: int) -> HttpResponse:
    comparison = _comparison(pk)
    waiting = comparison.state == models.Comparison.State.WAITING
    if waiting:
        # Generation jobs may have answered since: their responses become pairs now.
        compare.refresh(comparison)
    context = {
        "comparison": comparison,
        "label_a": compare_systems.system_label(comparison.system_a),
        "label_b": compare_systems.system_label(comparison.system_b),
        "result": compare_stats.comparison_result(comparison),
        "pairs": comparison.pairs.count(),
        # Open and closed comparisons have every pair: nothing is missing.
        "generation": compare_systems.generation_status(comparison) if waiting else "",
        "scores": rounds.bt_scores(),
    }
    return render(request, "annotate/compare_results.html", context)


@require_GET
@reviewer_required
def show_rounds(request: HttpRequest) -> HttpResponse:
    context = {"rows": rounds.round_rows(), "scores": rounds.bt_scores()}
    return render(request, "annotate/rounds.html", context)
