"""A first real-browser journey through what needs JavaScript: htmx swaps, drafts, spans.

Highlighted passages, a draft kept over a reload, skipping, My judgments, and the
reviewer's accept and reject. Screenshots go to $ARTIFACTS_DIR (default ./artifacts).
"""

import json

from annotate import models
from tests.browser.conftest import BROWSER, artifacts_dir, log_in, make_user

pytestmark = BROWSER


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


def test_an_annotator_judges_by_keyboard_and_a_reviewer_reviews(page):
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

    log_in(page, "alice")

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
    log_in(page, "rita", expect="/review/")
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
