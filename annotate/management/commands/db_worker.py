"""`manage.py db_worker`: django-tasks-db's worker, plus a heartbeat row and child stops.

Same options as the library's command (`--queue-name default,gpu`, `--interval`, ...),
except that it does not reload on code changes unless asked (`--reload`): a reload would
stop the training it runs. On top of it this worker:

- registers a Worker row (host, pid, queues) and refreshes its `last_seen` every
  WORKER_HEARTBEAT_SECONDS from a thread, so pages can tell whether anyone listens on a
  queue (annotate.workers.alive); the row goes when the worker stops;
- marks jobs whose worker died (no heartbeat for RUN_HEARTBEAT_TIMEOUT) as interrupted,
  when it starts and with each heartbeat;
- passes SIGTERM / SIGINT on to the training it supervises, which checkpoints at the end
  of its current step; the job is then marked interrupted and the worker exits (the
  library lets the current task finish first).
"""

import logging
import os
from types import FrameType

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker as library

from annotate import jobs, supervise, workers

logger = logging.getLogger("django_tasks_db")


class Worker(library.Worker):
    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        if self.running_task:
            supervise.stop_children(signum)
        super().shutdown(signum, frame)

    def run(self) -> None:
        workers.register(self.worker_id, self.queue_names)
        jobs.sweep_stale()
        workers.forget_dead()
        heartbeat = workers.Heartbeat(self.beat, settings.WORKER_HEARTBEAT_SECONDS).start()
        try:
            super().run()
        finally:
            heartbeat.stop()
            try:
                workers.unregister(self.worker_id)
            except Exception:  # noqa: BLE001 (a signal cut a query short: a fresh connection)
                connections.close_all()
                workers.unregister(self.worker_id)

    def beat(self) -> None:
        workers.beat(self.worker_id)
        jobs.sweep_stale()


class Command(library.Command):
    help = (
        "Run jobs (training, generation) from the database queue; --queue-name gpu on a GPU "
        "box. Keeps a heartbeat so the app knows a worker is listening."
    )

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(reload=False)

    def handle(
        self, *, queue_name: str, exclude_queues: str, reload: bool, batch: bool, **options
    ) -> None:
        # The library's handle() builds its own Worker; this one is the same but ours.
        self.configure_logging(options["verbosity"])
        if reload and batch:
            logger.warning("--reload and --batch cannot be specified together: no autoreload.")
            reload = False
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = Worker(
            queue_names=queue_names,
            interval=options["interval"],
            batch=batch,
            backend_name=options["backend_name"],
            startup_delay=options["startup_delay"],
            max_tasks=options["max_tasks"],
            worker_id=options["worker_id"],
            excluded_queue_names=excluded,
        )
        if reload:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()
