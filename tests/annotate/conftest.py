from pathlib import Path

import pytest


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A tiny randomly initialised Llama and its tokenizer, saved as a model directory."""
    # Imported here: torch and transformers load only for the tests that ask for a model.
    from tests.training.conftest import make_model, make_tokenizer

    tokenizer = make_tokenizer()
    path = tmp_path / "tiny-base"
    make_model(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def lens_worker(db):
    """A worker listening on the lens queue, as far as the pages can tell: its heartbeat
    row is fresh (annotate.workers)."""
    from annotate import workers

    return workers.register("lens-test-worker", ["lens"])
