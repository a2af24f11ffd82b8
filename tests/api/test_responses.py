import pytest

from annotate import api as api_module
from annotate import models, validators
from tests.api.conftest import CAST

URL = "/api/responses/"

RECORDS = [
    {"id": "q1", "instruction": "Add 2 and 2.", "output": "4", "generator": "tiny"},
    {
        "id": "q2",
        "instruction": "Translate.",
        "input": "Bonjour",
        "output": "Hello",
        "topic": "translation",
    },
]


def post(client, body):
    return client.post(URL, body, format="json")


def test_staff_push_prompts_and_responses(api, staff):
    r = post(api(staff), {"source": "pipeline", "round": 3, "overlap": 2, "records": RECORDS})
    assert r.status_code == 201
    assert r.json() == {
        "records": 2,
        "prompts_created": 2,
        "responses_created": 2,
        "judgments_created": 0,
        "unchanged": 0,
    }
    prompt = models.Prompt.objects.get(source="pipeline", external_id="q2")
    assert (prompt.instruction, prompt.input) == ("Translate.", "Bonjour")
    assert prompt.metadata == {"topic": "translation"}
    response = prompt.responses.get()
    assert (response.text, response.overlap, response.round_id) == ("Hello", 2, 3)
    assert models.Round.objects.filter(number=3).exists()
    assert models.Response.objects.get(text="4").generator == "tiny"


def test_sending_the_same_records_again_changes_nothing(api, staff):
    client = api(staff)
    assert post(client, {"source": "pipeline", "records": RECORDS}).status_code == 201
    r = post(client, {"source": "pipeline", "records": RECORDS})
    assert r.status_code == 200
    assert r.json()["unchanged"] == 2
    assert r.json()["responses_created"] == 0
    assert models.Response.objects.count() == 2


def test_records_with_judgments_can_be_accepted_on_import(api, staff):
    records = [
        {"instruction": "Add 2 and 2.", "output": "5", "judgment": "2 + 2 is 4, not 5."},
        {"instruction": "Add 1 and 1.", "output": "2", "judgment": None},
    ]
    r = post(api(staff), {"source": "paper", "records": records, "accept_judgments": True})
    assert r.status_code == 201
    assert r.json()["judgments_created"] == 2
    negative = models.Judgment.objects.get(verdict="negative")
    assert negative.critique == "2 + 2 is 4, not 5."
    assert negative.review_state == "accepted"
    assert models.Judgment.objects.get(verdict="positive").response.judgment_count == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"instruction": "Say hi."}, "records[1]: missing 'output'."),
        ({"instruction": "", "output": "x"}, "records[1]: 'instruction' is empty."),
        ({"instruction": 5, "output": "x"}, "records[1]: 'instruction' must be a string"),
        (
            {"instruction": "Long.", "output": "x" * (validators.MAX_RESPONSE_CHARS + 1)},
            "records[1]: 'output' has",
        ),
        ({"id": "q1", "instruction": "Another prompt.", "output": "x"}, "records[1]: id 'q1'"),
    ],
)
def test_a_bad_record_is_named_and_nothing_is_written(api, staff, bad, message):
    r = post(api(staff), {"source": "pipeline", "records": [RECORDS[0], bad]})
    assert r.status_code == 400
    assert r.json()["records"][0].startswith(message)
    assert not models.Prompt.objects.exists()
    assert not models.Response.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"records": RECORDS}, "source"),
        ({"source": "", "records": RECORDS}, "source"),
        ({"source": "x" * (validators.MAX_SOURCE_CHARS + 1), "records": RECORDS}, "source"),
        ({"source": "s"}, "records"),
        ({"source": "s", "records": []}, "records"),
        ({"source": "s", "records": {"instruction": "a", "output": "b"}}, "records"),
        ({"source": "s", "records": ["not an object"]}, "records"),
        ({"source": "s", "records": RECORDS, "overlap": 0}, "overlap"),
        ({"source": "s", "records": RECORDS, "overlap": "two"}, "overlap"),
        ({"source": "s", "records": RECORDS, "round": -1}, "round"),
        ({"source": "s", "records": RECORDS, "round": 10**30}, "round"),
        ({"source": "s", "records": RECORDS, "generator": "gpt"}, "generator"),
    ],
)
def test_it_rejects_bad_input(api, staff, body, field):
    r = post(api(staff), body)
    assert r.status_code == 400
    assert field in r.json()
    assert not models.Response.objects.exists()


def test_it_refuses_too_many_records(api, staff):
    limit = api_module.serializers.MAX_IMPORT_RECORDS
    records = [{"instruction": f"Q{i}", "output": "A"} for i in range(limit + 1)]
    r = post(api(staff), {"source": "big", "records": records})
    assert r.status_code == 400
    assert "records" in r.json()
    assert not models.Prompt.objects.exists()


def test_it_refuses_an_oversized_body(api, staff, monkeypatch):
    monkeypatch.setattr(api_module, "MAX_IMPORT_BYTES", 100)
    r = post(api(staff), {"source": "s", "records": RECORDS})
    assert r.status_code == 413
    assert "several requests" in r.json()["detail"]
    assert not models.Response.objects.exists()


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 403, 403, 403, 201], strict=True),
)
def test_it_is_for_staff_only(as_cast, who, expected):
    _, client = as_cast(who)
    assert post(client, {"source": "s", "records": RECORDS}).status_code == expected
    assert models.Response.objects.exists() == (expected == 201)


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_it_only_takes_post(api, staff, method):
    assert getattr(api(staff), method)(URL).status_code == 405
