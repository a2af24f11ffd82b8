"""The data I/O benchmark (`python -m bench data`) still runs, at a size that takes seconds."""

import pytest

from bench import data_io


@pytest.mark.slow
def test_the_data_benchmark_runs_on_sqlite(capsys):
    data_io.main(["--db", "sqlite", "--records", "300", "--requests", "1"])

    out = capsys.readouterr().out
    assert "== sqlite: 300 records" in out
    assert "(all 300 unchanged)" in out
    assert "records/s" in out
    assert "peak" in out and "MiB for 300 rows" in out
    assert "admin judgments changelist" in out
