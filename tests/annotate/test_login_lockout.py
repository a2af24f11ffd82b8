"""Repeated wrong passwords lock a username out from one address (django-axes)."""

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

LIMIT = 3


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT


def log_in(client, password: str, username: str = "alice", address: str = "10.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def fail(client, times: int, **kwargs) -> None:
    for _ in range(times):
        page = log_in(client, "wrong", **kwargs)
        assert page.status_code in (200, 429)


def test_the_limit_of_wrong_passwords_locks_the_login_with_a_clear_message(client, annotator):
    for _ in range(LIMIT - 1):
        assert log_in(client, "wrong").status_code == 200
    assert log_in(client, "wrong").status_code == 429
    page = log_in(client, PASSWORD)
    html = page.content.decode()
    assert page.status_code == 429
    assert "Too many failed logins for this username from your address (3 in a row)" in html
    assert "Try again in 15 minutes." in html
    assert page["Retry-After"] == "900"
    assert "_auth_user_id" not in client.session


def test_the_same_username_from_another_address_can_still_log_in(client, annotator):
    fail(client, LIMIT)
    page = log_in(client, PASSWORD, address="10.0.0.2")
    assert page.status_code == 302
    assert page.url == reverse("annotate:landing")


def test_another_username_from_the_same_address_can_still_log_in(client, annotator, reviewer):
    fail(client, LIMIT)
    assert log_in(client, PASSWORD, username="rita").status_code == 302


def test_a_good_login_before_the_limit_starts_the_count_again(client, annotator):
    fail(client, LIMIT - 1)
    assert log_in(client, PASSWORD).status_code == 302
    client.logout()
    fail(client, LIMIT - 1)
    assert log_in(client, PASSWORD).status_code == 302


def test_the_admin_login_counts_towards_the_same_lockout(client, staff):
    for _ in range(LIMIT):
        client.post(
            reverse("admin:login"),
            {"username": "sam", "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
        )
    assert log_in(client, PASSWORD, username="sam").status_code == 429


def test_the_api_token_endpoint_is_locked_out_too(client, annotator):
    url = reverse("api:token")
    for _ in range(LIMIT):
        answer = client.post(
            url, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.1"
        )
        assert answer.status_code in (400, 429)
    answer = client.post(url, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1")
    assert answer.status_code == 429
    assert "Too many failed logins" in answer.json()["detail"]
    assert "token" not in answer.json()


def test_the_browser_login_is_locked_after_failures_at_the_token_endpoint(client, annotator):
    for _ in range(LIMIT):
        client.post(reverse("api:token"), {"username": "alice", "password": "wrong"})
    assert (
        client.post(reverse("login"), {"username": "alice", "password": PASSWORD}).status_code
        == 429
    )


def test_the_lockout_can_be_switched_off(client, annotator, settings):
    settings.AXES_ENABLED = False
    fail(client, LIMIT + 2)
    assert log_in(client, PASSWORD).status_code == 302
