"""What a locked-out login sees (django-axes, settings.AXES_*).

Axes counts failed logins per username and address and, past AXES_FAILURE_LIMIT, refuses
that pair until AXES_COOLOFF_TIME has passed. This is the answer it gives then: the login
page saying so in words, or DRF's JSON body on the API token endpoint.
"""

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

STATUS = 429


class LockoutBackend(AxesStandaloneBackend):
    """Axes' check, for logins that come with a request.

    Every login a person makes does (the login pages, the admin's, DRF's token endpoint);
    Django's test client's login() and a shell's authenticate() do not, and axes would
    refuse them outright, so they skip the check (and are not counted) instead.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class PassLockoutToMiddleware:
    """For a DRF view that logs in (the token endpoint): axes marks the DRF request as
    locked out, but its middleware looks at Django's request underneath."""

    def finalize_response(self, request, response, *args, **kwargs):
        if getattr(request, "axes_locked_out", False):
            request._request.axes_locked_out = True
            request._request.axes_credentials = getattr(request, "axes_credentials", None)
        return super().finalize_response(request, response, *args, **kwargs)


def lockout_response(
    request: HttpRequest, original_response=None, credentials=None
) -> HttpResponse:
    minutes = (
        int(settings.AXES_COOLOFF_TIME.total_seconds() // 60) if settings.AXES_COOLOFF_TIME else 0
    )
    if minutes:
        when = f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    else:
        when = "Ask a staff member to unlock it."
    message = (
        f"Too many failed logins for this username from your address "
        f"({settings.AXES_FAILURE_LIMIT} in a row). {when}"
    )
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=STATUS)
    else:
        username = (credentials or {}).get("username") or request.POST.get("username", "")
        context = {"message": message, "username": username}
        response = render(request, "registration/locked_out.html", context, status=STATUS)
    if minutes:
        response["Retry-After"] = str(minutes * 60)
    return response
