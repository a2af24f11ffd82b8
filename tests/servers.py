"""The app served by real gunicorn processes on free ports, against the test database.

For tests about what several processes share (the cache) or what a server does when its
database goes away; the data must be committed (transactional_db, live_server).
"""

import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """DATABASE_URL of the database pytest-django made, for a child process."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgresql://{user}{password}@{host}:{port}/{settings['NAME']}"


@contextmanager
def gunicorn(database_url: str | None = None, **env: str):
    """Yield the base URL ("http://127.0.0.1:PORT") of one gunicorn process (1 worker,
    2 threads) bound to a port the system picked."""
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--bind=127.0.0.1:0",
            "--workers=1",
            "--threads=2",
            "--worker-class=gthread",
            "config.wsgi:application",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url or test_database_url(),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "true",
            "LOG_LEVEL": "ERROR",
            **env,
        },
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _wait_for_port(process)
        # Keep reading its log, so a full pipe never stops the server.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_port(process: subprocess.Popen) -> str:
    # gunicorn logs "Listening at: http://127.0.0.1:41235 (pid)" with the port it bound.
    deadline = time.monotonic() + 60
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if found := re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line):
            # Booting the worker comes after; it answers once it has imported Django.
            return found.group(1)
    raise RuntimeError("gunicorn did not start:\n" + "".join(seen[-30:]))
