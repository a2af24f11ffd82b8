"""The jobs migration: training runs recorded before it as "pending" become "queued"."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.slow


def jobs_migration() -> tuple[tuple[str, str], tuple[str, str]]:
    """(the migration that added jobs, the one before it), whatever they are numbered."""
    graph = MigrationExecutor(connection).loader.graph
    (node,) = [
        n
        for n in graph.nodes
        if n[0] == "annotate" and n[1].endswith("_jobs_training_generation_workers")
    ]  # noqa: E501
    (parent,) = [p for p in graph.node_map[node].parents if p.key[0] == "annotate"]
    return node, parent.key


def test_pending_runs_become_queued(transactional_db):
    after, before = jobs_migration()
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    old = executor.loader.project_state([before]).apps.get_model("annotate", "TrainingRun")
    pending = old.objects.create(status="pending").pk
    failed = old.objects.create(status="failed").pk

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([after])
    new = executor.loader.project_state([after]).apps.get_model("annotate", "TrainingRun")
    assert new.objects.get(pk=pending).status == "queued"
    assert new.objects.get(pk=failed).status == "failed"

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
