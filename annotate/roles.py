"""Who may do what: the groups created by migration 0002 and small predicates on users.

Staff count as reviewers, and reviewers as annotators (DESIGN.md, "People").
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

ANNOTATORS = "annotators"
REVIEWERS = "reviewers"


def _in_group(user, name: str) -> bool:
    # Cache the user's group names on the instance: one query per request, not per check.
    if not hasattr(user, "_group_names"):
        user._group_names = set(user.groups.values_list("name", flat=True))
    return name in user._group_names


def is_reviewer(user) -> bool:
    return (
        user.is_authenticated and user.is_active and (user.is_staff or _in_group(user, REVIEWERS))
    )


def is_annotator(user) -> bool:
    return (
        user.is_authenticated
        and user.is_active
        and (is_reviewer(user) or _in_group(user, ANNOTATORS))
    )


def annotator_required(view):
    """login_required, then 403 for a user in neither group."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not is_annotator(request.user):
            raise PermissionDenied("You are not an annotator.")
        return view(request, *args, **kwargs)

    return wrapper


def reviewer_required(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not is_reviewer(request.user):
            raise PermissionDenied("You are not a reviewer.")
        return view(request, *args, **kwargs)

    return wrapper
