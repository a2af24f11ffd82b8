"""Who may do what: the groups created by migration 0002 and small predicates on users.

Staff count as reviewers, and reviewers as annotators (DESIGN.md, "People").
"""

from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from annotate import session

ANNOTATORS = "annotators"
REVIEWERS = "reviewers"


def _in_group(user, name: str) -> bool:
    # Cache the user's group names on the instance: one query per request, not per check.
    if not hasattr(user, "_group_names"):
        user._group_names = set(user.groups.values_list("name", flat=True))
    return name in user._group_names


class RoleBackend(ModelBackend):
    """ModelBackend whose session user arrives with their roles: one query, not two, on
    every page (settings.AUTHENTICATION_BACKENDS)."""

    _SQL = """
        SELECT u.*,
          EXISTS (SELECT 1 FROM {membership} m JOIN {group} g ON g.id = m.group_id
                  WHERE m.user_id = u.id AND g.name = %s) AS in_annotators,
          EXISTS (SELECT 1 FROM {membership} m JOIN {group} g ON g.id = m.group_id
                  WHERE m.user_id = u.id AND g.name = %s) AS in_reviewers
        FROM {user} u WHERE u.id = %s
    """

    def get_user(self, user_id):
        User = get_user_model()
        pk = User._meta.pk.to_python(user_id)
        sql = self._SQL.format(
            user=User._meta.db_table,
            membership=User.groups.through._meta.db_table,
            group=Group._meta.db_table,
        )
        found = list(User._default_manager.raw(sql, [ANNOTATORS, REVIEWERS, pk]))
        if not found or not self.user_can_authenticate(found[0]):
            return None
        user = found[0]
        # What _in_group asks; other groups play no part in the roles.
        user._group_names = {
            name
            for name, member in ((ANNOTATORS, user.in_annotators), (REVIEWERS, user.in_reviewers))
            if member
        }
        return user


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
    """A login first (annotate.session.login_first), then 403 for a user in neither group."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return session.login_first(request)
        if not is_annotator(request.user):
            raise PermissionDenied("You are not an annotator.")
        return view(request, *args, **kwargs)

    return wrapper


def reviewer_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return session.login_first(request)
        if not is_reviewer(request.user):
            raise PermissionDenied("You are not a reviewer.")
        return view(request, *args, **kwargs)

    return wrapper
