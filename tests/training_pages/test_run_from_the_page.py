"""A run started from the New run page is trained by a real worker, and its page then shows
the curves' numbers (the tables the charts draw from). Without a browser: this is what
works with no JavaScript at all; test_browser.py watches the same with the charts."""

import uuid

import pytest

from annotate import models
from tests.workers import wait_for

pytestmark = pytest.mark.slow


def test_a_run_started_from_the_page_succeeds_and_its_page_shows_the_steps(
    client, staff, transactional_db, judged, model_dir, training_dir, start_worker
):
    client.force_login(staff)
    page = client.post(
        "/training/new/",
        {
            "status": "accepted",
            "rounds": "1",
            "base_model": str(model_dir),
            "overrides": "max_steps=3\nwarmup_steps=0\ngradient_accumulation_steps=2\n"
            "downsample=-1",
            "request_token": str(uuid.uuid4()),
            "action": "start",
        },
    )
    run = models.TrainingRun.objects.get()
    assert page.url == run.get_absolute_url()

    worker = start_worker()
    wait_for(lambda: run.refresh_from_db() or run.is_finished, timeout=300, what="the run")
    assert run.status == "succeeded", run.error + worker.output()

    html = client.get(run.get_absolute_url()).content.decode()
    assert 'data-status="succeeded"' in html
    assert '<progress id="run-progress" max="3" value="3">' in html
    assert 'Numbers (steps: <span class="row-count">3</span>)' in html
    for step in (1, 2, 3):
        assert f"<tr><td>{step}</td>" in html
    assert run.worker_host in html
    # Succeeded: the next round can be generated from here.
    assert f"/training/{run.pk}/generate/" in html
