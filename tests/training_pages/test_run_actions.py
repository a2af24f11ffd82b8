"""The run page's buttons: Cancel, Resume, Generate the next round with this adapter."""

from html import unescape

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from annotate import models


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def post(client, name: str, run, data=None, **kwargs):
    return client.post(reverse(f"annotate:{name}", args=[run.pk]), data or {}, **kwargs)


def test_cancel_of_a_running_run_asks_the_worker_to_stop(staff_client, running_run):
    page = post(staff_client, "training-cancel", running_run, follow=True)
    running_run.refresh_from_db()
    assert running_run.cancel_requested is True
    assert running_run.status == "running"  # until the worker stops at its next step
    html = unescape(page.content.decode())
    assert "it stops at the next optimizer step and keeps a checkpoint" in html
    assert "cancel requested" in html


def test_cancel_of_a_queued_run_cancels_it_at_once(staff_client, running_run):
    models.TrainingRun.objects.filter(pk=running_run.pk).update(status="queued")
    page = post(staff_client, "training-cancel", running_run, follow=True)
    running_run.refresh_from_db()
    assert running_run.status == "cancelled"
    assert "was cancelled before it started" in page.content.decode()


def test_cancel_of_a_finished_run_says_there_is_nothing_to_cancel(staff_client, succeeded_run):
    page = post(staff_client, "training-cancel", succeeded_run, follow=True)
    succeeded_run.refresh_from_db()
    assert succeeded_run.status == "succeeded" and not succeeded_run.cancel_requested
    assert "is succeeded: nothing to cancel" in page.content.decode()


@pytest.mark.parametrize("status", ["interrupted", "failed", "cancelled"])
def test_resume_queues_a_stopped_run_again(staff_client, running_run, status):
    models.TrainingRun.objects.filter(pk=running_run.pk).update(status=status, error="stopped")
    page = post(staff_client, "training-resume", running_run)
    assert page.status_code == 302
    running_run.refresh_from_db()
    assert running_run.status == "queued" and running_run.error == ""
    [task] = DBTaskResult.objects.filter(task_path="annotate.jobs.run_training")
    assert task.args_kwargs == {"args": [running_run.pk], "kwargs": {"resume": True}}


def test_resume_of_a_running_run_is_refused_with_a_message(staff_client, running_run):
    page = post(staff_client, "training-resume", running_run, follow=True)
    assert "Could not resume training run" in page.content.decode()
    assert not DBTaskResult.objects.exists()


def test_generate_queues_a_round_with_the_adapter(staff_client, staff, succeeded_run, response):
    page = post(
        staff_client, "training-generate", succeeded_run, {"round": 2, "prompts": "round=1"}
    )
    assert page.status_code == 302
    generation = models.GenerationRun.objects.get()
    assert generation.round_number == 2
    assert generation.training_run == succeeded_run
    assert generation.adapter == succeeded_run.output_dir
    assert generation.prompts == "round=1"
    assert generation.created_by == staff
    assert generation.status == "queued" and generation.task_id
    [task] = DBTaskResult.objects.filter(task_path="annotate.jobs.run_generation")
    assert task.queue_name == "gpu"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"round": 2, "prompts": "some"},
            "prompts",
            "Prompts must be all, source=NAME or round=N.",
        ),
        ({"round": 2, "prompts": "source=nowhere"}, "prompts", "No prompts match"),
        ({"round": -1, "prompts": "all"}, "round", "greater than or equal to 0"),
        ({"round": 1, "prompts": "all"}, "round", "Round 1 was generated with"),
    ],
)
def test_bad_generation_input_is_a_form_error_and_nothing_is_queued(
    staff_client, succeeded_run, response, data, field, message
):
    page = post(
        staff_client, "training-generate", succeeded_run, data, headers={"HX-Request": "true"}
    )
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert "<html" not in html and 'id="generate"' in html
    assert message in html
    assert f'id="id_{field}_error"' in html
    assert not models.GenerationRun.objects.exists()
    assert not DBTaskResult.objects.exists()


def test_a_run_without_an_adapter_cannot_generate(staff_client, running_run, response):
    page = post(staff_client, "training-generate", running_run, {"round": 2, "prompts": "all"})
    assert page.status_code == 200
    assert "has no adapter yet" in unescape(page.content.decode())
    assert not models.GenerationRun.objects.exists()


@pytest.mark.parametrize("name", ["training-cancel", "training-resume", "training-generate"])
def test_the_buttons_take_post_only(staff_client, running_run, name):
    assert staff_client.get(reverse(f"annotate:{name}", args=[running_run.pk])).status_code == 405


def test_the_run_page_lists_its_generation_jobs(staff_client, succeeded_run):
    models.GenerationRun.objects.create(
        round_number=2,
        training_run=succeeded_run,
        status="running",
        prompts="round=1",
        prompt_count=30,
        done_count=12,
    )
    html = staff_client.get(succeeded_run.get_absolute_url()).content.decode()
    assert "Round 2 (round=1): running, 12 of 30 prompts answered" in html
