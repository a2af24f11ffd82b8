"""The comparison benchmark (`python -m bench compare`) still runs, at a size that takes
seconds."""

import re

import pytest

from bench import compare


@pytest.mark.slow
def test_the_comparison_benchmark_runs_on_sqlite(capsys):
    compare.main(
        ["--db", "sqlite", "--votes", "600", "--overlap", "3", "--pairs", "300"]
        + ["--evaluators", "4", "--seconds", "2", "--warmup", "0.5", "--think", "0"]
        + ["--workers", "1", "--threads", "2"]
    )

    out = capsys.readouterr().out
    assert "== sqlite: migrating and loading 600 votes (200 pairs x 3)" in out
    assert re.search(r"results page +best +[\d.]+ ms +median +[\d.]+ ms", out)
    assert re.search(r"rounds +best +[\d.]+ ms", out)
    assert re.search(r"vote +p50 +[\d.]+ +p95 +[\d.]+ +p99 +[\d.]+ ms", out)
    votes = int(re.search(r"([\d,]+) votes, [\d.]+/s", out).group(1).replace(",", ""))
    assert 0 < votes <= 300
    assert "errors 0, lost 0, over-assigned 0, vote_count drift 0" in out
