import subprocess
import sys

import pytest
from django.conf import settings


@pytest.mark.slow
def test_the_lens_page_benchmark_runs_and_prints_its_table(model_dir):
    out = subprocess.run(
        [sys.executable, "-m", "bench", "lens-page", "--runs", "2", "--tokens", "30,60"]
        + ["--base-model", str(model_dir)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any("first preview (loads the model)" in line for line in lines)
    header = next(i for i, line in enumerate(lines) if "page p50" in line)
    rows = [line.split() for line in lines[header + 1 :] if line.strip()]
    assert len(rows) == 2
    assert all(len(row) == 6 and float(row[1]) > 0 for row in rows)
