"""The browser tests: Debian's Chromium driven by Playwright, headless, one browser a module.

Each test gets a fresh context (no cookies, no localStorage) and fails on any JavaScript
error. Marked `browser`; they need `/usr/bin/chromium` (`make browser-deps`).
"""

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
PASSWORD = "browser-test-password"


# Every module here starts with `pytestmark = BROWSER`.
BROWSER = [
    pytest.mark.browser,
    # On CI (CI=true) a missing Chromium fails the test instead of skipping it quietly.
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and os.environ.get("CI") != "true",
        reason="needs Chromium: make browser-deps",
    ),
]


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR", settings.BASE_DIR / "artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in the tests
    # are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server, transactional_db):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.base = live_server.url
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def make_user(username: str, *groups: str, **extra) -> User:
    # get_or_create: transactional tests flush the groups that migrations created.
    user = User.objects.create_user(username, password=PASSWORD, **extra)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


def log_in(page, username: str, expect: str = "/") -> None:
    page.goto(f"{page.base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{page.base}{expect}")


def make_tasks(n: int, round_number: int = 1, **text) -> list[models.Response]:
    round_, _ = models.Round.objects.get_or_create(number=round_number)
    responses = []
    for i in range(n):
        prompt = models.Prompt.objects.create(
            source="browser",
            external_id=f"{round_number}-{i}",
            instruction=text.get("instruction", f"Question {i}: when did **X** happen?"),
            input=text.get("input", ""),
        )
        responses.append(
            models.Response.objects.create(
                prompt=prompt,
                round=round_,
                generator="tiny",
                text=text.get("text", f"Answer {i}: X happened in 1990."),
            )
        )
    return responses


def focused(page) -> str:
    """What has the keyboard focus: '#id', 'tag[name=...]' or the tag name."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            if (!el) return "";
            if (el.id) return "#" + el.id;
            if (el.name) return el.tagName.toLowerCase() + "[name=" + el.name + "]";
            return el.tagName.toLowerCase();
        }"""
    )


def announced(page) -> str:
    return page.inner_text("#announcer")
