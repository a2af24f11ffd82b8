"""A run cannot be started twice by a double click: two requests racing with one form token
start one run (the token is unique in the database), on SQLite and on PostgreSQL."""

import threading
import uuid

from django.db import connection
from django_tasks_db.models import DBTaskResult

from annotate import models, training_runs


def test_two_racing_starts_with_one_token_make_one_run(
    transactional_db, judged, staff, tmp_path, settings
):
    settings.TRAINING_DIR = tmp_path / "runs"
    token = uuid.uuid4()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def start() -> None:
        try:
            barrier.wait()
            run, created = training_runs.start(
                filters={"status": "accepted", "rounds": [], "since": None},
                base_model="",
                overrides={},
                user=staff,
                token=token,
            )
            results.append((run.pk, created))
        except Exception as error:  # reported below, with the thread's own error
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    run = models.TrainingRun.objects.get()
    assert sorted(results) == [(run.pk, False), (run.pk, True)]
    assert DBTaskResult.objects.count() == 1
