import re

import pytest
from django.contrib.staticfiles import finders

from tests.api.conftest import CAST
from tests.conftest import PASSWORD

# The paths issue 4 promises scripts; they must stay.
PROMISED = {
    "/api/auth/token/": {"post"},
    "/api/tasks/next/": {"get"},
    "/api/tasks/{response_id}/skip/": {"post"},
    "/api/judgments/": {"get", "post"},
    "/api/judgments/{id}/": {"get", "patch"},
    "/api/judgments/{id}/review/": {"post"},
    "/api/responses/": {"post"},
    "/api/export/judgments.jsonl": {"get"},
    "/api/rounds/": {"get"},
    "/api/rounds/{number}/": {"get"},
    "/api/training-runs/": {"get"},
    "/api/training-runs/{id}/": {"get"},
}


def test_the_schema_lists_every_promised_endpoint(api, annotator):
    r = api(annotator).get("/api/schema/", {"format": "json"})
    assert r.status_code == 200
    schema = r.json()
    assert schema["openapi"].startswith("3.")
    for path, methods in PROMISED.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path


def test_the_schema_documents_the_token_and_session_auth(api, annotator):
    schema = api(annotator).get("/api/schema/", {"format": "json"}).json()
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}
    assert "security" not in schema["paths"]["/api/auth/token/"]["post"]


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 200, 200, 200, 200, 200], strict=True),
)
def test_the_schema_needs_a_login(as_cast, who, expected):
    _, client = as_cast(who)
    assert client.get("/api/schema/").status_code == expected


def test_the_docs_page_loads_only_local_files(client, annotator):
    client.login(username="alice", password=PASSWORD)
    r = client.get("/api/docs/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="swagger-ui"' in html
    assert "/api/schema/" in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls
    for url in urls:
        assert url.startswith("/static/"), f"{url} is not served by this site"
        assert finders.find(url.removeprefix("/static/")), f"{url} is missing"


def test_the_docs_page_logged_out_redirects_to_the_login_like_the_other_pages(client, db):
    r = client.get("/api/docs/")
    assert r.status_code == 302
    assert r.url == "/accounts/login/?next=/api/docs/"


def test_the_docs_page_with_a_token_but_no_session_still_needs_a_login(client, annotator):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=annotator)
    r = client.get("/api/docs/", headers={"Authorization": f"Token {token.key}"})
    assert r.status_code == 302  # the docs are a page for a browser, which logs in


@pytest.mark.parametrize(
    "path", ["/api/nothing/", "/api/judgments/1.5/", "/api/tasks/x,y/skip/", "/api/rounds/1/x"]
)
def test_unknown_api_paths_get_a_json_404(api, annotator, path):
    r = api(annotator).get(path)
    assert r.status_code == 404
    assert r.json() == {"detail": "Not found."}
    client = api(annotator)
    client.handler.enforce_csrf_checks = True
    assert client.post(path, {}, format="json").status_code == 404
