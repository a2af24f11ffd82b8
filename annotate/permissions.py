"""Role checks for the API: the same predicates as the pages (annotate.roles).

A wrong role is a 403. Whose objects a user may see is decided in each viewset's
get_queryset() (another annotator's judgment is a 404), not here.
"""

from rest_framework import permissions

from annotate import roles


class IsAnnotator(permissions.BasePermission):
    message = "You are not an annotator."

    def has_permission(self, request, view) -> bool:
        return roles.is_annotator(request.user)


class IsReviewer(permissions.BasePermission):
    message = "You are not a reviewer."

    def has_permission(self, request, view) -> bool:
        return roles.is_reviewer(request.user)


class IsStaff(permissions.BasePermission):
    message = "Only staff may do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user.is_authenticated and user.is_active and user.is_staff)


class IsOwnerOrReadOnly(permissions.BasePermission):
    """Reviewers can read every judgment but change only their own."""

    message = "You can only change your own judgments."

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return obj.annotator_id == request.user.pk
