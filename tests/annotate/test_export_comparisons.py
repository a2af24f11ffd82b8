"""export_comparisons and GET /api/export/comparisons.jsonl: preference pairs that
`datasets` (and so TRL's DPO trainer) load as they are."""

import json
from io import StringIO

import datasets
import pytest
from django.core.management import CommandError, call_command

from annotate import models
from tests.annotate.compare_helpers import make_comparison, vote
from tests.api.conftest import client_for
from tests.conftest import make_user


@pytest.fixture
def voted(db):
    comparison = make_comparison(4)
    for name, winner in [("e1", "b"), ("e2", "a"), ("e3", "tie"), ("e4", "both_bad")]:
        vote(make_user(name, "annotators"), comparison, winner)
    return comparison


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_one_line_per_decisive_vote_with_chosen_and_rejected(voted):
    out, err = StringIO(), StringIO()
    call_command("export_comparisons", "-", stdout=out, stderr=err)
    rows = _lines(out.getvalue())
    assert len(rows) == 2
    assert "2 preference pairs written." in err.getvalue()
    by_evaluator = {row["evaluator"]: row for row in rows}
    b_won = by_evaluator["e1"]
    assert b_won["chosen"].startswith("Tuned answer") and b_won["rejected"].startswith("Base")
    assert (b_won["system_chosen"], b_won["system_rejected"]) == ("round:2", "round:1")
    assert (b_won["round_chosen"], b_won["round_rejected"]) == (2, 1)
    a_won = by_evaluator["e2"]
    assert a_won["chosen"].startswith("Base answer") and a_won["system_chosen"] == "round:1"
    pair = models.Vote.objects.get(evaluator__username="e1").pair
    assert b_won["prompt"] == pair.prompt.instruction
    assert b_won["outcome"] == "chosen" and b_won["comparison"] == voted.pk


def test_ties_and_both_bad_only_on_request(voted):
    out = StringIO()
    call_command("export_comparisons", "-", "--include-ties", stdout=out, stderr=StringIO())
    outcomes = sorted(row["outcome"] for row in _lines(out.getvalue()))
    assert outcomes == ["both_bad", "chosen", "chosen", "tie"]


def test_the_file_loads_with_datasets_as_a_dpo_dataset(voted, tmp_path):
    path = tmp_path / "prefs.jsonl"
    call_command("export_comparisons", str(path), stderr=StringIO())
    data = datasets.load_dataset("json", data_files=str(path), split="train")
    assert data.num_rows == 2
    assert {"prompt", "chosen", "rejected"} <= set(data.column_names)
    assert all(row["chosen"] != row["rejected"] for row in data)


def test_an_unknown_comparison_is_an_error(voted):
    with pytest.raises(CommandError, match="There is no comparison 999"):
        call_command("export_comparisons", "-", "--comparison", "999")


def test_the_api_streams_the_same_lines_for_staff(voted, staff, reviewer, tmp_path):
    answer = client_for(staff).get("/api/export/comparisons.jsonl", {"comparison": voted.pk})
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/x-ndjson"
    body = b"".join(answer.streaming_content).decode()
    out = StringIO()
    call_command("export_comparisons", "-", stdout=out, stderr=StringIO())
    assert body == out.getvalue()
    path = tmp_path / "api.jsonl"
    path.write_text(body)
    assert datasets.load_dataset("json", data_files=str(path), split="train").num_rows == 2
    with_ties = client_for(staff).get("/api/export/comparisons.jsonl", {"include_ties": "true"})
    assert len(b"".join(with_ties.streaming_content).splitlines()) == 4
    assert client_for(reviewer).get("/api/export/comparisons.jsonl").status_code == 403
    assert client_for(None).get("/api/export/comparisons.jsonl").status_code == 401
