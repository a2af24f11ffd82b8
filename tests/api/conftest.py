"""API clients for the cast of tests/conftest.py, authenticated with real tokens."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

# Everyone the permission matrices go through; "anonymous" sends no credentials.
CAST = ["anonymous", "outsider", "annotator", "other_annotator", "reviewer", "staff"]


@pytest.fixture(autouse=True)
def _fresh_throttles(db):
    # DRF keeps throttle history in the cache (a database table), which a transactional
    # test's flush leaves alone.
    cache.clear()
    yield
    cache.clear()


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(db):
    """api(user) -> an APIClient sending that user's token; api(None) is anonymous."""
    return client_for


@pytest.fixture
def as_cast(request, db):
    """as_cast("reviewer") -> (user or None, client), for parametrized permission matrices."""

    def make(name: str):
        user = None if name == "anonymous" else request.getfixturevalue(name)
        return user, client_for(user)

    return make
