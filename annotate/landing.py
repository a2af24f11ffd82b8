"""Where a login leads, and the staff's overview.

settings.LOGIN_REDIRECT_URL points at `land`: annotators go to the task page, reviewers to
the review queue, staff to the overview. Opening the task page reserves a task for
RESERVATION_MINUTES, so only people who mean to annotate should arrive there.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, OuterRef, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from annotate import models, roles

TRAINING_RUNS_SHOWN = 10


@require_GET
@login_required
def land(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_staff:
        return redirect("annotate:overview")
    if roles.is_reviewer(user):
        return redirect("annotate:review-queue")
    if not roles.is_annotator(user):
        raise PermissionDenied(
            "Your account has no role yet: ask staff to add you to the annotators or reviewers."
        )
    return redirect("annotate:home")


def rounds_with_counts() -> QuerySet:
    """Rounds with response_count, judgment_count and negative_count (rejected judgments
    left out), as the rounds API and the overview show them."""
    # Subqueries, not Count() over joins: responses x judgments would multiply the rows.
    judgments = models.Judgment.objects.filter(response__round=OuterRef("pk")).exclude(
        review_state=models.Judgment.ReviewState.REJECTED
    )
    negative = Count("pk", filter=Q(verdict=models.Judgment.Verdict.NEGATIVE))
    return models.Round.objects.annotate(
        response_count=models.count_subquery(
            models.Response.objects.filter(round=OuterRef("pk")), "round"
        ),
        judgment_count=models.count_subquery(judgments, "response__round"),
        negative_count=models.count_subquery(judgments, "response__round", negative),
    )


def queue_depth() -> dict:
    """How much work is left: open responses and the judgments they still need, live
    reservations and judgments waiting for a reviewer. Three queries."""
    open_responses = models.Response.objects.filter(
        retired=False, judgment_count__lt=F("overlap")
    ).aggregate(responses=Count("pk"), needed=Sum(F("overlap") - F("judgment_count")))
    return {
        "open_responses": open_responses["responses"],
        "judgments_needed": open_responses["needed"] or 0,
        "reserved": models.Reservation.objects.filter(expires__gt=timezone.now()).count(),
        "pending_review": models.Judgment.objects.filter(
            review_state=models.Judgment.ReviewState.PENDING
        ).count(),
    }


@require_GET
@login_required
def show_overview(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("The overview is for staff.")
    context = {
        "depth": queue_depth(),
        "rounds": rounds_with_counts(),
        "runs": models.TrainingRun.objects.select_related("created_by")[:TRAINING_RUNS_SHOWN],
    }
    return render(request, "annotate/overview.html", context)
