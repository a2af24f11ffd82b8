"""A run's page: status, worker, progress, the curves (canvas + table), data, config; the
series endpoint the page's script polls; the snapshot download."""

from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate import models


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_a_running_run_shows_status_worker_progress_and_eta(staff_client, running_run):
    page = staff_client.get(running_run.get_absolute_url())
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert 'data-status="running"' in html
    assert "gpu-box-1" in html
    assert '<progress id="run-progress" max="10" value="3">' in html
    assert "step 3 of 10 (30 %), about 14 s left" in html  # 7 steps at 2 s
    assert "step 3/10 loss 0.667" in html  # the log tail
    assert "<dt>Selection</dt><dd>Accepted judgments in round 1</dd>" in html
    # It polls itself while running, and offers Cancel but not Resume.
    assert f'hx-get="{running_run.get_absolute_url()}" hx-trigger="every 2s"' in html
    assert reverse("annotate:training-cancel", args=[running_run.pk]) in html
    assert reverse("annotate:training-resume", args=[running_run.pk]) not in html


def test_each_chart_has_a_canvas_and_a_table_of_the_same_numbers(staff_client, running_run):
    html = unescape(staff_client.get(running_run.get_absolute_url()).content.decode())
    for chart in ("loss", "flagged", "lr", "tokens_per_s", "holdout"):
        assert f'<canvas id="chart-{chart}"' in html
        assert f'<table id="table-{chart}">' in html
    page = staff_client.get(running_run.get_absolute_url())
    charts = {chart.id: chart for chart in page.context["charts"]}
    assert charts["loss"].labels == ["loss", "L_mle", "L_ul"]
    assert charts["loss"].rows == [
        [1, 2.0, 1.5, 0.5],
        [2, 1.0, 0.75, 0.25],
        [3, 2 / 3, 0.5, 0.5 / 3],
    ]
    # The holdout numbers exist only at evaluation steps, with the collapse margin drawn.
    assert charts["holdout"].labels == ["Δ approved", "Δ criticised", "gain"]
    assert charts["holdout"].rows == [[2, -0.1, -0.4, pytest.approx(0.3)]]
    assert charts["holdout"].references == [("collapse margin (Δ approved floor)", -0.3)]
    assert "collapse margin (Δ approved floor): -0.3" in html
    assert "<td>0.666667</td>" in html  # 2/3 in the loss table


def test_the_page_script_gets_the_chart_data_and_its_series_url(staff_client, running_run):
    page = staff_client.get(running_run.get_absolute_url())
    data = page.context["chart_data"]
    assert data["series_url"] == reverse("annotate:training-series", args=[running_run.pk])
    assert data["finished"] is False
    html = page.content.decode()
    assert '<script id="chart-data" type="application/json">' in html
    assert "vendor/chartjs/chart.umd.min.js" in html and "js/training.js" in html


def test_the_series_endpoint_returns_the_steps_after_the_one_asked(staff_client, running_run):
    url = reverse("annotate:training-series", args=[running_run.pk])
    body = staff_client.get(url, {"after": 2}).json()
    assert body["status"] == "running" and body["finished"] is False
    assert body["progress"] == {"step": 3, "total": 10, "percent": 30, "eta": "14 s"}
    loss = next(c for c in body["charts"] if c["id"] == "loss")
    assert [row[0] for row in loss["rows"]] == [3]
    holdout = next(c for c in body["charts"] if c["id"] == "holdout")
    assert holdout["rows"] == [] and holdout["references"][0]["y"] == -0.3
    everything = staff_client.get(url).json()
    assert [row[0] for row in everything["charts"][0]["rows"]] == [1, 2, 3]
    assert staff_client.get(url, {"after": "x"}).status_code == 400


def test_a_finished_run_stops_polling_and_offers_generation(staff_client, succeeded_run):
    html = staff_client.get(succeeded_run.get_absolute_url()).content.decode()
    assert 'hx-trigger="every 2s"' not in html
    assert 'data-status="succeeded"' in html
    assert reverse("annotate:training-generate", args=[succeeded_run.pk]) in html
    assert reverse("annotate:training-cancel", args=[succeeded_run.pk]) not in html
    assert "cd" * 32 in html  # the snapshot's sha256
    assert "<dt>Selection</dt><dd>Accepted judgments in round 1</dd>" in html
    assert reverse("annotate:training-snapshot", args=[succeeded_run.pk]) in html


def test_htmx_gets_the_status_partial(staff_client, running_run):
    page = staff_client.get(running_run.get_absolute_url(), headers={"HX-Request": "true"})
    html = page.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="run-status"')
    assert "<canvas" not in html
    # The Generate section comes along out of band, to appear when the run succeeds.
    assert '<section id="generate" aria-labelledby="generate-heading" hx-swap-oob="true">' in html


def test_a_run_whose_worker_stopped_heartbeating_shows_as_interrupted(
    staff_client, running_run, settings
):
    settings.RUN_HEARTBEAT_TIMEOUT = 60
    models.TrainingRun.objects.filter(pk=running_run.pk).update(
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=61)
    )
    html = staff_client.get(running_run.get_absolute_url()).content.decode()
    assert 'data-status="interrupted"' in html
    assert "stopped sending heartbeats" in html
    assert reverse("annotate:training-resume", args=[running_run.pk]) in html


def test_a_queued_run_says_when_no_worker_listens(staff_client, running_run):
    models.TrainingRun.objects.filter(pk=running_run.pk).update(
        status="queued", series=[], total_steps=None
    )
    html = staff_client.get(running_run.get_absolute_url()).content.decode()
    assert "none is listening on the gpu queue" in html
    models.Worker.objects.create(worker_id="w1", host="gpu-box-1", pid=1, queues=",gpu,")
    html = staff_client.get(running_run.get_absolute_url()).content.decode()
    assert "Waiting for a worker." in html
    assert "none is listening" not in html


def test_an_unknown_run_is_a_404(staff_client, db):
    assert staff_client.get("/training/999999/").status_code == 404
    assert staff_client.get("/training/999999/series/").status_code == 404


def test_staff_download_the_data_snapshot(staff_client, succeeded_run):
    page = staff_client.get(reverse("annotate:training-snapshot", args=[succeeded_run.pk]))
    assert page.status_code == 200
    assert b"".join(page.streaming_content) == b'{"id": 1}\n'
    assert page["Content-Disposition"] == (
        f'attachment; filename="run-{succeeded_run.pk}-judgments.jsonl"'
    )


def test_a_snapshot_that_is_not_on_this_server_is_a_404(staff_client, running_run):
    page = staff_client.get(reverse("annotate:training-snapshot", args=[running_run.pk]))
    assert page.status_code == 404


def test_the_page_works_for_a_run_recorded_before_jobs(staff_client, staff):
    """A run from train_cut's inline path: no series, no worker, metrics only."""
    run = models.TrainingRun.objects.create(
        status="succeeded", metrics={"loss": 1.0}, filters={"status": "accepted", "round": None}
    )
    html = staff_client.get(run.get_absolute_url()).content.decode()
    assert 'Numbers (steps: <span class="row-count">0</span>)' in html
    assert "No steps yet." in html


def test_steps_before_the_plan_is_known_show_without_a_bar(staff_client, running_run):
    models.TrainingRun.objects.filter(pk=running_run.pk).update(total_steps=None)
    html = staff_client.get(running_run.get_absolute_url()).content.decode()
    assert "<progress" not in html
    assert "step 3\n" in html


def test_the_tables_keep_small_numbers_and_drop_odd_records(staff_client, running_run):
    series = running_run.series + [
        {**running_run.series[-1], "step": 4, "lr": 1e-07},
        {"step": "<b>5</b>", "loss": 1.0},  # not a step number: left out
        {"step": 6, "loss": None, "lr": 2e-07},
    ]
    models.TrainingRun.objects.filter(pk=running_run.pk).update(series=series)
    html = staff_client.get(running_run.get_absolute_url()).content.decode()
    assert "<tr><td>4</td><td>1e-07</td></tr>" in html
    assert "<tr><td>6</td><td>2e-07</td></tr>" in html
    assert "<b>5</b>" not in html
    assert "<tr><td>6</td><td>—</td><td>—</td><td>—</td></tr>" not in html  # nothing to show
