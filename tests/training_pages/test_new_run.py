"""The New run page: the selection, base model and overrides; preview; Start."""

import hashlib
import json
import uuid
from html import unescape
from pathlib import Path

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from annotate import models, training_preview, training_runs

URL = "/training/new/"


def form_data(**changes) -> dict:
    data = {
        "status": "accepted",
        "since": "",
        "base_model": "",
        "overrides": "",
        "request_token": str(uuid.uuid4()),
        "action": "start",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def queued_tasks(path: str) -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=path))


TRAINING_TASK = "annotate.jobs.run_training"
PREVIEW_TASK = "annotate.training_preview.preview_run"


def test_the_form_offers_the_rounds_and_a_fresh_token(staff_client, round1):
    page = staff_client.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="rounds" value="1"' in html
    tokens = {staff_client.get(URL).context["form"]["request_token"].value() for _ in range(2)}
    assert len(tokens) == 2


def test_start_records_snapshots_and_queues_the_run(staff_client, staff, judged, training_dir):
    page = staff_client.post(
        URL, form_data(rounds="1", overrides="threshold=1.2\n--max_steps=3\n\n# a comment")
    )

    run = models.TrainingRun.objects.get()
    assert page.status_code == 302
    assert page.url == reverse("annotate:training-run", args=[run.pk]) == f"/training/{run.pk}/"
    assert run.status == "queued"
    assert run.created_by == staff
    assert run.filters == {"status": "accepted", "rounds": [1], "since": None}
    assert (run.positive_count, run.negative_count) == (4, 2)
    assert run.base_model == "embedded:SmolLM2-135M-Instruct"
    assert run.config["threshold"] == 1.2 and run.config["max_steps"] == 3
    assert run.config["base_model"] is None
    snapshot = Path(run.snapshot_path)
    assert snapshot == training_dir.resolve() / f"run-{run.pk}" / "judgments.jsonl"
    assert run.config["data"] == str(snapshot)
    assert hashlib.sha256(snapshot.read_bytes()).hexdigest() == run.snapshot_sha256
    ids = sorted(json.loads(line)["id"] for line in snapshot.read_text().splitlines())
    assert ids == sorted(j.pk for j in judged[:6])
    [task] = queued_tasks(TRAINING_TASK)
    assert task.queue_name == "gpu"
    assert task.args_kwargs["args"] == [run.pk]
    assert run.task_id == str(task.id)


def test_the_selection_takes_status_rounds_and_since(staff_client, judged, training_dir):
    models.Judgment.objects.filter(pk=judged[1].pk).update(created="2020-01-01T00:00Z")
    staff_client.post(URL, form_data(status="all", since="2021-01-01"))
    run = models.TrainingRun.objects.get()
    assert run.filters == {"status": "all", "rounds": [], "since": "2021-01-01"}
    assert run.positive_count + run.negative_count == 6  # 7 judged, one before 2021


def test_a_double_click_starts_one_run(staff_client, judged, training_dir):
    data = form_data()
    first = staff_client.post(URL, data)
    second = staff_client.post(URL, data)
    run = models.TrainingRun.objects.get()
    assert first.url == second.url == run.get_absolute_url()
    assert len(queued_tasks(TRAINING_TASK)) == 1
    assert str(run.request_token) == data["request_token"]


def test_a_new_form_starts_a_new_run(staff_client, judged, training_dir):
    staff_client.post(URL, form_data())
    staff_client.post(URL, form_data())
    assert models.TrainingRun.objects.count() == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("threshhold=1.2", "Unknown config key 'threshhold'. Did you mean threshold?"),
        ("threshold=0.5", "`threshold` must be at least 1"),
        ("max_steps=many", "Config key 'max_steps' must be an integer."),
        ("threshold", "must look like --name=value"),
        ("output_dir=/tmp/x", "output_dir cannot be overridden"),
        ("data=/tmp/x.jsonl\nbase_model=x", "base_model, data cannot be overridden"),
    ],
)
def test_a_bad_override_is_a_form_error_and_nothing_is_queued(
    staff_client, judged, training_dir, overrides, message
):
    page = staff_client.post(URL, form_data(overrides=overrides))
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert message in html
    assert f">\n{overrides}</textarea>" in html  # what was typed, kept
    assert not models.TrainingRun.objects.exists()
    assert not DBTaskResult.objects.exists()


def test_an_empty_selection_is_a_form_error(staff_client, judged, training_dir):
    models.Round.objects.create(number=2)
    page = staff_client.post(URL, form_data(rounds="2"))
    assert page.status_code == 200
    assert (
        "No accepted judgments in round 2 to train on. Review some judgments first, or "
        "choose another status." in page.content.decode()
    )
    assert not models.TrainingRun.objects.exists()
    assert not DBTaskResult.objects.exists()


def test_an_unknown_round_or_bad_date_is_a_form_error(staff_client, judged, training_dir):
    page = staff_client.post(URL, form_data(rounds="7", since="yesterday"))
    form = page.context["form"]
    assert "rounds" in form.errors and "since" in form.errors
    assert not models.TrainingRun.objects.exists()


def test_htmx_gets_the_form_partial_back_with_errors(staff_client, judged, training_dir):
    page = staff_client.post(URL, form_data(overrides="lora_r=0"), headers={"HX-Request": "true"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" not in html
    assert 'id="new-run"' in html
    assert "`lora_r` must be at least 1. Got 0." in html


def test_htmx_start_redirects_the_browser_to_the_run(staff_client, judged, training_dir):
    page = staff_client.post(URL, form_data(), headers={"HX-Request": "true"})
    run = models.TrainingRun.objects.get()
    assert page["HX-Redirect"] == run.get_absolute_url()


def test_a_base_model_missing_here_is_a_warning_not_an_error(
    staff_client, judged, training_dir, tmp_path
):
    missing = tmp_path / "not-here"
    page = staff_client.post(URL, form_data(base_model=str(missing)), follow=True)
    run = models.TrainingRun.objects.get()
    assert run.base_model == str(missing)
    assert run.config["base_model"] == str(missing)
    assert f"{missing} is not on this server; the worker checks it" in page.content.decode()


def test_preview_queues_a_job_ahead_of_training_and_keeps_the_form(
    staff_client, judged, training_dir
):
    data = form_data(action="preview", rounds="1", overrides="max_steps=2")
    page = staff_client.post(URL, data)
    assert page.status_code == 200
    assert not models.TrainingRun.objects.exists()
    [task] = queued_tasks(PREVIEW_TASK)
    assert task.queue_name == "gpu"
    assert task.priority == training_preview.PRIORITY > 0
    assert task.args_kwargs["args"] == [
        {"status": "accepted", "rounds": [1], "since": None},
        "",
        {"max_steps": 2},
    ]
    html = page.content.decode()
    assert reverse("annotate:training-preview", args=[task.id]) in html
    assert "Waiting for a worker" in html
    assert data["request_token"] in html  # Start after the preview is still this form's run
    assert ">\nmax_steps=2</textarea>" in html


def test_a_bad_form_queues_no_preview(staff_client, judged, training_dir):
    staff_client.post(URL, form_data(action="preview", overrides="nonsense=1"))
    assert not DBTaskResult.objects.exists()


def test_the_new_page_is_get_or_post_only(staff_client):
    assert staff_client.put(URL).status_code == 405


def test_the_preview_says_when_no_worker_listens(staff_client, judged, training_dir):
    page = staff_client.post(URL, form_data(action="preview"))
    assert "none is running: start one with" in page.content.decode()
    models.Worker.objects.create(worker_id="w1", host="gpu-box-1", pid=1, queues=",default,gpu,")
    page = staff_client.post(URL, form_data(action="preview"))
    assert "none is running" not in page.content.decode()


def test_the_embedded_model_is_recorded_by_the_name_training_gives_it():
    from training import models as training_models

    assert training_runs.EMBEDDED == training_models.EMBEDDED


def test_a_post_without_a_token_still_starts_a_run(staff_client, judged, training_dir):
    assert staff_client.post(URL, form_data(request_token=None)).status_code == 302
    assert models.TrainingRun.objects.get().request_token is not None


def test_a_damaged_token_is_said_and_nothing_starts(staff_client, judged, training_dir):
    page = staff_client.post(URL, form_data(request_token="not-a-uuid"))
    assert page.status_code == 200
    assert "This form is damaged; reload the page and try again." in page.content.decode()
    assert not models.TrainingRun.objects.exists()
