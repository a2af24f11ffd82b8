"""Curators see jobs and workers in the admin and cancel or resume jobs there."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from annotate import models

RUNS = reverse("admin:annotate_trainingrun_changelist")
GENERATIONS = reverse("admin:annotate_generationrun_changelist")
WORKERS = reverse("admin:annotate_worker_changelist")


def action(client, url: str, name: str, objects):
    return client.post(url, {"action": name, ACTION_CHECKBOX_NAME: [o.pk for o in objects]})


def test_staff_cancel_a_queued_run_and_resume_it_from_the_admin(client, staff):
    client.force_login(staff)
    run = models.TrainingRun.objects.create(
        output_dir="/runs/run-1", snapshot_path="/runs/run-1/judgments.jsonl"
    )

    action(client, RUNS, "cancel_selected", [run])
    run.refresh_from_db()
    assert run.status == "cancelled"

    action(client, RUNS, "resume_selected", [run])
    run.refresh_from_db()
    assert run.status == "queued"
    assert DBTaskResult.objects.filter(id=run.task_id).exists()

    response = client.get(reverse("admin:annotate_trainingrun_change", args=[run.pk]))
    assert response.status_code == 200


def test_resuming_a_succeeded_run_in_the_admin_says_why_not(client, staff):
    client.force_login(staff)
    run = models.TrainingRun.objects.create(status="succeeded")
    response = action(client, RUNS, "resume_selected", [run])
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("only an interrupted, failed or cancelled job" in m for m in messages)
    assert not DBTaskResult.objects.exists()


def test_staff_see_generation_runs_and_workers(client, staff):
    client.force_login(staff)
    models.GenerationRun.objects.create(round_number=3, adapter="/runs/run-1")
    models.Worker.objects.create(worker_id="w1", host="gpu-box-7", pid=42, queues=",gpu,")
    assert "/runs/run-1" in client.get(GENERATIONS).content.decode()
    assert "gpu-box-7" in client.get(WORKERS).content.decode()


def test_annotators_cannot_open_the_job_admin(client, annotator):
    client.force_login(annotator)
    for url in (RUNS, GENERATIONS, WORKERS):
        assert client.get(url).status_code == 302  # to the admin login
