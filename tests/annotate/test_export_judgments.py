import datetime as dt
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from annotate import exports, models

DATA = Path(__file__).parent / "data"


def export(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("export_judgments", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def triples(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def judged(annotator, other_annotator, reviewer, make_responses, round1):
    """Four judgments: accepted negative and accepted positive in round 1, a pending one in
    round 2, a rejected one in no round."""
    round2 = models.Round.objects.create(number=2)
    r1a, r1b = make_responses(2, round=round1)
    (r2,) = make_responses(1, round=round2)
    (r0,) = make_responses(1)
    J = models.Judgment
    made = {
        "neg": J.objects.create(
            response=r1a, annotator=annotator, verdict="negative", critique="Too short."
        ),
        "pos": J.objects.create(
            response=r1b, annotator=annotator, verdict="positive", critique="Nice and clear."
        ),
        "pending": J.objects.create(response=r2, annotator=other_annotator, verdict="positive"),
        "rejected": J.objects.create(
            response=r0, annotator=other_annotator, verdict="negative", critique="Meh."
        ),
    }
    made["neg"].accept(reviewer)
    made["pos"].accept(reviewer)
    made["rejected"].reject(reviewer, "Not a real problem.")
    return made


def test_it_exports_accepted_judgments_by_default_as_triples(judged, round1):
    out, err = export("-")

    rows = triples(out)
    assert {row["id"] for row in rows} == {judged["neg"].pk, judged["pos"].pk}
    neg = next(row for row in rows if row["id"] == judged["neg"].pk)
    response = judged["neg"].response
    assert neg == {
        "id": judged["neg"].pk,
        "instruction": response.prompt.instruction,
        "input": "",
        "output": response.text,
        "judgment": "Too short.",
        "verdict": "negative",
        "annotator": "alice",
        "round": 1,
        "response_id": response.pk,
    }
    pos = next(row for row in rows if row["id"] == judged["pos"].pk)
    assert pos["judgment"] is None  # the paper's format: null means no problems
    assert pos["verdict"] == "positive"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("pending", {"pending"}),
        ("rejected", {"rejected"}),
        ("accepted", {"neg", "pos"}),
        ("all", {"neg", "pos", "pending", "rejected"}),
    ],
)
def test_it_filters_by_review_state(judged, status, expected):
    out, _ = export("-", "--status", status)
    assert {row["id"] for row in triples(out)} == {judged[name].pk for name in expected}


def test_it_filters_by_round(judged):
    out, _ = export("-", "--status", "all", "--round", "2")
    assert [row["id"] for row in triples(out)] == [judged["pending"].pk]


def test_it_filters_by_creation_date(judged):
    old = timezone.make_aware(dt.datetime(2024, 1, 10, 12, 0))
    models.Judgment.objects.filter(pk=judged["neg"].pk).update(created=old)

    out, _ = export("-", "--since", "2024-01-11")
    assert [row["id"] for row in triples(out)] == [judged["pos"].pk]
    out, _ = export("-", "--since", "2024-01-10")
    assert len(triples(out)) == 2
    out, _ = export("-", "--since", "2024-01-10T12:00:01")
    assert [row["id"] for row in triples(out)] == [judged["pos"].pk]


def test_it_refuses_a_bad_date(judged):
    with pytest.raises(CommandError, match="--since must be a date"):
        export("-", "--since", "yesterday")
    with pytest.raises(CommandError, match="--since must be a date"):
        export("-", "--since", "2024-02-30")


def test_positive_judgment_puts_notes_on_positives_in_the_judgment(judged):
    out, _ = export("-", "--positive-judgment")
    pos = next(row for row in triples(out) if row["id"] == judged["pos"].pk)
    assert pos["judgment"] == "Nice and clear."
    assert pos["verdict"] == "positive"


def test_it_prints_counts_per_round_to_stderr(judged):
    out, err = export("-", "--status", "all")

    assert "4 judgments: 2 positive, 2 negative." in err
    assert "round 1: 1 positive, 1 negative" in err
    assert "round 2: 1 positive, 0 negative" in err
    assert "no round: 0 positive, 1 negative" in err
    assert "judgments:" not in out  # stdout stays pure JSON lines


def test_it_writes_a_file(judged, tmp_path):
    path = tmp_path / "accepted.jsonl"
    out, err = export(str(path))

    assert out == ""
    assert len(triples(path.read_text(encoding="utf-8"))) == 2
    assert "2 judgments" in err
    assert [p.name for p in tmp_path.iterdir()] == ["accepted.jsonl"]  # no temp file left


def test_it_reports_a_path_it_cannot_write_and_leaves_no_temporary_file(judged, tmp_path):
    with pytest.raises(CommandError, match="Cannot write"):
        export(str(tmp_path / "no" / "such.jsonl"))
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(CommandError, match="Cannot write"):
        export(str(tmp_path / "a-directory"))
    assert [p.name for p in tmp_path.iterdir()] == ["a-directory"]


@pytest.mark.django_db
def test_import_then_export_gives_back_the_same_records(tmp_path):
    call_command("import_responses", str(DATA / "judged.json"), stdout=StringIO())
    path = tmp_path / "back.jsonl"
    export(str(path), "--status", "all")

    def key(row: dict) -> tuple:
        return (row["instruction"], row["input"], row["output"], row["judgment"])

    original = {key(row) for row in json.loads((DATA / "judged.json").read_text("utf-8"))}
    exported = [key(row) for row in triples(path.read_text(encoding="utf-8"))]
    assert len(exported) == len(original)
    assert set(exported) == original


def test_it_reads_all_rows_in_a_fixed_number_of_queries(
    annotator, make_responses, django_assert_max_num_queries
):
    responses = make_responses(50)
    models.Judgment.objects.bulk_create(
        models.Judgment(response=r, annotator=annotator, verdict="positive") for r in responses
    )
    out = StringIO()
    # One query however many rows: no query per judgment for its prompt or annotator.
    with django_assert_max_num_queries(1):
        counts = exports.write_jsonl(exports.select_judgments("all"), out)
    assert counts.total == 50
    assert len(out.getvalue().splitlines()) == 50


def test_iter_triples_is_lazy(judged):
    queryset = exports.select_judgments("all")
    stream = exports.iter_triples(queryset)
    assert next(stream)["id"] == judged["neg"].pk
    assert len(list(stream)) == 3


def test_it_refuses_a_round_number_the_database_cannot_hold(db):
    with pytest.raises(CommandError):
        call_command("export_judgments", "-", "--round=99999999999")
