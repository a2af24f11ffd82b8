import pytest


@pytest.fixture
def lens_worker(db):
    """A worker listening on the lens queue, as far as the pages can tell: its heartbeat
    row is fresh (annotate.workers)."""
    from annotate import workers

    return workers.register("lens-test-worker", ["lens"])
