import datetime as dt
import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotate import models
from tests.api.conftest import CAST

URL = "/api/export/judgments.jsonl"


@pytest.fixture
def judgments(annotator, other_annotator, make_responses, round1):
    round2 = models.Round.objects.create(number=2)
    a, b = make_responses(2, overlap=2, round=round1)
    (c,) = make_responses(1, overlap=2, round=round2)
    old = timezone.now() - dt.timedelta(days=30)
    rows = [
        (annotator, a, "negative", "Not an answer: ünïcode kept.", "accepted", old),
        (annotator, c, "positive", "Fine, short.", "accepted", timezone.now()),
        (other_annotator, a, "positive", "", "pending", timezone.now()),
        (other_annotator, b, "negative", "Wrong.", "rejected", timezone.now()),
    ]
    return [
        models.Judgment.objects.create(
            annotator=user,
            response=response,
            verdict=verdict,
            critique=critique,
            review_state=state,
            created=created,
        )
        for user, response, verdict, critique, state, created in rows
    ]


def body(r) -> bytes:
    assert r.status_code == 200, r.content
    return b"".join(r.streaming_content)


def command_output(*args) -> bytes:
    out = io.StringIO()
    call_command("export_judgments", "-", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().encode()


def test_staff_stream_the_accepted_triples(api, staff, judgments):
    r = api(staff).get(URL)
    assert r["Content-Type"] == "application/x-ndjson"
    assert 'filename="judgments.jsonl"' in r["Content-Disposition"]
    lines = [json.loads(line) for line in body(r).decode().splitlines()]
    first = judgments[0]
    assert lines[0] == {
        "id": first.pk,
        "instruction": first.response.prompt.instruction,
        "input": "",
        "output": first.response.text,
        "judgment": "Not an answer: ünïcode kept.",
        "verdict": "negative",
        "annotator": "alice",
        "round": 1,
        "response_id": first.response_id,
    }
    assert [line["id"] for line in lines] == [judgments[0].pk, judgments[1].pk]
    assert lines[1]["judgment"] is None


@pytest.mark.parametrize(
    ("query", "args"),
    [
        ("", []),
        ("?status=all", ["--status", "all"]),
        ("?status=rejected", ["--status", "rejected"]),
        ("?status=all&round=1", ["--status", "all", "--round", "1"]),
        ("?status=accepted&positive_judgment=true", ["--positive-judgment"]),
        ("?status=all&since=" + dt.date.today().isoformat(), ["--status", "all", "--since"]),
        ("?round=99", ["--round", "99"]),
    ],
)
def test_it_writes_what_export_judgments_writes(api, staff, judgments, query, args):
    if args and args[-1] == "--since":
        args = [*args, dt.date.today().isoformat()]
    assert body(api(staff).get(URL + query)) == command_output(*args)


def test_since_takes_a_date_time(api, staff, judgments):
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    r = api(staff).get(URL, {"status": "all", "since": since})
    ids = [json.loads(line)["id"] for line in body(r).decode().splitlines()]
    assert ids == [j.pk for j in judgments[1:]]


@pytest.mark.parametrize("accept", ["application/x-ndjson", "text/csv"])
def test_it_streams_json_lines_whatever_the_client_accepts(api, staff, judgments, accept):
    r = api(staff).get(URL, HTTP_ACCEPT=accept)
    assert len(body(r).splitlines()) == 2
    r = api(staff).get(URL, {"status": "nope"}, HTTP_ACCEPT=accept)
    assert r.status_code == 400
    assert r["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("round=one", "round"),
        ("round=-1", "round"),
        (f"round={10**30}", "round"),
        ("since=yesterday", "since"),
        ("since=2024-13-01", "since"),
        ("positive_judgment=perhaps", "positive_judgment"),
        ("annotator=alice", "annotator"),
    ],
)
def test_bad_filters_are_a_400(api, staff, judgments, query, field):
    r = api(staff).get(f"{URL}?{query}")
    assert r.status_code == 400
    assert field in r.json()


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 403, 403, 403, 200], strict=True),
)
def test_it_is_for_staff_only(as_cast, judgments, who, expected):
    _, client = as_cast(who)
    assert client.get(URL).status_code == expected
