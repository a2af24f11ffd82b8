"""A real browser and a real worker: staff open Training, fill New run, preview it, start
it, and watch the curves draw on the live run page (screenshot in $ARTIFACTS_DIR).

The worker is a `manage.py db_worker` subprocess on the test database (tests/workers.py);
it trains a tiny local model in its child process, so the charts fill with real numbers.
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from annotate import models
from tests.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and os.environ.get("CI") != "true",
        reason="needs Chromium: apt-get install -y chromium",
    ),
]

# A three-step run of the tiny model with a holdout evaluated at every step: 8 records,
# 2 held out (one of each verdict), 6 trained in micro-batches of 1, 2 a step.
OVERRIDES = [
    "max_steps=3",
    "warmup_steps=0",
    "gradient_accumulation_steps=2",
    "downsample=-1",
    "holdout_min_records=4",
    "holdout_fraction=0.2",
    "eval_every=1",
]


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR", settings.BASE_DIR / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def eight_judged(transactional_db, annotator, round1, make_responses) -> None:
    for i, response in enumerate(make_responses(8, round=round1)):
        negative = i % 3 == 0
        models.Judgment.objects.create(
            response=response,
            annotator=annotator,
            verdict="negative" if negative else "positive",
            critique=f"Answer {i} does not answer the question." if negative else "",
            review_state="accepted",
        )


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1600})
        page = context.new_page()
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        browser.close()
        assert errors == [], f"JavaScript errors: {errors}"


AXE = Path(__file__).resolve().parent.parent / "vendor" / "axe-core" / "axe.min.js"


def accessibility_problems(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => (await axe.run()).violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`)"""
    )


def drawn_pixels(page, canvas_id: str) -> int:
    """Pixels a chart has painted on its canvas (0 for a blank canvas)."""
    return page.evaluate(
        """(id) => {
            const canvas = document.getElementById(id);
            const context = canvas.getContext("2d");
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            return painted;
        }""",
        canvas_id,
    )


def test_staff_start_a_run_from_the_page_and_watch_its_curves(
    page, live_server, staff, eight_judged, model_dir, settings, tmp_path, start_worker
):
    settings.TRAINING_DIR = tmp_path / "runs"
    worker = start_worker()
    base = live_server.url

    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/overview/")  # where staff land

    page.get_by_role("link", name="Training").click()
    page.wait_for_url(f"{base}/training/")
    assert accessibility_problems(page) == []
    page.get_by_role("link", name="New run").click()
    page.wait_for_url(f"{base}/training/new/")

    page.get_by_label("Round 1").check()
    page.get_by_label("Base model").fill(str(model_dir))
    page.get_by_label("Config overrides").click()
    page.keyboard.type("\n".join(OVERRIDES))

    # Preview: the worker counts the data with the model's tokenizer; htmx polls for it.
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#preview dl")
    preview.wait_for(timeout=120_000)
    text = preview.inner_text()
    assert "8 (5 positive, 3 negative)" in text
    assert re.search(r"Optimizer steps\s+3", text), text
    page.screenshot(path=str(artifacts_dir() / "training-new-run.png"), full_page=True)
    assert accessibility_problems(page) == []

    page.get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(rf"{re.escape(base)}/training/\d+/$"))
    run = models.TrainingRun.objects.get()
    assert page.url == f"{base}{run.get_absolute_url()}"
    assert page.locator("#run-status").get_attribute("data-status") in ("queued", "running")

    # The page adds the steps as the worker reports them, and stops when the run ends.
    page.wait_for_selector('#chart-loss[data-points="3"]', timeout=300_000)
    page.wait_for_selector('#run-status[data-status="succeeded"]', timeout=60_000)
    page.wait_for_selector('body[data-run-finished="succeeded"]')
    run.refresh_from_db()
    assert run.status == "succeeded", run.error + worker.output()
    assert page.locator("#chart-holdout").get_attribute("data-points") == "3"
    for chart in ("loss", "flagged", "lr", "tokens_per_s", "holdout"):
        assert drawn_pixels(page, f"chart-{chart}") > 500, chart
    # The tables beside the charts got the same steps.
    assert page.locator("#table-loss tbody tr").count() == 3
    assert run.worker_host in page.locator("#run-status").inner_text()

    assert page.locator("#figure-loss .row-count").inner_text() == "3"
    page.screenshot(path=str(artifacts_dir() / "training-run.png"), full_page=True)
    assert accessibility_problems(page) == []

    # The last poll brought the Generate form: the next round, from the prompts of round 1.
    page.get_by_label("Round number").fill("2")
    page.get_by_label("Prompt set").fill("round=1")
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("Generation of round 2 with this adapter is queued.").wait_for()
    generation = models.GenerationRun.objects.get()
    assert (generation.round_number, generation.training_run_id) == (2, run.pk)
