"""A session that ended while someone was working: logged out in another tab, the session
expired, cookies cleared, or a login elsewhere that rotated the CSRF token.

Nothing typed should be lost and no page should be drawn inside another:

- an htmx request gets a short 401 (no session) or 403 (CSRF) with the header
  `X-Session-Ended: <where to go>`; static/js/app.js keeps the page and its draft and
  shows "Your session ended; log in again. Your draft is kept." with that link;
- a plain form post is sent to the login page with `next` = the page the form was on
  (its GET view), not the POST-only URL, which after the login would answer 405;
- a CSRF failure shows this app's page (settings.CSRF_FAILURE_VIEW), not Django's.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme

HEADER = "X-Session-Ended"


def _safe_path(request: HttpRequest, url: str | None) -> str | None:
    """The path (and query) of `url` when it is a page of this site, else None."""
    if not url or not url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return None
    parts = urlsplit(url)
    if not parts.path.startswith("/"):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def page_of_request(request: HttpRequest) -> str:
    """The page the person was on: itself for a GET, else the page that sent the form."""
    if request.method in ("GET", "HEAD") and not getattr(request, "htmx", False):
        return request.get_full_path()
    htmx = getattr(request, "htmx", None)
    return (
        (htmx and _safe_path(request, htmx.current_url))
        or _safe_path(request, request.headers.get("Referer"))
        or resolve_url(settings.LOGIN_REDIRECT_URL)
    )


def _login_url(request: HttpRequest) -> str:
    page = page_of_request(request)
    if urlsplit(page).path == resolve_url(settings.LOGIN_URL):
        return page  # the login form itself was stale: the same login page, fresh
    return redirect_to_login(page).url


def login_first(request: HttpRequest) -> HttpResponse:
    """The answer to a request that needs a login and has none."""
    if getattr(request, "htmx", False):
        response = HttpResponse(
            "Your session ended; log in again.", status=401, content_type="text/plain"
        )
        response[HEADER] = _login_url(request)
        return response
    return redirect_to_login(page_of_request(request))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW: the form's token no longer matches the browser's."""
    page = page_of_request(request)
    logged_in = request.user.is_authenticated
    # Logged in (again, elsewhere): reloading the page gives a fresh token.
    go_to = page if logged_in else _login_url(request)
    if getattr(request, "htmx", False):
        response = HttpResponse(
            "Your session ended; log in again.", status=403, content_type="text/plain"
        )
        response[HEADER] = go_to
        return response
    context = {"go_to": go_to, "logged_in": logged_in, "reason": reason, "page": page}
    return render(request, "session_ended.html", context, status=403)
