"""The Training page: every run with status, rounds, data, start, duration and holdout."""

from html import unescape

from django.urls import reverse

from annotate import models


def test_it_lists_every_run_newest_first_with_its_numbers(
    client, staff, running_run, succeeded_run, round1
):
    models.Round.objects.create(number=2, training_run=succeeded_run)
    client.force_login(staff)
    page = client.get(reverse("annotate:training-list"))
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert html.index(f'id="run-{succeeded_run.pk}"') < html.index(f'id="run-{running_run.pk}"')
    row = html[html.index(f'id="run-{succeeded_run.pk}"') :].split("</tr>")[0]
    assert "succeeded" in row
    assert "<td>1 → 2</td>" in row  # trained on round 1, generated round 2
    assert "1 positive, 0 negative" in row
    assert "5 min 00 s" in row
    assert "<td>0.300</td>" in row and "<td>-0.100</td>" in row  # gain, Δ approved
    running = html[html.index(f'id="run-{running_run.pk}"') :].split("</tr>")[0]
    assert "running" in running and "<td>1</td>" in running
    # Its last evaluation so far (step 2): gain 0.3, Δ approved -0.1.
    assert "<td>0.300</td>" in running
    assert f'href="{running_run.get_absolute_url()}"' in running
    assert f'href="{reverse("annotate:training-new")}"' in html


def test_an_empty_list_points_to_new_run(client, staff):
    client.force_login(staff)
    html = client.get(reverse("annotate:training-list")).content.decode()
    assert "No training runs yet." in html


def test_queued_runs_without_a_worker_are_said_to_wait(client, staff, running_run):
    client.force_login(staff)
    url = reverse("annotate:training-list")
    assert "No worker is listening" not in client.get(url).content.decode()  # none queued
    models.TrainingRun.objects.filter(pk=running_run.pk).update(status="queued")
    assert (
        "No worker is listening on the <code>gpu</code> queue" in client.get(url).content.decode()
    )
    models.Worker.objects.create(worker_id="w1", host="gpu-box-1", pid=1, queues=",gpu,")
    assert "No worker is listening" not in client.get(url).content.decode()
