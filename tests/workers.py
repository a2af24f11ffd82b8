"""A real `manage.py db_worker` subprocess on the test database, for job tests.

The test database must be one the worker can open too: use `transactional_db` (rows are
committed) — on SQLite the test database is a file (config/settings.py), on PostgreSQL
it is test_<name> on the same server.

    def test_x(transactional_db, start_worker):
        worker = start_worker()            # listens on gpu; stopped after the test
        ...
        wait_for(lambda: run_status() == "succeeded")
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database the tests use (the test database, not the configured one)."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    if connection.vendor == "postgresql":
        auth = params["USER"] or ""
        if params["PASSWORD"]:
            auth += f":{params['PASSWORD']}"
        host = params["HOST"] or "127.0.0.1"
        port = f":{params['PORT']}" if params["PORT"] else ""
        return f"postgres://{auth}@{host}{port}/{params['NAME']}"
    raise NotImplementedError(connection.vendor)


def wait_for(predicate: Callable[[], object], timeout: float = 120, what: str = "") -> object:
    """Poll until predicate() is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout} s waiting for {what or predicate}.")
        time.sleep(0.2)


class WorkerProcess:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_worker(tmp_path):
    """start_worker(queues="gpu", **env) -> WorkerProcess; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(queues: str = "gpu", **env) -> WorkerProcess:
        log = tmp_path / f"worker-{len(started)}.log"
        environment = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "TRAINING_DIR": str(settings.TRAINING_DIR),
            "JOB_FLUSH_SECONDS": "0.5",
            "WORKER_HEARTBEAT_SECONDS": "1",
            "OMP_NUM_THREADS": "1",  # tiny models: threads only cost
            "DEBUG": "true",
            **{key: str(value) for key, value in env.items()},
        }
        command = [
            sys.executable, "manage.py", "db_worker", "--queue-name", queues, "--no-reload",
            "--interval", "0.2", "--no-startup-delay", "--verbosity", "2",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT
            )
        worker = WorkerProcess(process, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
