"""The lens in a real browser, with a real lens worker (tiny model): the annotator types a
critique, leaves the box with Esc and presses L; the reviewer's page computes and marks.

Screenshots go to $ARTIFACTS_DIR (default ./artifacts): lens-preview.png, lens-review.png.
"""

import pytest

from annotate import models
from tests.annotate.lens_helpers import lens_worker_process
from tests.browser.conftest import BROWSER, PASSWORD, artifacts_dir, log_in, make_user

pytestmark = [*BROWSER, pytest.mark.slow]

TEXT = (
    "The first crewed Moon landing was Apollo 11 in 1968.\r\n"
    "Neil Armstrong <b>and</b> Buzz Aldrin walked on the Moon; 月面 👩‍🚀."
)


@pytest.fixture
def scene(transactional_db):
    alice = make_user("alice", "annotators")
    bob = make_user("bob", "annotators")
    make_user("rita", "reviewers")
    prompt = models.Prompt.objects.create(
        source="browser", external_id="moon", instruction="When was the first Moon landing?"
    )
    for_alice = models.Response.objects.create(prompt=prompt, text=TEXT)
    for_review = models.Response.objects.create(prompt=prompt, text=TEXT.replace("1968", "1970"))
    models.Response.objects.filter(pk=for_review.pk).update(judgment_count=1)
    bobs = models.Judgment.objects.create(
        response=for_review,
        annotator=bob,
        verdict="negative",
        critique="The year is wrong: Apollo 11 landed in 1969.",
        spans=[[TEXT.index("1968"), TEXT.index("1968") + 4]],
    )
    return {"alice": alice, "task": for_alice, "judgment": bobs}


def test_the_preview_and_the_review_page_mark_what_training_will_learn(
    page, live_server, scene, model_dir
):
    base = live_server.url
    # λ = 1 with a random tiny model: about half the tokens come out flagged.
    with lens_worker_process(model_dir, LENS_THRESHOLD="1.0"):
        log_in(page, "alice")
        page.keyboard.press("2")  # has problems; focuses the critique
        page.keyboard.type("The year is wrong: Apollo 11 landed in 1969, not 1968.")
        page.keyboard.press("Escape")  # leave the text box, then L
        page.keyboard.press("l")
        wait_for_marking(page, "#lens-result")
        summary = page.inner_text("#lens-result .lens-summary")
        assert "The critique flags" in summary
        assert page.input_value("[name=critique]").startswith("The year is wrong")
        assert not models.Judgment.objects.filter(annotator=scene["alice"]).exists()
        page.locator("#lens-result").screenshot(path=artifacts_dir() / "lens-preview.png")

        page.context.clear_cookies()
        log_in_reviewer(page, base)
        wait_for_marking(page, "#judgment-lens")
        assert page.locator(".lens-box").count() == 1  # the poll replaced the box, once
        assert page.locator("#judgment-lens .lens-hl").count() >= 1  # bob's highlight
        assert "<b>" in page.inner_text("#judgment-lens .lens-text")  # shown as text
        marks = page.locator("#judgment-lens mark.lens[tabindex='0']")
        assert marks.count() > 0
        marks.first.focus()
        label = page.evaluate("document.activeElement.getAttribute('aria-label')")
        assert label.startswith("Flagged") and "as likely with the critique" in label
        page.screenshot(path=artifacts_dir() / "lens-review.png", full_page=True)
        page.locator("#judgment-lens .lens-toggle").uncheck()  # the marking off
        background = marks.first.evaluate("m => getComputedStyle(m).backgroundColor")
        assert background in ("rgba(0, 0, 0, 0)", "transparent")

        # The reviewer edits the critique and previews it before accepting: E, type, Esc, L.
        page.locator("body").focus()
        page.keyboard.press("e")
        page.keyboard.type(" The landing date was July 20.")
        page.keyboard.press("Escape")
        page.keyboard.press("l")
        wait_for_marking(page, "#lens-result")
        assert models.Judgment.objects.get().review_state == "pending"  # nothing saved


def log_in_reviewer(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/review/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/review/")


def wait_for_marking(page, where: str) -> None:
    try:
        page.wait_for_selector(f"{where} .lens-text", timeout=60_000)
    except Exception as error:
        page.screenshot(path=artifacts_dir() / "lens-failed.png", full_page=True)
        found = page.locator(f"{where} .lens-text")
        state = [found.count(), found.count() and found.first.bounding_box()]
        raise AssertionError(f"no marking in {where}: {state}") from error
