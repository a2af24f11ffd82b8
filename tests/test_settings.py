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


# What README "Serving it" sets; the key is long and random as check --deploy wants.
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "kV3q8-production-like-key-for-the-deploy-check-0f9a7c2e51d64b38a1e5",
    "ALLOWED_HOSTS": "critique.example.org",
    "DATABASE_URL": "postgres://user@host:5432/critique",
}
PRINT_SECURITY = (
    "import json, config.settings as s; print(json.dumps({name: getattr(s, name) for name in "
    "('SECURE_PROXY_SSL_HEADER', 'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', "
    "'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', 'CACHES', 'AXES_FAILURE_LIMIT', "
    "'AXES_IPWARE_META_PRECEDENCE_ORDER')}, default=str))"
)


def settings_with(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SECURITY],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_check_deploy_is_clean_with_the_readmes_production_environment():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**os.environ, **PRODUCTION},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def test_https_settings_are_on_when_debug_is_off():
    found = settings_with(**PRODUCTION)
    assert found["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["SECURE_SSL_REDIRECT"] is True
    assert found["SESSION_COOKIE_SECURE"] is True
    assert found["CSRF_COOKIE_SECURE"] is True
    assert found["SECURE_HSTS_SECONDS"] == 31_536_000


def test_https_settings_are_off_on_a_laptop():
    found = settings_with(DEBUG="true")
    assert found["SECURE_PROXY_SSL_HEADER"] is None
    assert found["SECURE_SSL_REDIRECT"] is False
    assert found["SESSION_COOKIE_SECURE"] is False
    assert found["SECURE_HSTS_SECONDS"] == 0


def test_each_https_setting_can_be_changed_from_the_environment():
    found = settings_with(**PRODUCTION, SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="60")
    assert found["SECURE_SSL_REDIRECT"] is False
    assert found["SECURE_HSTS_SECONDS"] == 60


def test_the_cache_is_the_database_unless_redis_is_named():
    cache = settings_with()["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    assert cache["LOCATION"] == "django_cache"
    cache = settings_with(REDIS_URL="redis://127.0.0.1:6379/0")["CACHES"]["default"]
    assert cache == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
    }


def test_the_login_lockout_is_configured_from_the_environment():
    found = settings_with(AXES_FAILURE_LIMIT="9", AXES_IP_HEADERS="HTTP_X_REAL_IP,REMOTE_ADDR")
    assert found["AXES_FAILURE_LIMIT"] == 9
    assert found["AXES_IPWARE_META_PRECEDENCE_ORDER"] == ["HTTP_X_REAL_IP", "REMOTE_ADDR"]
