"""An import that leaves the prompt or response table more than a tenth larger than the
planner believes refreshes the statistics, whichever door it came through
(annotate/planner_stats.py). The planner's belief is read where the planner reads it:
pg_class.reltuples on PostgreSQL, sqlite_stat1 on SQLite."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from annotate import models, planner_stats
from tests.api.conftest import client_for


def believed() -> int | None:
    return planner_stats.believed_rows(models.Response)


def records(n: int, start: int = 0) -> list[dict]:
    return [
        {"id": f"r{i}", "instruction": f"Say {i}.", "output": f"{i}"}
        for i in range(start, start + n)
    ]


def post(staff, rows: list[dict]):
    return client_for(staff).post(
        "/api/responses/", {"source": "api", "records": rows}, format="json"
    )


@pytest.fixture
def hundred_analysed(make_responses, empty_analysed):
    make_responses(100)
    planner_stats.analyze()
    assert believed() == 100


@pytest.fixture
def empty_analysed(db):
    # Known statistics to start from: PostgreSQL keeps reltuples from an earlier test's
    # ANALYZE even when that test's rows were rolled back.
    planner_stats.analyze()
    assert believed() in (0, None)


def test_an_import_command_into_empty_tables_analyses_them(tmp_path, empty_analysed):
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records(5)))
    call_command("import_responses", str(path), stdout=StringIO())
    assert believed() == 5


def test_an_api_import_that_grows_the_responses_by_more_than_a_tenth_analyses_them(
    staff, hundred_analysed
):
    assert post(staff, records(11)).status_code == 201
    assert believed() == 111


def test_an_api_import_of_a_tenth_or_less_leaves_the_statistics_alone(staff, hundred_analysed):
    assert post(staff, records(10)).status_code == 201
    assert believed() == 100


def test_small_imports_analyse_once_they_add_up_to_more_than_a_tenth(staff, hundred_analysed):
    assert post(staff, records(6)).status_code == 201
    assert believed() == 100
    assert post(staff, records(5, start=6)).status_code == 201
    assert believed() == 111


def test_batches_through_the_api_keep_the_estimate_within_a_tenth(staff, empty_analysed):
    """As in the measurement: batches into a growing table, the estimate never lags."""
    for batch in range(12):
        assert post(staff, records(50, start=50 * batch)).status_code == 201
        rows = models.Response.objects.count()
        assert believed() is not None
        assert rows <= 1.1 * believed()


def test_an_import_that_creates_nothing_does_not_analyse(staff, hundred_analysed):
    assert post(staff, records(20)).status_code == 201
    assert believed() == 120
    models.Response.objects.filter(prompt__source="fixture").delete()
    # 20 rows where the planner believes 120: stale the other way, but nothing was added.
    assert post(staff, records(20)).status_code == 200
    assert believed() == 120


def test_seed_demo_analyses_what_it_loads(empty_analysed):
    call_command("seed_demo", stdout=StringIO(), stderr=StringIO())
    assert believed() == models.Response.objects.count()


@pytest.mark.parametrize(
    ("rows", "estimate", "expected"),
    [(1, None, True), (111, 100, True), (110, 100, False), (0, None, False), (50, 100, False)],
)
def test_the_statistics_are_stale_past_a_tenth_more_rows_than_believed(rows, estimate, expected):
    assert planner_stats.outgrew(rows, estimate) is expected
