"""One real-browser journey through what needs JavaScript: keys, htmx swaps, drafts, spans.

Debian's Chromium (`apt-get install -y chromium`) driven by Playwright, headless.
Screenshots of the task and review pages go to $ARTIFACTS_DIR (default ./artifacts).
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User

from annotate import models

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-journey-password"

pytestmark = [
    pytest.mark.browser,
    # On CI (CI=true) a missing Chromium fails the test instead of skipping it quietly.
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and os.environ.get("CI") != "true",
        reason="needs Chromium: apt-get install -y chromium",
    ),
]


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR", settings.BASE_DIR / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_user(username: str, group: str) -> User:
    # get_or_create: a transactional test before this one may have flushed the groups
    # that migrations created.
    user = User.objects.create_user(username, password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test
    # are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        browser.close()
        assert errors == [], f"JavaScript errors: {errors}"


def log_in(page, base: str, username: str, lands_on: str = "/") -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}{lands_on}")


def current_response(page) -> int:
    return int(page.get_attribute("#task", "data-response-id"))


def submit_and_wait(page, keys: str = "Control+Enter") -> int:
    """Press the submit keys; wait for htmx to swap in the next task; return the old id."""
    pk = current_response(page)
    page.keyboard.press(keys)
    page.wait_for_selector(f'#task[data-done="{pk}"]')
    return pk


def select_in_source(page, start: int, end: int) -> None:
    # Selecting with a mouse drag is flaky headless; a DOM range is what a drag makes.
    page.click("#source-details summary")
    page.evaluate(
        """([start, end]) => {
            const node = document.getElementById("source-view").firstChild;
            const range = document.createRange();
            range.setStart(node, start);
            range.setEnd(node, end);
            const selection = window.getSelection();
            selection.removeAllRanges();
            selection.addRange(range);
        }""",
        [start, end],
    )


@pytest.mark.django_db(transaction=True)
def test_an_annotator_judges_by_keyboard_and_a_reviewer_reviews(page, live_server):
    base = live_server.url
    alice = make_user("alice", "annotators")
    make_user("rita", "reviewers")
    round1 = models.Round.objects.create(number=1)
    for i in range(5):
        prompt = models.Prompt.objects.create(
            source="browser", external_id=str(i), instruction=f"Question {i}: when was **X**?"
        )
        models.Response.objects.create(
            prompt=prompt,
            round=round1,
            generator="tiny",
            text=f"Answer {i}: X happened in 1990.\n\n```\ncode {i}\n```",
        )

    log_in(page, base, "alice")

    # 1. Good, by keys alone.
    page.keyboard.press("1")
    first = submit_and_wait(page)
    assert page.inner_text(".notice") == "Judgment saved."

    # 2. Has problems: 2 focuses the critique; a reload keeps the draft.
    second = current_response(page)
    page.keyboard.press("2")
    page.keyboard.type("The date is wrong: it was 1991.")
    page.wait_for_function(
        f"localStorage.getItem('critique-loop:draft:{second}') !== null"
        f" && localStorage.getItem('critique-loop:draft:{second}').includes('1991')"
    )
    page.reload()
    assert current_response(page) == second
    assert page.input_value("[name=critique]") == "The date is wrong: it was 1991."
    assert page.is_checked("[name=verdict][value=negative]")
    assert "draft was restored" in page.inner_text("#judgment-form")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f'#task[data-done="{second}"]')
    assert page.evaluate(f"localStorage.getItem('critique-loop:draft:{second}')") is None

    # 3. Skip with a reason.
    skipped = current_response(page)
    page.keyboard.press("s")
    page.keyboard.type("I don't know this topic.")
    submit_and_wait(page)
    assert "Skipped" in page.inner_text(".notice")

    # 4. Has problems, with a highlighted passage.
    fourth = current_response(page)
    page.keyboard.press("2")
    page.keyboard.type("Wrong year.")
    page.keyboard.press("Escape")
    select_in_source(page, 24, 28)  # "1990"
    page.keyboard.press("h")
    assert json.loads(page.input_value("[name=spans]")) == [[24, 28]]
    page.keyboard.press("?")
    page.screenshot(path=str(artifacts_dir() / "task-page.png"), full_page=True)
    page.keyboard.press("?")
    submit_and_wait(page)

    judgments = {j.response_id: j for j in models.Judgment.objects.filter(annotator=alice)}
    assert set(judgments) == {first, second, fourth}
    assert judgments[first].verdict == "positive"
    assert judgments[second].critique == "The date is wrong: it was 1991."
    assert judgments[fourth].spans == [[24, 28]]
    assert all(j.seconds_spent is not None for j in judgments.values())
    assert models.Skip.objects.get(annotator=alice).response_id == skipped

    # My judgments lists all three, pending.
    page.click("text=My judgments")
    rows = page.locator("table.judgments tbody tr")
    assert rows.count() == 3
    assert page.locator("table.judgments .state-pending").count() == 3

    # The reviewer accepts the oldest and rejects the next, by keys.
    page.click("button:has-text('Log out')")
    log_in(page, base, "rita", lands_on="/review/")
    page.screenshot(path=str(artifacts_dir() / "review-page.png"), full_page=True)
    assert f"Judgment {judgments[first].pk}" in page.inner_text("#review-heading")
    page.keyboard.press("a")
    page.wait_for_selector("#review .notice:has-text('Accepted.')")
    page.keyboard.press("r")
    page.keyboard.type("The critique should say where the date comes from.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#review .notice:has-text('Rejected.')")

    states = dict(
        models.Judgment.objects.filter(annotator=alice).values_list("response_id", "review_state")
    )
    assert states == {first: "accepted", second: "rejected", fourth: "pending"}
    rejected = models.Judgment.objects.get(response_id=second)
    assert rejected.review_note == "The critique should say where the date comes from."
    assert rejected.reviewer.username == "rita"
