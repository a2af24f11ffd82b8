"""The run page benchmark (`python -m bench run-page`) still runs, at a size that takes
seconds."""

import re

import pytest

from bench import run_page


@pytest.mark.slow
def test_the_run_page_benchmark_runs(capsys):
    run_page.main(["--steps", "50", "--repeat", "2"])

    out = capsys.readouterr().out
    assert "run page with 50 recorded steps" in out
    for label in (
        "whole page",
        "status poll \\(htmx\\)",
        "series, last 10 steps",
        "training list",
    ):
        assert re.search(rf"{label}: [\d.]+ ms, \d+ KiB", out), out
