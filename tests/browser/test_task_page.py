"""What the task page's script does when things go wrong: a session that ended, a server
that is down for a moment, an empty form, a paste far over the limit."""

from annotate import models
from tests.browser.conftest import BROWSER, PASSWORD, log_in, make_tasks, make_user

pytestmark = BROWSER


def draft(page, pk: int) -> str | None:
    return page.evaluate(f"localStorage.getItem('critique-loop:draft:{pk}')")


def start_a_critique(page, text: str) -> int:
    pk = int(page.get_attribute("#task", "data-response-id"))
    page.keyboard.press("2")
    page.keyboard.type(text)
    return pk


def log_in_again(page, expect: str = "/") -> None:
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{page.base}{expect}")


def test_with_all_cookies_gone_the_task_stays_and_the_draft_comes_back_after_login(page):
    alice = make_user("alice", "annotators")
    make_tasks(2)
    log_in(page, "alice")
    pk = start_a_critique(page, "The year is wrong.")
    page.context.clear_cookies()

    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#page-alert")
    assert page.inner_text("#page-alert") == (
        "Your session ended; log in again. Your draft is kept. Log in again"
    )
    # The task is still there, not a login page drawn inside it.
    assert page.locator("#task #id_username").count() == 0
    assert page.input_value("[name=critique]") == "The year is wrong."
    assert "The year is wrong." in draft(page, pk)

    page.keyboard.press("Enter")  # the focus is on "Log in again"
    page.wait_for_url(f"{page.base}/accounts/login/?next=/")
    log_in_again(page)
    assert int(page.get_attribute("#task", "data-response-id")) == pk
    assert page.input_value("[name=critique]") == "The year is wrong."
    assert "draft was restored" in page.inner_text("#judgment-form")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f'#task[data-done="{pk}"]')
    assert alice.judgments.get().critique == "The year is wrong."


def test_logged_out_in_another_tab_the_submit_keeps_the_page(page):
    make_user("alice", "annotators")
    make_tasks(2)
    log_in(page, "alice")
    pk = start_a_critique(page, "Missing a source.")
    other = page.context.new_page()
    other.goto(f"{page.base}/judgments/")
    other.click("button:has-text('Log out')")
    other.close()

    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#page-alert.ended")
    assert page.get_attribute("#log-in-again", "href") == "/accounts/login/?next=/"
    assert int(page.get_attribute("#task", "data-response-id")) == pk
    assert not models.Judgment.objects.exists()


def test_a_503_keeps_the_draft_says_so_and_retries_after_retry_after(page):
    alice = make_user("alice", "annotators")
    make_tasks(2)
    log_in(page, "alice")
    pk = start_a_critique(page, "Too vague.")
    answered = []

    def unavailable_once(route):
        if not answered:
            answered.append(route.request.url)
            route.fulfill(status=503, headers={"Retry-After": "1"}, body="unavailable")
        else:
            route.continue_()

    page.route("**/judgment/", unavailable_once)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#page-alert.retrying")
    assert "The server is unavailable; retrying…" in page.inner_text("#page-alert")
    assert draft(page, pk) is not None
    page.wait_for_selector(f'#task[data-done="{pk}"]')  # the retry, a second later
    assert page.locator("#page-alert").count() == 0
    assert alice.judgments.get().critique == "Too vague."


def test_a_first_visit_stores_no_draft_and_restores_none(page):
    make_user("alice", "annotators")
    make_tasks(2)
    log_in(page, "alice")
    pk = int(page.get_attribute("#task", "data-response-id"))
    assert draft(page, pk) is None
    page.reload()
    assert "draft was restored" not in page.inner_text("#judgment-form")
    # Typed and taken back: no draft either.
    page.focus("#id_critique")
    page.keyboard.type("x")
    assert draft(page, pk) is not None
    page.keyboard.press("Backspace")
    assert draft(page, pk) is None
    page.keyboard.press("Escape")
    page.keyboard.press("1")  # a verdict alone is worth keeping
    assert "positive" in draft(page, pk)


def test_a_paste_over_the_limit_is_not_cut_and_the_server_says_so_once(page):
    alice = make_user("alice", "annotators")
    make_tasks(1)
    log_in(page, "alice")
    page.keyboard.press("2")
    assert page.is_hidden("#id_critique-counter")
    page.keyboard.insert_text("y" * 16_500)
    assert page.inner_text("#id_critique-counter") == "16,500 of 20,000 characters"
    page.keyboard.insert_text("z" * 183_500)
    assert page.evaluate("document.querySelector('[name=critique]').value.length") == 200_000
    assert page.inner_text("#id_critique-counter") == (
        "180,000 characters over the limit of 20,000: shorten it before you submit."
    )
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#task .field-errors")
    assert page.inner_text("#task .field-errors") == (
        "The critique is 200,000 characters long; the limit is 20,000. "
        "Shorten it; your text is kept."
    )
    assert page.evaluate("document.querySelector('[name=critique]').value.length") == 200_000
    assert not alice.judgments.exists()


def test_logged_in_again_in_another_tab_the_page_offers_a_reload_and_keeps_the_draft(page):
    alice = make_user("alice", "annotators")
    make_tasks(2)
    log_in(page, "alice")
    pk = start_a_critique(page, "Cites nothing.")
    other = page.context.new_page()
    other.goto(f"{page.base}/judgments/")
    other.click("button:has-text('Log out')")
    other.fill("#id_username", "alice")
    other.fill("#id_password", PASSWORD)
    other.keyboard.press("Enter")
    other.wait_for_url(f"{page.base}/")
    other.close()

    page.keyboard.press("Control+Enter")  # its CSRF token was rotated by the new login
    page.wait_for_selector("#page-alert.ended")
    assert page.inner_text("#page-alert").startswith("This page is out of date")
    assert page.get_attribute("#log-in-again", "href") == "/"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert int(page.get_attribute("#task", "data-response-id")) == pk
    assert page.input_value("[name=critique]") == "Cites nothing."
    assert "draft was restored" in page.inner_text("#judgment-form")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f'#task[data-done="{pk}"]')
    assert alice.judgments.get().critique == "Cites nothing."


def test_a_server_out_of_reach_keeps_the_draft_and_the_submit_is_tried_again(page):
    alice = make_user("alice", "annotators")
    make_tasks(2)
    log_in(page, "alice")
    pk = start_a_critique(page, "Unclear units.")
    failed = []

    def unreachable_once(route):
        if not failed:
            failed.append(route.request.url)
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route("**/judgment/", unreachable_once)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#page-alert.retrying")
    assert "Cannot reach the server; retrying…" in page.inner_text("#page-alert")
    assert "Unclear units." in draft(page, pk)
    page.wait_for_selector(f'#task[data-done="{pk}"]')  # tried again after a few seconds
    assert alice.judgments.get().critique == "Unclear units."
