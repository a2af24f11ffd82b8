"""While the database cannot be reached, say so with 503 and Retry-After, not a bare 500.

A PostgreSQL restart under load (3 s down, 5 annotators) answered 28 requests with a bare
500. Nothing was lost; the people were. Now:

- the API answers `503 {"detail": ...}` with `Retry-After`;
- an htmx request gets 503 with a small fragment (its JavaScript keeps the draft and
  retries after `Retry-After`);
- a page gets a 503 page that says the server is unavailable, keeps what was typed (a
  POST's fields, in a form that sends them again), and after a GET tries again by itself
  (static/js/unavailable.js, with a button to stop it; a link without JavaScript).

Only errors that mean "no connection" count: a refused or lost connection, a server
shutting down, SQLite unable to open its file or locked past its timeout. Anything else
(a missing table, a bad query) stays the 500 it is.

DatabaseUnavailableMiddleware catches it when a view raises it (DEBUG on or off);
server_error (handler500) when a middleware does, e.g. the session saved after the view.
"""

import sqlite3
import sys

import psycopg
from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

RETRY_AFTER_SECONDS = 5
MESSAGE = "The server is unavailable for a moment (its database cannot be reached)."
# SQLSTATE classes of a connection that failed or went away: 08 connection exception,
# 57P admin shutdown / crash shutdown / cannot connect now.
LOST_CONNECTION_STATES = ("08", "57P")
SQLITE_UNAVAILABLE = ("unable to open database file", "database is locked")


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether exc says the database cannot be reached (rather than a query being wrong)."""
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if isinstance(cause, psycopg.OperationalError):
        # No SQLSTATE: the client could not connect or lost the connection.
        return cause.sqlstate is None or cause.sqlstate.startswith(LOST_CONNECTION_STATES)
    if isinstance(cause, sqlite3.OperationalError):
        return str(cause).startswith(SQLITE_UNAVAILABLE)
    return False


def unavailable_response(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"detail": f"{MESSAGE} Try again in {RETRY_AFTER_SECONDS} seconds."}, status=503
        )
    elif request.headers.get("HX-Request") == "true":
        html = render_to_string("503.html#unavailable-fragment", _context(request))
        response = HttpResponse(html, status=503)
    else:
        response = HttpResponse(render_to_string("503.html", _context(request)), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # Never keep this answer: the next try must reach the server.
    response["Cache-Control"] = "no-store"
    return response


def _context(request: HttpRequest) -> dict:
    # No RequestContext: its processors would ask the database for the user.
    fields = []
    if request.method == "POST":
        fields = [
            (name, value)
            for name, values in request.POST.lists()
            for value in values
            if name != "csrfmiddlewaretoken"
        ]
    return {
        "stylesheet": _static("css/app.css"),
        "script": _static("js/unavailable.js"),
        "message": MESSAGE,
        "retry_after": RETRY_AFTER_SECONDS,
        "method": request.method,
        "path": request.get_full_path(),
        "fields": fields,
        # The token the browser sent is still good for sending the same form again.
        "csrf_token": request.POST.get("csrfmiddlewaretoken", "")
        if request.method == "POST"
        else "",
    }


def _static(path: str) -> str:
    try:
        return staticfiles_storage.url(path)
    except ValueError:  # no manifest (collectstatic not run): the file's own name
        return f"{settings.STATIC_URL}{path}"


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if is_unavailable(exception):
            return unavailable_response(request)
        return None


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: the 503 when the database is the trouble, Django's 500 otherwise."""
    if is_unavailable(sys.exc_info()[1]):
        return unavailable_response(request)
    return defaults.server_error(request, template_name)
