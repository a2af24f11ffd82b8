"""The pages of onboarding, the login lockout and the database-down answer, in Chromium
at phone and desktop width: no horizontal overflow and no serious or critical axe-core
violations; screenshots go to $ARTIFACTS_DIR (default ./artifacts)."""

import os
import shutil
import socket
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from tests.servers import gunicorn

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parent.parent / "vendor" / "axe-core" / "axe.min.js"
PASSWORD = "ops-pages-browser-password"
WIDTHS = (360, 1366)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and os.environ.get("CI") != "true",
        reason="needs Chromium: apt-get install -y chromium",
    ),
]


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


def new_page(browser, width: int):
    page = browser.new_page(viewport={"width": width, "height": 800})
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    return page


def check(page, name: str, width: int) -> None:
    """No sideways scrolling, no serious or critical axe violations, a screenshot."""
    assert page.errors == [], f"JavaScript errors on {name}: {page.errors}"
    # These pages' own content, in <main>: the top bar they share with every page is
    # checked by the overflow journey over all pages.
    overflow = page.evaluate(
        """() => { const main = document.querySelector("main");
            return Math.max(main.scrollWidth - main.clientWidth,
                            main.getBoundingClientRect().right - window.innerWidth); }"""
    )
    assert overflow <= 0, f"{name} at {width} px: its content is {overflow} px too wide"
    page.add_script_tag(content=AXE.read_text())
    violations = page.evaluate(
        # The top bar, shared with every page, is the all-pages check's; here: the rest.
        """async () => (await axe.run({exclude: [["header.topbar"]]},
                                     {resultTypes: ["violations"]})).violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => v.id + ": " + v.nodes.map((n) => n.target.join(" ")).join(", "))"""
    )
    assert violations == [], f"{name} at {width} px: {violations}"
    artifacts = Path(os.environ.get("ARTIFACTS_DIR", settings.BASE_DIR / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)


def log_in(page, base: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.keyboard.press("Enter")


@pytest.mark.parametrize("width", WIDTHS)
def test_onboarding_pages_fit_and_pass_axe(browser, live_server, transactional_db, width):
    User.objects.create_superuser("sam", "sam@example.org", PASSWORD)
    page = new_page(browser, width)
    base = live_server.url
    log_in(page, base, "sam")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.goto(f"{base}/staff/users/add/")
    check(page, "staff-users-add", width)

    page.fill("#id_people", "ada\nsam\n")
    with page.expect_navigation():
        page.click("form.add-users button[type=submit]")
    assert "the username 'sam' exists already" in page.text_content("[role=alert]")
    check(page, "staff-users-add-errors", width)

    long_name = "a-very-long-username-without-spaces-" + "x" * 60
    page.fill("#id_people", f"ada,ada.lovelace.with.a.long.address@example.org\n{long_name}")
    with page.expect_navigation():
        page.click("form.add-users button[type=submit]")
    link = page.text_content("ol.added-users li:first-child .link").strip()
    check(page, "staff-users-added", width)

    page.context.clear_cookies()
    page.goto(link)
    page.wait_for_selector("#id_new_password1")
    check(page, "set-password", width)
    page.fill("#id_new_password1", "a-long-new-password-4817")
    page.fill("#id_new_password2", "a-long-new-password-4817")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Your password is set")
    check(page, "set-password-done", width)
    page.goto(link)
    page.wait_for_selector("text=This link no longer works")
    check(page, "set-password-used", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_lockout_page_fits_and_passes_axe(browser, live_server, transactional_db, width):
    User.objects.create_user("alice", password=PASSWORD)
    page = new_page(browser, width)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(page, live_server.url, "alice", "wrong")
        page.wait_for_load_state()
    page.wait_for_selector("text=Login locked")
    assert "Too many failed logins" in page.text_content("[role=alert]")
    check(page, "login-locked", width)


@pytest.mark.parametrize("width", WIDTHS)
def test_the_database_down_page_fits_and_passes_axe(browser, width):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        with gunicorn(f"postgres://postgres@127.0.0.1:{sock.getsockname()[1]}/x") as base:
            page = new_page(browser, width)
            page.context.add_cookies(
                [{"name": "sessionid", "value": "abcdefghijklmnopqrstuvwxyz012345", "url": base}]
            )
            answer = page.goto(f"{base}/judgments/")
            assert answer.status == 503
            assert page.is_visible("[data-auto-retry]")
            check(page, "database-down", width)
            page.click("[data-stop]")
            assert "Stopped." in page.text_content("main")
    finally:
        sock.close()
