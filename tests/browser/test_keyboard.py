"""The keyboard alone, as a person types: after every key, where the focus is and what
was stored.

An annotator judges with 1 / 2, a critique and Ctrl+Enter; a reviewer works with A,
R + a note + Ctrl+Enter, and E + Ctrl+Enter. No Esc and no clicks in between: after each
htmx swap the focus must be on the new item's heading, so the next key is a shortcut and
never text in a box.
"""

from annotate import models
from tests.browser.conftest import (
    BROWSER,
    announced,
    focused,
    log_in,
    make_tasks,
    make_user,
)

pytestmark = BROWSER


def task_id(page) -> int:
    return int(page.get_attribute("#task", "data-response-id"))


def submit_task(page) -> int:
    """Ctrl+Enter; wait for htmx to swap in the next task; return the judged one's id."""
    pk = task_id(page)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f'#task[data-done="{pk}"]')
    return pk


def review_id(page) -> int:
    return int(page.get_attribute("#review", "data-judgment-id"))


def review_and_wait(page, key: str) -> int:
    pk = review_id(page)
    page.keyboard.press(key)
    page.wait_for_selector(f'#review[data-done="{pk}"]')
    return pk


def test_after_has_problems_and_ctrl_enter_the_next_task_takes_1_as_a_verdict(page):
    alice = make_user("alice", "annotators")
    make_tasks(3)
    log_in(page, "alice")

    page.keyboard.press("2")
    assert focused(page) == "#id_critique"
    page.keyboard.type("The year is wrong.")
    first = submit_task(page)
    assert focused(page) == "#task-heading"
    assert page.input_value("[name=critique]") == ""
    assert announced(page) == "Judgment saved."

    page.keyboard.press("1")
    assert page.is_checked("[name=verdict][value=positive]")
    assert page.input_value("[name=critique]") == ""
    second = submit_task(page)
    assert focused(page) == "#task-heading"

    stored = {j.response_id: (j.verdict, j.critique) for j in alice.judgments.all()}
    assert stored == {first: ("negative", "The year is wrong."), second: ("positive", "")}


def judged_tasks(n: int) -> list[models.Judgment]:
    alice = make_user("alice", "annotators")
    return [
        models.Judgment.objects.create(
            response=response,
            annotator=alice,
            verdict="negative",
            critique=f"Critique {i}.",
        )
        for i, response in enumerate(make_tasks(n))
    ]


def test_after_a_rejection_a_and_e_are_shortcuts_for_the_next_judgment(page):
    first, second, third, fourth = judged_tasks(4)
    make_user("rita", "reviewers")
    log_in(page, "rita", expect="/review/")

    page.keyboard.press("r")
    assert focused(page) == "#id_review_note"
    page.keyboard.type("Say where the year comes from.")
    assert review_and_wait(page, "Control+Enter") == first.pk
    assert focused(page) == "#review-heading"
    assert page.input_value("[name=review_note]") == ""
    assert announced(page) == "Review saved: rejected."

    page.keyboard.press("e")
    assert page.get_attribute("#edit-details", "open") is not None
    assert focused(page) == "#id_critique"
    page.keyboard.press("End")
    page.keyboard.type(" Edited.")
    assert review_and_wait(page, "Control+Enter") == second.pk
    assert focused(page) == "#review-heading"

    assert review_and_wait(page, "a") == third.pk
    assert focused(page) == "#review-heading"
    assert announced(page) == "Review saved: accepted."

    for judgment in (first, second, third, fourth):
        judgment.refresh_from_db()
    assert (first.review_state, first.review_note) == (
        "rejected",
        "Say where the year comes from.",
    )
    assert (second.review_state, second.critique) == ("accepted", "Critique 1. Edited.")
    assert (third.review_state, third.review_note) == ("accepted", "")
    assert fourth.review_state == "pending"


def press(page, key: str, focus: str) -> None:
    page.keyboard.press(key)
    assert focused(page) == focus, f"after {key}"


def test_an_annotator_judges_20_tasks_with_the_keyboard_alone(page):
    alice = make_user("alice", "annotators")
    make_tasks(22)
    log_in(page, "alice")
    expected: dict[int, tuple[str, str]] = {}
    skipped: list[int] = []

    for i in range(20):
        if i in (5, 12):  # skip one, with a reason, and go on with the next
            pk = task_id(page)
            press(page, "s", "#id_reason")
            page.keyboard.type(f"Not my field ({i}).")
            assert focused(page) == "#id_reason"
            assert submit_task(page) == pk
            assert focused(page) == "#task-heading"
            assert announced(page) == "Skipped; it won't come back to you."
            skipped.append(pk)
            assert list(models.Skip.objects.values_list("response_id", flat=True)) == skipped

        pk = task_id(page)
        start = "#task-heading" if i else "body"  # nothing has the focus on a fresh page
        if i % 4 == 0:
            press(page, "1", start)
            expected[pk] = ("positive", "")
        elif i % 4 == 1:
            press(page, "2", "#id_critique")
            page.keyboard.type(f"Wrong year in answer {i}.")
            expected[pk] = ("negative", f"Wrong year in answer {i}.")
        elif i % 4 == 2:
            press(page, "1", start)
            press(page, "2", "#id_critique")  # changed their mind
            page.keyboard.type(f"On second thought: {i}.")
            expected[pk] = ("negative", f"On second thought: {i}.")
        else:
            press(page, "?", start)
            assert page.get_attribute("#shortcuts", "open") is not None
            press(page, "?", start)
            press(page, "1", start)
            expected[pk] = ("positive", "")
        assert submit_task(page) == pk
        assert focused(page) == "#task-heading"
        assert announced(page) == "Judgment saved."
        stored = {j.response_id: (j.verdict, j.critique) for j in alice.judgments.all()}
        assert stored == expected

    assert alice.judgments.count() == 20
    assert models.Skip.objects.filter(annotator=alice).count() == 2


def test_a_reviewer_works_10_judgments_with_the_keyboard_alone(page):
    judgments = judged_tasks(11)
    make_user("rita", "reviewers")
    log_in(page, "rita", expect="/review/")
    expected: dict[int, tuple] = {}

    for i, judgment in enumerate(judgments[:10]):
        assert review_id(page) == judgment.pk
        assert focused(page) == ("#review-heading" if i else "body")
        if i % 3 == 0:
            assert review_and_wait(page, "a") == judgment.pk
            expected[judgment.pk] = ("accepted", f"Critique {i}.", "")
            said = "Review saved: accepted."
        elif i % 3 == 1:
            press(page, "r", "#id_review_note")
            page.keyboard.type(f"Be specific ({i}).")
            assert focused(page) == "#id_review_note"
            assert review_and_wait(page, "Control+Enter") == judgment.pk
            expected[judgment.pk] = ("rejected", f"Critique {i}.", f"Be specific ({i}).")
            said = "Review saved: rejected."
        else:
            press(page, "e", "#id_critique")
            page.keyboard.press("End")
            page.keyboard.type(" Sharper.")
            assert focused(page) == "#id_critique"
            assert review_and_wait(page, "Control+Enter") == judgment.pk
            expected[judgment.pk] = (
                "accepted",
                f"Critique {i}. Sharper.",
                "Edited by the reviewer before accepting.",
            )
            said = "Review saved: edited and accepted."
        assert focused(page) == "#review-heading", f"after judgment {i}"
        assert announced(page) == said
        stored = {
            j.pk: (j.review_state, j.critique, j.review_note)
            for j in models.Judgment.objects.exclude(review_state="pending")
        }
        assert stored == expected

    assert review_id(page) == judgments[10].pk
    assert models.Judgment.objects.filter(review_state="pending").count() == 1


def test_a_filter_changed_by_keyboard_keeps_the_focus_on_its_select(page):
    judged_tasks(2)
    bob = make_user("bob", "annotators")
    models.Judgment.objects.create(
        response=make_tasks(1, round_number=2)[0], annotator=bob, verdict="positive"
    )
    make_user("rita", "reviewers")
    log_in(page, "rita", expect="/review/")
    page.focus("#id_annotator")
    first = review_id(page)
    page.keyboard.press("ArrowDown")  # "alice"
    page.wait_for_url("**/review/?annotator=alice*")
    page.keyboard.press("ArrowDown")  # "bob"
    page.wait_for_function(f"document.querySelector('#review').dataset.judgmentId !== '{first}'")
    assert focused(page) == "#id_annotator"
    assert page.inner_text("#review-heading").endswith("by bob")
