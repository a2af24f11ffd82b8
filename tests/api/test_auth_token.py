import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

URL = "/api/auth/token/"


def test_it_returns_the_users_token(annotator):
    r = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert r.status_code == 200
    assert r.json() == {"token": Token.objects.get(user=annotator).key}


def test_it_returns_the_same_token_twice(annotator):
    first = APIClient().post(URL, {"username": "alice", "password": PASSWORD}).json()
    second = APIClient().post(URL, {"username": "alice", "password": PASSWORD}).json()
    assert first == second
    assert Token.objects.filter(user=annotator).count() == 1


def test_the_token_authenticates_api_calls(annotator):
    token = APIClient().post(URL, {"username": "alice", "password": PASSWORD}).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/judgments/").status_code == 200


def test_a_wrong_token_is_a_401(annotator):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/judgments/").status_code == 401


def test_a_browser_session_authenticates_api_calls(annotator):
    client = APIClient()
    client.login(username="alice", password=PASSWORD)
    assert client.get("/api/judgments/").status_code == 200


def test_it_refuses_a_wrong_password(annotator):
    r = APIClient().post(URL, {"username": "alice", "password": "nope"}, format="json")
    assert r.status_code == 400
    assert "Unable to log in" in str(r.json())
    assert not Token.objects.exists()


def test_it_refuses_an_inactive_user(annotator):
    annotator.is_active = False
    annotator.save()
    r = APIClient().post(URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert r.status_code == 400
    assert not Token.objects.exists()


def test_it_needs_username_and_password(db):
    r = APIClient().post(URL, {}, format="json")
    assert r.status_code == 400
    assert set(r.json()) == {"username", "password"}


def test_it_rejects_wrong_types(annotator):
    r = APIClient().post(URL, {"username": ["alice"], "password": PASSWORD}, format="json")
    assert r.status_code == 400
    assert "username" in r.json()


def test_it_rejects_unknown_fields(annotator):
    r = APIClient().post(
        URL, {"username": "alice", "password": PASSWORD, "otp": "123"}, format="json"
    )
    assert r.status_code == 400
    assert "Unknown field" in r.json()["otp"][0]
    assert not Token.objects.exists()


def test_it_needs_no_csrf_token_from_a_logged_in_browser(annotator):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password=PASSWORD)
    r = client.post(URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert r.status_code == 200


def test_it_is_throttled(annotator):
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"].split("/")[0])
    client = APIClient()
    # A new username each time: the login lockout counts per username, the throttle per
    # address, whatever the username.
    codes = [
        client.post(URL, {"username": f"guess{i}", "password": "wrong"}).status_code
        for i in range(limit + 1)
    ]
    assert codes[:limit] == [400] * limit
    assert codes[limit] == 429
    # Even the right password waits now: guessing gets no more tries this way.
    assert client.post(URL, {"username": "alice", "password": PASSWORD}).status_code == 429


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_it_only_takes_post(annotator, method):
    assert getattr(APIClient(), method)(URL).status_code == 405
