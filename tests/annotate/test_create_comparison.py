"""Staff create comparisons on a page and in the admin; bad choices are form errors."""

from django.urls import reverse

from annotate import compare, compare_systems, models
from tests.annotate.compare_helpers import make_comparison, make_rounds


def _form(**changes) -> dict:
    data = {
        "system_a": "round:1",
        "system_b": "round:2",
        "prompt_set": "all",
        "sample_size": "3",
        "overlap": "2",
        "instructions": "Prefer the more helpful answer.",
    }
    return {**data, **changes}


def test_staff_create_a_comparison_and_its_pairs(client, staff):
    make_rounds(5)
    client.force_login(staff)
    answer = client.post(reverse("annotate:comparison-create"), _form())
    comparison = models.Comparison.objects.get()
    assert answer.status_code == 302
    assert answer.url == reverse("annotate:comparison-results", args=[comparison.pk])
    assert (comparison.system_a, comparison.system_b, comparison.overlap) == (
        "round:1",
        "round:2",
        2,
    )
    assert comparison.created_by == staff
    assert comparison.state == models.Comparison.State.OPEN
    assert len(comparison.prompt_ids) == 3
    pairs = comparison.pairs.select_related("response_a__round", "response_b__round")
    assert pairs.count() == 3
    assert all(p.response_a.round_id == 1 and p.response_b.round_id == 2 for p in pairs)
    assert all(p.overlap == 2 for p in pairs)


def test_the_same_system_twice_is_a_form_error(client, staff):
    make_rounds(3)
    client.force_login(staff)
    answer = client.post(reverse("annotate:comparison-create"), _form(system_b="round:1"))
    assert answer.status_code == 200
    assert "Choose two different systems" in answer.content.decode()
    assert not models.Comparison.objects.exists()


def test_an_empty_prompt_set_is_a_form_error(client, staff):
    make_rounds(3)
    client.force_login(staff)
    answer = client.post(reverse("annotate:comparison-create"), _form(prompt_set="source=none"))
    assert "has no prompts" in answer.content.decode()
    assert not models.Comparison.objects.exists()


def test_a_sample_larger_than_the_set_is_a_form_error(client, staff):
    make_rounds(3)
    client.force_login(staff)
    answer = client.post(reverse("annotate:comparison-create"), _form(sample_size="4"))
    assert "The sample (4) is larger than the set (3 prompts)" in answer.content.decode()
    assert "Prefer the more helpful answer." in answer.content.decode()  # typed text kept
    assert not models.Comparison.objects.exists()


def test_a_malformed_prompt_set_is_a_form_error(client, staff):
    make_rounds(3)
    client.force_login(staff)
    answer = client.post(reverse("annotate:comparison-create"), _form(prompt_set="everything"))
    assert "A prompt set is all, source=NAME or round=N" in answer.content.decode()


def test_the_sample_is_drawn_once_and_reproducibly_from_the_seed(db):
    make_rounds(20)
    first = compare.create(system_a="round:1", system_b="round:2", sample_size=5, seed=7)
    second = compare.create(system_a="round:2", system_b="round:1", sample_size=5, seed=7)
    assert first.prompt_ids == second.prompt_ids
    assert len(set(first.prompt_ids)) == 5


def test_missing_responses_are_generated_by_a_job_and_the_page_says_it_waits_for_a_worker(
    client, staff, reviewer
):
    make_rounds(4, second=False)
    client.force_login(staff)
    client.post(reverse("annotate:comparison-create"), _form(system_a="round:1", system_b="base"))
    # Round 1 is the base model's: comparing it with "base" is the same responses.
    assert not models.Comparison.objects.exists()
    run = models.TrainingRun.objects.create(
        status=models.JobStatus.SUCCEEDED, output_dir="/runs/run-9", base_model="tiny"
    )
    answer = client.post(
        reverse("annotate:comparison-create"), _form(system_a="base", system_b=f"run:{run.pk}")
    )
    comparison = models.Comparison.objects.get()
    assert answer.status_code == 302
    assert comparison.state == models.Comparison.State.WAITING
    assert not comparison.pairs.exists()
    job = comparison.generation_runs.get()
    assert (job.training_run, job.round_number, job.prompts) == (run, 2, "all")
    assert job.task_id  # enqueued on the gpu queue
    client.force_login(reviewer)
    page = client.get(reverse("annotate:comparison-results", args=[comparison.pk]))
    assert "Waiting for a worker: 3 from Training run" in page.content.decode()
    assert "manage.py db_worker --queue-name gpu" in page.content.decode()


def test_pairs_appear_once_the_generated_responses_arrive(client, staff, annotator):
    prompts = make_rounds(3, second=False)
    run = models.TrainingRun.objects.create(
        status=models.JobStatus.SUCCEEDED, output_dir="/runs/run-9", base_model="tiny"
    )
    comparison = compare.create(system_a="base", system_b=f"run:{run.pk}", sample_size=3)
    assert comparison.state == models.Comparison.State.WAITING
    # What the generation job writes: a round answered by the run's adapter.
    round2 = models.Round.objects.create(number=2, adapter="/runs/run-9", training_run=run)
    for prompt in prompts:
        models.Response.objects.create(prompt=prompt, text="Generated.", round=round2)
    client.force_login(annotator)
    page = client.get(reverse("annotate:compare-pair", args=[comparison.pk]))
    assert "Which answer is better?" in page.content.decode()
    comparison.refresh_from_db()
    assert comparison.state == models.Comparison.State.OPEN
    assert comparison.pairs.count() == 3


def test_a_finished_generation_job_opens_the_comparisons_waiting_for_it(db):
    prompts = make_rounds(3, second=False)
    run = models.TrainingRun.objects.create(
        status=models.JobStatus.SUCCEEDED, output_dir="/runs/run-9", base_model="tiny"
    )
    comparison = compare.create(system_a="base", system_b=f"run:{run.pk}", sample_size=3)
    job = comparison.generation_runs.get()
    assert compare.refresh_after_generation(job) == 0  # nothing generated yet
    round2 = models.Round.objects.create(number=2, adapter="/runs/run-9", training_run=run)
    for prompt in prompts:
        models.Response.objects.create(prompt=prompt, text="Generated.", round=round2)

    assert compare.refresh_after_generation(job) == 3
    comparison.refresh_from_db()
    assert comparison.state == models.Comparison.State.OPEN


def test_staff_create_a_comparison_in_the_admin(client, staff):
    make_rounds(4)
    client.force_login(staff)
    answer = client.post(reverse("admin:annotate_comparison_add"), _form(sample_size="2"))
    assert answer.status_code == 302
    comparison = models.Comparison.objects.get()
    assert comparison.pairs.count() == 2 and comparison.created_by == staff


def test_the_admin_refuses_a_sample_larger_than_the_set(client, staff):
    make_rounds(2)
    client.force_login(staff)
    answer = client.post(reverse("admin:annotate_comparison_add"), _form(sample_size="9"))
    assert answer.status_code == 200
    assert "larger than the set" in answer.content.decode()
    assert not models.Comparison.objects.exists()


def test_the_admin_closes_comparisons(client, staff, annotator):
    comparison = make_comparison(2)
    compare.next_for(annotator, comparison)
    client.force_login(staff)
    client.post(
        reverse("admin:annotate_comparison_changelist"),
        {"action": "close_comparisons", "_selected_action": [comparison.pk]},
    )
    comparison.refresh_from_db()
    assert comparison.state == models.Comparison.State.CLOSED
    assert not models.PairReservation.objects.exists()


def _waiting_comparison() -> models.Comparison:
    make_rounds(3, second=False)
    run = models.TrainingRun.objects.create(
        status=models.JobStatus.SUCCEEDED, output_dir="/runs/run-9", base_model="tiny"
    )
    return compare.create(system_a="base", system_b=f"run:{run.pk}", sample_size=3)


def test_with_a_worker_listening_the_page_says_the_job_is_queued(client, reviewer):
    comparison = _waiting_comparison()
    models.Worker.objects.create(worker_id="w1", host="gpu-box", pid=1, queues=",gpu,")
    client.force_login(reviewer)
    html = client.get(reverse("annotate:comparison-results", args=[comparison.pk])).content
    assert "Queued for a worker: 3 from Training run" in html.decode()


def test_a_running_job_shows_its_progress_and_a_failed_one_its_error(client, reviewer):
    comparison = _waiting_comparison()
    job = comparison.generation_runs.get()
    job.status, job.done_count, job.prompt_count = models.JobStatus.RUNNING, 1, 3
    job.save()
    client.force_login(reviewer)
    url = reverse("annotate:comparison-results", args=[comparison.pk])
    assert "Generating on a worker: 3 from Training run" in client.get(url).content.decode()
    assert "(1/3 prompts answered)" in client.get(url).content.decode()
    job.status, job.error = models.JobStatus.FAILED, "CUDA out of memory."
    job.save()
    assert "Generation failed: CUDA out of memory." in client.get(url).content.decode()


def test_no_second_job_is_queued_while_one_generates_the_same_round(db):
    comparison = _waiting_comparison()
    assert compare_systems.generate_missing(comparison) == []
    assert comparison.generation_runs.count() == 1
