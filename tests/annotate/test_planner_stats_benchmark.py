"""The planner-statistics benchmark (`python -m bench stats`) still runs, at a small size."""

import re

import pytest

from bench import planner_stats


@pytest.mark.slow
def test_the_planner_statistics_benchmark_runs_on_postgresql(capsys):
    import psycopg

    admin_url, _ = planner_stats._admin_url()
    try:
        psycopg.connect(admin_url, connect_timeout=3).close()
    except psycopg.OperationalError:
        pytest.skip(f"needs PostgreSQL at {admin_url}")
    planner_stats.main(["--records", "300", "--batch", "100", "--annotators", "5"])

    out = capsys.readouterr().out
    stale = re.search(r"stale +import +[\d.]+ s +planner believes +(-?\d+) responses", out)
    refreshed = re.search(r"refreshed +import +[\d.]+ s +planner believes +(\d+) responses", out)
    assert stale and refreshed, out
    assert int(stale.group(1)) != 300  # the refresh was off: the planner never learnt
    assert int(refreshed.group(1)) == 300
    assert re.search(r"claim p50 +[\d.]+ ms +p95 +[\d.]+ ms", out)
