"""A real browser: an evaluator votes on 10 pairs by keyboard only, then the results page
and the rounds dashboard are drawn (screenshots to $ARTIFACTS_DIR)."""

import pytest

from annotate import compare, models
from tests.annotate.compare_helpers import make_rounds
from tests.browser.conftest import BROWSER, PASSWORD, artifacts_dir, make_user

pytestmark = BROWSER

KEYS = ["1", "2", "3", "4", "1", "2", "2", "1", "3", "2"]


def log_in(tab, base: str, username: str, then: str) -> None:
    tab.goto(f"{base}/accounts/login/?next={then}")
    tab.fill("#id_username", username)
    tab.fill("#id_password", PASSWORD)
    tab.keyboard.press("Enter")
    tab.wait_for_url(f"{base}{then}")


def focused(tab) -> str:
    return tab.evaluate(
        "document.activeElement && (document.activeElement.id || document.activeElement.tagName)"
    )


@pytest.mark.django_db(transaction=True)
def test_an_evaluator_votes_by_keyboard_and_the_results_are_drawn(page, live_server):
    base = live_server.url
    make_user("eve", "annotators")
    make_user("rita", "reviewers")
    make_rounds(12)
    # Judgments, so the dashboard's negative-share chart has something to draw.
    judge = make_user("judge", "annotators")
    for i, response in enumerate(models.Response.objects.order_by("pk")):
        negative = i % 3 == 0 if response.round_id == 1 else i % 5 == 0
        models.Judgment.objects.create(
            response=response,
            annotator=judge,
            verdict="negative" if negative else "positive",
            critique="Wrong." if negative else "",
        )
    comparison = compare.create(
        system_a="round:1",
        system_b="round:2",
        sample_size=12,
        seed=4,
        instructions="Prefer the answer that is **correct**.",
    )
    page_url = f"/compare/{comparison.pk}/"
    log_in(page, base, "eve", page_url)
    assert page.inner_text("#pair-heading") == "Which answer is better?"

    choices = {"1": "left", "2": "right", "3": "tie", "4": "both_bad"}
    for i, key in enumerate(KEYS):
        page.keyboard.press(key)
        assert page.is_checked(f"[name=choice][value={choices[key]}]")
        assert focused(page) != "id_reason"
        if i == 4:
            # R goes to the reason box; typing there doesn't choose; Ctrl+Enter submits.
            page.keyboard.press("r")
            assert focused(page) == "id_reason"
            page.keyboard.type("Both fine, left is 12 words shorter.")
            assert page.is_checked(f"[name=choice][value={choices[key]}]")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f'#compare[data-voted="{i + 1}"]')
        # The new pair's heading has the focus, never the reason box; the live region speaks.
        assert focused(page) == "pair-heading"
        page.wait_for_function(
            "document.getElementById('compare-status').textContent === 'Vote saved.'"
        )
        assert page.input_value("#id_reason") == ""

    # S skips the 11th pair.
    page.keyboard.press("s")
    page.wait_for_function(
        "document.getElementById('compare-status').textContent.startsWith('Skipped')"
    )
    assert focused(page) == "pair-heading"

    votes = models.Vote.objects.filter(evaluator__username="eve")
    assert votes.count() == 10
    assert sorted(v.choice for v in votes) == sorted(choices[k] for k in KEYS)
    assert votes.get(reason__startswith="Both fine").choice == choices[KEYS[4]]
    assert models.PairSkip.objects.filter(evaluator__username="eve").count() == 1
    assert all(v.seconds_spent is not None for v in votes)

    # On a phone the two answers stack.
    page.set_viewport_size({"width": 390, "height": 844})
    left = page.locator(".side-response").nth(0).bounding_box()
    right = page.locator(".side-response").nth(1).bounding_box()
    assert right["y"] >= left["y"] + left["height"] - 1
    page.screenshot(path=str(artifacts_dir() / "compare-phone.png"), full_page=True)

    page.context.clear_cookies()
    page.set_viewport_size({"width": 1280, "height": 900})
    results = f"/compare/{comparison.pk}/results/"
    log_in(page, base, "rita", results)
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('bt-chart'))")
    page.screenshot(path=str(artifacts_dir() / "compare-results.png"), full_page=True)
    page.goto(f"{base}/rounds/")
    for chart in ("negative-chart", "base-chart", "bt-chart"):
        page.wait_for_function(
            f"window.Chart && Chart.getChart(document.getElementById('{chart}'))"
        )
    page.screenshot(path=str(artifacts_dir() / "rounds-dashboard.png"), full_page=True)
