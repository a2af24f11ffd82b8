"""The load benchmark (`python -m bench load`) still runs, at a size that takes seconds."""

import re

import pytest

from bench import load


@pytest.mark.slow
def test_the_load_benchmark_runs_on_sqlite(capsys):
    load.main(
        ["--db", "sqlite", "--responses", "400", "--annotators", "4", "--seconds", "2"]
        + ["--warmup", "0.5", "--think", "0", "--workers", "1", "--threads", "2"]
    )

    out = capsys.readouterr().out
    assert "== sqlite: migrating and loading 400 responses" in out
    assert re.search(r"task page +p50 +[\d.]+ +p95 +[\d.]+ +p99 +[\d.]+ ms", out)
    assert re.search(r"submit +p50 +[\d.]+", out)
    judged = int(re.search(r"([\d,]+) judgments, [\d.]+/s", out).group(1).replace(",", ""))
    assert 0 < judged <= 400
    assert "errors 0, lost 0, over-assigned 0, judgment_count drift 0" in out
