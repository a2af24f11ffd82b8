"""The dry-run preview: queued by the New run page, computed by the worker's task, shown
(with an estimated duration) by the preview partial the page polls.

The worker's part is played in-process here: claim the task row, call the task, store its
return value, as django-tasks-db's worker does (tests/training_pages/test_browser.py runs a
real worker).
"""

import socket
import uuid
from html import unescape

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from annotate import models, training_preview

URL = "/training/new/"


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def ask_preview(client, **fields) -> tuple[str, str]:
    data = {"status": "accepted", "request_token": str(uuid.uuid4()), "action": "preview"}
    page = client.post(URL, {**data, **fields})
    assert page.status_code == 200
    row = DBTaskResult.objects.get()
    return str(row.id), unescape(page.content.decode())


def work(row_id: str) -> DBTaskResult:
    """Run the queued preview as a worker does."""
    row = DBTaskResult.objects.get(pk=row_id)
    row.claim("test-worker")
    try:
        value = training_preview.preview_run.call(*row.args_kwargs["args"])
    except Exception as error:  # what the worker does with any error: a failed task
        row.set_failed(error)
    else:
        row.set_successful(value)
    return row


def show(client, row_id: str, **headers):
    return client.get(reverse("annotate:training-preview", args=[row_id]), headers=headers)


def test_the_worker_counts_records_views_tokens_and_steps(
    staff_client, judged, model_dir, training_dir
):
    row_id, html = ask_preview(
        staff_client,
        base_model=str(model_dir),
        overrides="downsample=-1\ngradient_accumulation_steps=2",
    )
    assert "Waiting for a worker" in html
    # Not done yet: the partial keeps polling.
    waiting = show(staff_client, row_id, **{"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in waiting

    plan = work(row_id).return_value
    assert plan["records"] == 6 and (plan["positives"], plan["negatives"]) == (4, 2)
    assert (plan["align_p"], plan["align_n"]) == (4, 2)
    assert plan["steps"] == 3  # 6 records, 1 a micro-batch, 2 micro-batches a step
    assert plan["tokens"] > 0 and plan["template"] == "chat"
    assert plan["base_model"] == str(model_dir) and plan["host"] == socket.gethostname()

    page = show(staff_client, row_id, **{"HX-Request": "true"})
    html = unescape(page.content.decode())
    assert "<html" not in html and 'hx-trigger="every 1s"' not in html
    assert "6 (4 positive, 2 negative)" in html
    assert "4 Align-P, 2 Align-N, 2 Misalign" in html
    assert f"{plan['tokens']} an epoch" in html
    assert "<dt>Optimizer steps</dt><dd>3</dd>" in html
    assert "no earlier run on this base model" in html


def test_the_estimate_uses_an_earlier_run_on_the_same_base_model(
    staff_client, judged, model_dir, training_dir
):
    row_id, _ = ask_preview(staff_client, base_model=str(model_dir), overrides="max_steps=1")
    plan = work(row_id).return_value
    models.TrainingRun.objects.create(
        status="succeeded", base_model=str(model_dir), metrics={"tokens_per_s": 10.0}
    )
    models.TrainingRun.objects.create(
        status="succeeded", base_model="/another/model", metrics={"tokens_per_s": 1e6}
    )
    html = unescape(show(staff_client, row_id).content.decode())
    # max_steps=1 of the epoch's 1 step (6 records x 1, 8 micro-batches a step).
    seconds = round(plan["tokens"] / 10.0)
    expected = f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"
    assert f"<dt>Estimated duration</dt><dd>{expected} " in html


def test_a_base_model_missing_on_the_worker_is_said_with_its_host(
    staff_client, judged, training_dir, tmp_path
):
    row_id, _ = ask_preview(staff_client, base_model=str(tmp_path / "gone"))
    assert "error" in work(row_id).return_value
    html = unescape(show(staff_client, row_id).content.decode())
    assert f"Base model {str(tmp_path / 'gone')!r} does not exist." in html
    assert f"(on {socket.gethostname()})" in html


def test_a_preview_that_crashed_says_so(staff_client, judged, training_dir, monkeypatch):
    row_id, _ = ask_preview(staff_client)
    row = DBTaskResult.objects.get(pk=row_id)
    row.claim("test-worker")
    row.set_failed(RuntimeError("CUDA error: out of memory"))
    html = unescape(show(staff_client, row_id).content.decode())
    assert "The preview failed: RuntimeError: CUDA error: out of memory" in html


def test_another_tasks_result_is_not_a_preview(staff_client, running_run):
    models.TrainingRun.objects.filter(pk=running_run.pk).update(status="queued", task_id="")
    from annotate import jobs

    running_run.refresh_from_db()
    jobs.enqueue_training(running_run)
    running_run.refresh_from_db()
    assert show(staff_client, running_run.task_id).status_code == 404
