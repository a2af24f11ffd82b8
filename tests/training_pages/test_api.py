"""POST /api/training-runs/ (validated and queued as the New run page does), the detail's
metric series, and POST .../cancel/ and .../resume/."""

import uuid

import pytest
from django_tasks_db.models import DBTaskResult

from annotate import models

URL = "/api/training-runs/"


def test_staff_start_a_run(api, staff, judged, training_dir):
    r = api(staff).post(
        URL,
        {"rounds": [1], "overrides": {"threshold": 1.2, "max_steps": 3}},
        format="json",
    )
    assert r.status_code == 201
    run = models.TrainingRun.objects.get()
    body = r.json()
    assert body["id"] == run.pk and body["status"] == "queued"
    assert r["Location"] == body["url"] == f"/training/{run.pk}/"
    assert body["config"]["threshold"] == 1.2 and body["config"]["max_steps"] == 3
    assert body["filters"] == {"status": "accepted", "rounds": [1], "since": None}
    assert (body["positive_count"], body["negative_count"]) == (4, 2)
    assert body["series"] == []
    assert run.created_by == staff
    assert DBTaskResult.objects.filter(task_path="annotate.jobs.run_training").count() == 1


def test_overrides_may_be_command_line_strings(api, staff, judged, training_dir):
    r = api(staff).post(URL, {"overrides": ["--weight_unlike=0.5"]}, format="json")
    assert r.status_code == 201
    assert r.json()["config"]["weight_unlike"] == 0.5


def test_the_same_request_token_starts_one_run(api, staff, judged, training_dir):
    data = {"request_token": str(uuid.uuid4())}
    first = api(staff).post(URL, data, format="json")
    second = api(staff).post(URL, data, format="json")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert models.TrainingRun.objects.count() == 1
    assert DBTaskResult.objects.count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"overrides": {"threshhold": 1.2}}, "overrides", "Unknown config key 'threshhold'."),
        ({"overrides": {"threshold": 0.2}}, "overrides", "`threshold` must be at least 1"),
        ({"overrides": {"output_dir": "/x"}}, "overrides", "output_dir cannot be overridden"),
        ({"overrides": "threshold=1.2"}, "overrides", "Give an object of config fields"),
        ({"rounds": [7]}, "rounds", "No round 7."),
        ({"status": "maybe"}, "status", '"maybe" is not a valid choice.'),
        ({"since": "2030-01-01"}, "non_field_errors", "No accepted judgments since 2030-01-01"),
        ({"epochs": 3}, "epochs", "Unknown field."),
    ],
)
def test_bad_input_is_a_400_and_nothing_is_queued(
    api, staff, judged, training_dir, data, field, message
):
    r = api(staff).post(URL, data, format="json")
    assert r.status_code == 400
    assert message in " ".join(r.json()[field])
    assert not models.TrainingRun.objects.exists()
    assert not DBTaskResult.objects.exists()


def test_the_detail_returns_the_metric_series(api, staff, running_run):
    body = api(staff).get(f"{URL}{running_run.pk}/").json()
    assert [point["step"] for point in body["series"]] == [1, 2, 3]
    assert body["series"][1]["eval"]["gain"] == pytest.approx(0.3)
    assert body["total_steps"] == 10
    assert body["worker_host"] == "gpu-box-1"
    assert body["log_tail"] == "step 3/10 loss 0.667"
    assert "series" not in api(staff).get(URL).json()[0]


def test_cancel_asks_a_running_run_to_stop(api, staff, running_run):
    r = api(staff).post(f"{URL}{running_run.pk}/cancel/")
    assert r.status_code == 202
    assert r.json()["cancel_requested"] is True
    running_run.refresh_from_db()
    assert running_run.cancel_requested


def test_cancel_of_a_finished_run_is_a_409(api, staff, succeeded_run):
    r = api(staff).post(f"{URL}{succeeded_run.pk}/cancel/")
    assert r.status_code == 409
    assert r.json() == {
        "detail": f"Training run {succeeded_run.pk} is succeeded: there is nothing to cancel."
    }


def test_resume_queues_an_interrupted_run(api, staff, running_run):
    models.TrainingRun.objects.filter(pk=running_run.pk).update(status="interrupted")
    r = api(staff).post(f"{URL}{running_run.pk}/resume/")
    assert r.status_code == 202
    assert r.json()["status"] == "queued"
    [task] = DBTaskResult.objects.all()
    assert task.args_kwargs["kwargs"] == {"resume": True}


def test_resume_of_a_running_run_is_a_409(api, staff, running_run):
    r = api(staff).post(f"{URL}{running_run.pk}/resume/")
    assert r.status_code == 409
    assert "can be resumed" in r.json()["detail"]


def test_actions_on_an_unknown_run_are_404s(api, staff, db):
    assert api(staff).post(f"{URL}999999/cancel/").status_code == 404
    assert api(staff).post(f"{URL}999999/resume/").status_code == 404
