"""The jobs benchmark (`python -m bench jobs`) still runs, at a size that takes seconds."""

import re

import pytest

from bench import jobs


@pytest.mark.slow
def test_the_jobs_benchmark_runs_on_sqlite(capsys):
    jobs.main(["--db", "sqlite", "--runs", "3", "--interval", "0.2"])

    out = capsys.readouterr().out
    assert re.search(r"enqueue -> running \(3 runs, --interval 0.2\): p50 [\d.]+ s", out)
    assert re.search(r"worker resident set: \d+ MB idle", out)
    assert re.search(r"web process, app loaded: \d+ MB resident; torch etc. loaded: \[\]", out)
    assert re.search(r"import torch, transformers, peft: \d+ MB", out)
