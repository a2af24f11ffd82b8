"""The job settings come from the environment; a bad value is refused with its name."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = (
    "RUN_HEARTBEAT_TIMEOUT",
    "JOB_FLUSH_SECONDS",
    "WORKER_HEARTBEAT_SECONDS",
    "WORKER_ALIVE_SECONDS",
    "TRAINING_NUM_PROCESSES",
    "SITE_URL",
)
PRINT = (
    f"import json, config.settings as s; print(json.dumps({{n: getattr(s, n) for n in {NAMES}}}))"
)


def job_settings(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRINT],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in NAMES}, **env},
        capture_output=True,
        text=True,
    )


def test_the_job_settings_have_defaults():
    result = job_settings()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "RUN_HEARTBEAT_TIMEOUT": 120,
        "JOB_FLUSH_SECONDS": 2.0,
        "WORKER_HEARTBEAT_SECONDS": 10.0,
        "WORKER_ALIVE_SECONDS": 60,
        "TRAINING_NUM_PROCESSES": 0,
        "SITE_URL": "http://127.0.0.1:8000",
    }


def test_the_job_settings_follow_the_environment():
    result = job_settings(
        RUN_HEARTBEAT_TIMEOUT="30", JOB_FLUSH_SECONDS="0.5", SITE_URL="https://critique.lab/"
    )
    values = json.loads(result.stdout)
    assert (values["RUN_HEARTBEAT_TIMEOUT"], values["JOB_FLUSH_SECONDS"]) == (30, 0.5)
    assert values["SITE_URL"] == "https://critique.lab"


def test_a_bad_job_setting_is_refused_with_its_name():
    result = job_settings(JOB_FLUSH_SECONDS="often")
    assert result.returncode != 0
    assert "JOB_FLUSH_SECONDS must be a number, got 'often'" in result.stderr
