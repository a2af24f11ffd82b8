"""Settings read from the environment: each case imports config.settings afresh in a child."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432/critique"
PRINT_OPTIONS = (
    "import json, config.settings as s; "
    "print(json.dumps(s.DATABASES['default'].get('OPTIONS', {})))"
)


def import_settings(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PRINT_OPTIONS],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )


def database_options(**env) -> dict:
    result = import_settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_postgresql_prepares_statements_by_default():
    options = database_options(DATABASE_URL=PG)
    assert options["server_side_binding"] is True
    assert options["prepare_threshold"] == 2


def test_prepared_statements_can_be_turned_off_for_a_pooler():
    assert "server_side_binding" not in database_options(
        DATABASE_URL=PG, DB_PREPARED_STATEMENTS="false"
    )


def test_sqlite_is_left_as_it_is():
    options = database_options(DATABASE_URL="sqlite:////tmp/critique-settings.sqlite3")
    assert "server_side_binding" not in options
    assert options["transaction_mode"] == "IMMEDIATE"


def test_a_bad_switch_is_refused_with_its_name():
    result = import_settings(DATABASE_URL=PG, DB_PREPARED_STATEMENTS="maybe")
    assert result.returncode != 0
    assert "DB_PREPARED_STATEMENTS must be true or false, got 'maybe'" in result.stderr


def test_the_connection_prepares_statements_on_postgresql(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("runs against PostgreSQL (DATABASE_URL)")
    connection.ensure_connection()
    assert connection.connection.prepare_threshold == 2


def test_gunicorn_serves_two_workers_per_cpu_by_default(monkeypatch):
    for name in ("WEB_BIND", "WEB_WORKERS", "WEB_THREADS"):
        monkeypatch.delenv(name, raising=False)
    conf = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))
    assert conf["workers"] == 2 * os.cpu_count()
    assert (conf["threads"], conf["worker_class"], conf["bind"]) == (
        2,
        "gthread",
        "127.0.0.1:8000",
    )


def test_gunicorn_settings_follow_the_environment(monkeypatch):
    monkeypatch.setenv("WEB_BIND", "0.0.0.0:9000")
    monkeypatch.setenv("WEB_WORKERS", "3")
    monkeypatch.setenv("WEB_THREADS", "1")
    conf = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))
    assert (conf["bind"], conf["workers"], conf["threads"]) == ("0.0.0.0:9000", 3, 1)
