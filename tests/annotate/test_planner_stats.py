"""An import that grows the tables by more than a tenth refreshes the planner statistics,
whichever door it came through (annotate/planner_stats.py)."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from annotate import planner_stats
from tests.api.conftest import client_for


def times_analyzed(table: str = "annotate_response") -> int:
    """PostgreSQL: how often ANALYZE ran on the table. SQLite: whether sqlite_stat1 has its
    statistics (the test empties it first to see a new ANALYZE)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = %s", [table]
            )
            return cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = %s", [table])
        return int(cursor.fetchone()[0] > 0)


def forget_statistics() -> None:
    if connection.vendor == "sqlite" and times_analyzed():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM sqlite_stat1")


def records(n: int, start: int = 0) -> list[dict]:
    return [
        {"id": f"r{i}", "instruction": f"Say {i}.", "output": f"{i}"}
        for i in range(start, start + n)
    ]


def post(staff, rows: list[dict]):
    return client_for(staff).post(
        "/api/responses/", {"source": "api", "records": rows}, format="json"
    )


def test_an_import_command_into_empty_tables_analyses_them(tmp_path, db):
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records(5)))
    forget_statistics()
    before = times_analyzed()
    call_command("import_responses", str(path), stdout=StringIO())
    assert times_analyzed() > before


def test_an_api_import_that_grows_the_responses_by_more_than_a_tenth_analyses_them(
    staff, make_responses
):
    make_responses(100)
    forget_statistics()
    before = times_analyzed()
    assert post(staff, records(11)).status_code == 201
    assert times_analyzed() > before


def test_an_api_import_of_a_tenth_or_less_leaves_the_statistics_alone(staff, make_responses):
    make_responses(100)
    forget_statistics()
    before = times_analyzed()
    assert post(staff, records(10)).status_code == 201
    assert times_analyzed() == before


def test_batches_through_the_api_analyse_while_the_tables_grow_fast(staff):
    """Ten batches of 20: every batch more than a tenth of what is there, so each analyses."""
    for batch in range(10):
        forget_statistics()
        before = times_analyzed()
        assert post(staff, records(20, start=20 * batch)).status_code == 201
        assert times_analyzed() > before


def test_an_import_that_creates_nothing_leaves_the_statistics_alone(staff):
    assert post(staff, records(5)).status_code == 201
    forget_statistics()
    before = times_analyzed()
    assert post(staff, records(5)).status_code == 200
    assert times_analyzed() == before


@pytest.mark.parametrize(
    ("added", "total_after", "expected"),
    [(1, 1, True), (11, 111, True), (10, 110, False), (0, 0, False), (1000, 11000, False)],
)
def test_growth_is_more_than_a_tenth_of_the_rows_there_before(added, total_after, expected):
    assert planner_stats.grew(added, total_after) is expected
