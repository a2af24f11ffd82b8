"""Property-based run of the OpenAPI schema against the app (schemathesis).

Every operation gets generated requests, as an annotator and as staff; the API must never
answer with a 5xx, and what it answers must match the schema.

The schema is generated in-process, the way GET /api/schema/ makes it, rather than loaded
through schemathesis.pytest.from_fixture: that loader needs a pytest internal that pytest 9
no longer has.

Transactional database: schemathesis calls the WSGI app, whose request_finished signal
closes the database connection, which a test wrapped in a transaction would not survive.
The cast's fixtures recreate the groups that migration 0002 made and a flush removed. (No
serialized_rollback: after another transactional test's flush, the content types it would
restore exist again and the restore fails.)
"""

import json

import pytest
import schemathesis
from django.core.cache import cache
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from annotate import models, queue
from config.wsgi import application


def openapi_schema() -> dict:
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


# No 5xx, and every answer as documented. Not positive_data_acceptance: a request can match
# the schema and still be refused for what no schema can say (the response id does not
# exist, a negative verdict without a critique).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(openapi_schema())
schema.app = application


@pytest.fixture(params=["annotator", "staff"])
def caller(request, transactional_db):
    return request.getfixturevalue(request.param)


@pytest.fixture
def auth(caller) -> dict:
    token, _ = Token.objects.get_or_create(user=caller)
    return {"Authorization": f"Token {token.key}"}


@pytest.fixture
def data(caller, other_annotator, make_responses, round1, tmp_path, settings):
    """Something for the read endpoints to find: responses, judgments of both annotators,
    a training run. Runs started by POST /api/training-runs/ write their snapshots under
    tmp_path."""
    settings.TRAINING_DIR = tmp_path / "runs"
    responses = make_responses(5, overlap=2, round=round1)
    for response in responses[:2]:
        queue.submit(caller, response, verdict="negative", critique="Too vague.")
        queue.submit(other_annotator, response, verdict="positive")
    models.TrainingRun.objects.create(base_model="tiny", metrics={"final_loss": 1.5})


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.slow
def test_the_api_keeps_to_its_schema(case, auth, data):
    # The token endpoint allows a few calls a minute; the run makes many more.
    cache.clear()
    response = case.call(headers=auth)
    case.validate_response(response, headers=auth, checks=CHECKS)
