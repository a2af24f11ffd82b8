"""API throttles count in the cache every server process shares (settings.CACHES)."""

import json
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.servers import gunicorn

pytestmark = pytest.mark.slow


def post_token(base: str, username: str) -> tuple[int, dict]:
    body = json.dumps({"username": username, "password": "wrong"}).encode()
    request = urllib.request.Request(
        f"{base}/api/auth/token/", body, {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_token_endpoints_limit_is_one_count_across_two_server_processes(transactional_db):
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"].split("/")[0])
    with gunicorn() as first, gunicorn() as second:
        # Alternate between the two; a new username each time, so only the throttle (per
        # address) counts, not the login lockout (per username and address).
        codes = [post_token((first, second)[i % 2], f"guess{i}")[0] for i in range(limit)]
        assert codes == [400] * limit
        for base in (first, second):
            status, body = post_token(base, "one-more")
            assert status == 429
            assert body["detail"].startswith("Request was throttled.")
