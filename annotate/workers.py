"""Which job workers are listening: each `manage.py db_worker` keeps a Worker row alive.

The worker command (annotate/management/commands/db_worker.py) registers itself when it
starts, writes `last_seen` every WORKER_HEARTBEAT_SECONDS from a background thread, and
deletes its row when it stops. A worker killed with SIGKILL leaves its row behind; it stops
counting once `last_seen` is older than WORKER_ALIVE_SECONDS.

    workers.alive("gpu")  # is anyone going to run a job queued on "gpu"?

Pages use it to say "waiting for a worker" instead of leaving a job queued silently.
"""

import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from annotate.models import Worker


def host_name() -> str:
    return socket.gethostname()


def live():
    since = timezone.now() - timedelta(seconds=settings.WORKER_ALIVE_SECONDS)
    return Worker.objects.filter(last_seen__gte=since)


def alive(queue_name: str = "gpu") -> bool:
    """True when a worker that listens on `queue_name` has heartbeated recently."""
    return (
        live().filter(Q(queues__contains=f",{queue_name},") | Q(queues__contains=",*,")).exists()
    )


def register(worker_id: str, queue_names: list[str]) -> Worker:
    worker, _ = Worker.objects.update_or_create(
        worker_id=worker_id,
        defaults={
            "host": host_name(),
            "pid": os.getpid(),
            "queues": "," + ",".join(queue_names) + ",",
            "started_at": timezone.now(),
            "last_seen": timezone.now(),
        },
    )
    return worker


def beat(worker_id: str) -> None:
    Worker.objects.filter(worker_id=worker_id).update(last_seen=timezone.now())


def unregister(worker_id: str) -> None:
    Worker.objects.filter(worker_id=worker_id).delete()


def forget_dead() -> int:
    """Delete the rows of workers not seen for ten times WORKER_ALIVE_SECONDS."""
    since = timezone.now() - timedelta(seconds=10 * settings.WORKER_ALIVE_SECONDS)
    return Worker.objects.filter(last_seen__lt=since).delete()[0]


class Heartbeat:
    """A daemon thread that calls `beat()` every `every` seconds until stop()."""

    def __init__(self, beat, every: float):
        self._beat = beat
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._every + 5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._every):
                close_old_connections()
                try:
                    self._beat()
                except Exception:  # noqa: BLE001 (a busy database must not end the thread)
                    continue
        finally:
            connection.close()  # this thread's own connection
