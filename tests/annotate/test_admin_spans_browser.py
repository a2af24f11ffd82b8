"""The highlights editor on a judgment's admin page, in Chromium: a double-click on a word
of the rendered response highlights it, a click on a highlight removes it, Save stores it."""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User

from annotate import models

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "admin-spans-browser-password"
TEXT = "The capital of **France** is Paris.\n\nIt lies on the Seine, a river."

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not shutil.which(CHROMIUM) and os.environ.get("CI") != "true",
        reason="needs Chromium: apt-get install -y chromium",
    ),
]


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        browser.close()
        assert errors == [], f"JavaScript errors: {errors}"


def double_click_word(page, container: str, word: str) -> None:
    """Double-click the word where it is drawn, as a person would."""
    box = page.evaluate(
        """([selector, word]) => {
            const root = document.querySelector(selector);
            const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            while (walker.nextNode()) {
                const at = walker.currentNode.textContent.indexOf(word);
                if (at < 0) continue;
                const range = document.createRange();
                range.setStart(walker.currentNode, at);
                range.setEnd(walker.currentNode, at + word.length);
                const r = range.getBoundingClientRect();
                return {x: r.x + r.width / 2, y: r.y + r.height / 2};
            }
            return null;
        }""",
        [container, word],
    )
    assert box, f"{word!r} is not shown in {container}"
    page.mouse.dblclick(box["x"], box["y"])


def test_a_curator_edits_highlights_with_the_mouse_and_saves_them(
    page, live_server, transactional_db
):
    User.objects.create_superuser("curator", "c@example.org", PASSWORD)
    annotator = User.objects.create_user("alice", password=PASSWORD)
    prompt = models.Prompt.objects.create(source="t", external_id="1", instruction="Capital?")
    response = models.Response.objects.create(prompt=prompt, text=TEXT)
    paris = TEXT.index("Paris")
    judgment = models.Judgment.objects.create(
        response=response,
        annotator=annotator,
        verdict="negative",
        critique="Which river?",
        spans=[[paris, paris + 5]],
    )

    page.goto(
        f"{live_server.url}/admin/login/?next=/admin/annotate/judgment/{judgment.pk}/change/"
    )
    page.fill("#id_username", "curator")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-spans-editor]")
    # With the script, the fallback controls give way to the editor's help.
    assert not page.is_visible("[data-spans-fallback]")
    assert page.is_visible("[data-spans-help]")
    # alice's highlight on the response as the app renders it, too.
    assert page.locator("[data-rendered-response] mark").all_text_contents() == ["Paris"]

    double_click_word(page, ".curation-response", "Seine")
    seine = TEXT.index("Seine")
    assert (
        page.get_attribute("[data-spans-json]", "value")
        == f"[[{paris},{paris + 5}],[{seine},{seine + 5}]]"
    )
    assert "Highlighted 5 characters" in page.text_content("[data-spans-status]")

    page.click("[data-spans-source] mark:text('Paris')")
    assert page.get_attribute("[data-spans-json]", "value") == f"[[{seine},{seine + 5}]]"
    assert page.locator("[data-spans-source] mark").all_text_contents() == ["Seine"]
    assert page.locator("[data-rendered-response] mark").all_text_contents() == ["Seine"]
    artifacts = Path(os.environ.get("ARTIFACTS_DIR", settings.BASE_DIR / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / "admin-judgment-desktop.png"), full_page=True)

    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist")
    judgment.refresh_from_db()
    assert judgment.spans == [[seine, seine + 5]]
    assert page.locator("[data-spans-source] mark").all_text_contents() == ["Seine"]

    # The list: previews read as lines of text, not a word a line.
    page.goto(f"{live_server.url}/admin/annotate/judgment/")
    cell = page.locator("td.field-critique_excerpt").first.bounding_box()
    assert cell["width"] > 200
    page.screenshot(path=str(artifacts / "admin-judgments-desktop.png"), full_page=True)
