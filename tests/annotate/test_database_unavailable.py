"""While the database cannot be reached, a real server answers 503 with Retry-After (API),
a page that keeps what was typed (browser), or a small fragment (htmx), not a bare 500.

The servers are real gunicorn processes whose DATABASE_URL points at a port where nothing
listens, or at a SQLite file that cannot be opened: the database is gone, nothing mocked.
"""

import json
import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.servers import gunicorn

pytestmark = pytest.mark.slow

CSRF = "a" * 32
CRITIQUE = "The year is wrong: Apollo 11 landed in 1969.\nAlso, <b>tags</b> stay text."


@pytest.fixture(scope="module")
def closed_port():
    # Bound but never listening: connecting to it is refused, and no other process can
    # take the port while the tests run.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(scope="module")
def server(closed_port):
    with gunicorn(f"postgres://postgres@127.0.0.1:{closed_port}/critique") as base:
        yield base


def request(base: str, path: str, *, data: dict | None = None, headers: dict | None = None):
    body = None
    headers = {
        "Cookie": f"sessionid=abcdefghijklmnopqrstuvwxyz012345; csrftoken={CSRF}",
        **(headers or {}),
    }
    if data is not None:
        body = urllib.parse.urlencode(data).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(base + path, body, headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as answer:
            return answer.status, answer.headers, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def test_the_api_answers_503_json_with_retry_after(server):
    status, headers, body = request(
        server, "/api/tasks/next/", headers={"Authorization": "Token " + "0" * 40}
    )
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["detail"].startswith("The server is unavailable for a moment")


def test_a_page_says_the_server_is_unavailable_and_retries_by_itself(server):
    status, headers, body = request(server, "/judgments/")
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert "<h1>The server is unavailable</h1>" in body
    assert 'data-auto-retry="5"' in body  # static/js/unavailable.js reloads it
    assert "js/unavailable.js" in body
    assert 'href="/judgments/"' in body


def test_a_posted_judgment_is_kept_on_the_page_to_send_again(server):
    status, headers, body = request(
        server,
        "/responses/7/judgment/",
        data={"csrfmiddlewaretoken": CSRF, "verdict": "negative", "critique": CRITIQUE},
    )
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert '<form method="post" action="/responses/7/judgment/"' in body
    assert f'name="csrfmiddlewaretoken" value="{CSRF}"' in body
    assert (
        "The year is wrong: Apollo 11 landed in 1969.\nAlso, &lt;b&gt;tags&lt;/b&gt; stay text."
        in body
    )
    assert 'name="verdict"' in body
    assert "data-auto-retry" not in body  # a POST waits for "Send again"


def test_an_htmx_request_gets_a_503_fragment(server):
    status, headers, body = request(
        server,
        "/responses/7/judgment/",
        data={"csrfmiddlewaretoken": CSRF, "verdict": "positive"},
        headers={"HX-Request": "true"},
    )
    assert status == 503
    assert headers["Retry-After"] == "5"
    assert "<html" not in body
    assert 'role="alert"' in body
    assert "The server is unavailable for a moment" in body


def test_a_sqlite_file_that_cannot_be_opened_is_a_503_too(tmp_path):
    missing = tmp_path / "no-such-directory" / "db.sqlite3"
    with gunicorn(f"sqlite:///{missing}") as base:
        status, headers, _ = request(
            base, "/api/rounds/", headers={"Authorization": "Token " + "0" * 40}
        )
    assert (status, headers["Retry-After"]) == (503, "5")


def test_a_database_that_answers_with_an_error_is_still_a_500(tmp_path):
    # Reachable but never migrated: "no such table" is a fault to fix, not to wait out.
    empty = tmp_path / "empty.sqlite3"
    with gunicorn(f"sqlite:///{empty}") as base:
        status, headers, _ = request(
            base, "/api/rounds/", headers={"Authorization": "Token " + "0" * 40}
        )
    assert status == 500
    assert "Retry-After" not in headers


def test_an_error_raised_outside_a_view_gets_the_503_from_handler500(
    closed_port, rf, django_db_blocker
):
    """handler500 sees what a middleware raised, e.g. saving the session after the view."""
    import dj_database_url
    from django.db import OperationalError
    from django.db.utils import ConnectionHandler

    from annotate import unavailable

    gone = ConnectionHandler(
        {"default": dj_database_url.parse(f"postgres://postgres@127.0.0.1:{closed_port}/x")}
    )["default"]
    request = rf.get("/judgments/")
    try:
        with django_db_blocker.unblock():  # a real connection attempt, to a closed port
            gone.ensure_connection()
    except OperationalError:
        answer = unavailable.server_error(request)
    assert answer.status_code == 503
    assert answer["Retry-After"] == "5"
    try:
        raise ZeroDivisionError
    except ZeroDivisionError:
        assert unavailable.server_error(request).status_code == 500
