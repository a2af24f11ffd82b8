"""`python -m bench lens`: the latency table and the bulk line come out (no numbers checked)."""

import json

import pytest

from bench import lens as lens_bench

pytestmark = pytest.mark.usefixtures("one_thread")


def test_it_prints_preview_latency_and_bulk_throughput(model_dir, tmp_path, capsys):
    records = [
        {"instruction": "Say hi.", "input": "", "output": f"Hello {i}!", "judgment": "Rude."}
        for i in range(3)
    ] + [{"instruction": "Say hi.", "input": "", "output": "Hi.", "judgment": None}]
    data = tmp_path / "round.json"
    data.write_text(json.dumps(records))

    lens_bench.main([f"--base-model={model_dir}", "--runs=2", "--lengths=10,30", f"--data={data}"])

    out = capsys.readouterr().out
    assert "Preview latency over 2 runs" in out
    assert "       10 tokens" in out and "       30 tokens" in out
    assert "Bulk: 3 negative records of round.json" in out and "judgments/s" in out


def test_without_the_shared_data_the_bulk_run_is_skipped_with_a_message(model_dir, capsys):
    lens_bench.main(
        [f"--base-model={model_dir}", "--runs=1", "--lengths=5", "--data=/nowhere/iter1.json"]
    )

    assert "Bulk: skipped, /nowhere/iter1.json is missing" in capsys.readouterr().out
