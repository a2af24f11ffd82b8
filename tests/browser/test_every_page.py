"""Every page and state, at a phone's, a tablet's and a desktop's width, with the data
people really paste: long words, long URLs, wide tables and code.

- no horizontal overflow: `document.documentElement.scrollWidth <= innerWidth`;
- axe-core (tests/vendor/axe-core, injected here, never served by the app): no serious
  or critical violation; the third-party Swagger UI at /api/docs/ is exempt;
- screenshots of each at phone and desktop width into $ARTIFACTS_DIR (default artifacts/).

Each test collects every problem and reports them all at once.
"""

from pathlib import Path

from django.conf import settings

from annotate import models
from tests.browser.conftest import (
    BROWSER,
    PASSWORD,
    artifacts_dir,
    log_in,
    make_tasks,
    make_user,
)

pytestmark = BROWSER

AXE = Path(settings.BASE_DIR) / "tests" / "vendor" / "axe-core" / "axe.min.js"
WIDTHS = {"phone": 360, "tablet": 768, "desktop": 1366}
SCREENSHOTS = ("phone", "desktop")

LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis" * 5
LONG_URL = "https://example.org/" + "/".join(f"segment-{i}" for i in range(30)) + "?q=" + "x" * 80
WIDE_TABLE = (
    "| " + " | ".join(f"column {i}" for i in range(14)) + " |\n"
    "|" + "---|" * 14 + "\n"
    "| " + " | ".join(f"value-{i}-{LONG_WORD[:30]}" for i in range(14)) + " |\n"
)
CODE = "```python\ndef f(items):\n    return '" + "x" * 200 + "'  # a long line\n```\n"
HAIKU = "An old silent pond\nA frog jumps into the pond—\nSplash! Silence again."
CRITIQUE = f"The answer invents {LONG_WORD}; see {LONG_URL}."

WIDEST = """() => {
    const width = window.innerWidth;
    const wide = [...document.querySelectorAll("body *")]
        .filter((el) => el.getBoundingClientRect().right > width + 1)
        .filter((el) => !el.closest(".visually-hidden, .skip-link"))
        .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
             + (el.className && typeof el.className === "string" ? "." + el.className : ""));
    return {scroll: document.documentElement.scrollWidth, inner: width, wide: wide.slice(0, 5)};
}"""

AXE_RUN = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => v.id + " (" + v.impact + "): "
             + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "));
}"""


class Pages:
    """Checks the page as it is now, under a name, and remembers every problem."""

    def __init__(self, page):
        self.page = page
        self.problems: list[str] = []
        self.seen: list[str] = []

    def check(self, name: str, *, axe: bool = True) -> None:
        page = self.page
        self.seen.append(name)
        for label, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            measured = page.evaluate(WIDEST)
            if measured["scroll"] > measured["inner"]:
                self.problems.append(
                    f"{name} at {width}px is {measured['scroll']}px wide: {measured['wide']}"
                )
            if label in SCREENSHOTS:
                path = artifacts_dir() / f"{name}-{label}.png"
                page.screenshot(path=str(path), full_page=True)
        if axe:
            if not page.evaluate("typeof window.axe !== 'undefined'"):
                page.add_script_tag(path=str(AXE))
            self.problems += [f"{name}: {v}" for v in page.evaluate(AXE_RUN)]
        page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})

    def assert_clean(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


def hostile_data() -> list[models.Response]:
    responses = make_tasks(
        3,
        instruction=f"Write a haiku about {LONG_WORD}.\nSources: {LONG_URL}",
        input="x = [1, 2, 3]\ny = x\nprint(y)",
        text=f"{HAIKU}\n\n{WIDE_TABLE}\n{CODE}\nMore at {LONG_URL} and {LONG_WORD}.",
    )
    models.Guideline.objects.create(
        title="How to judge", body=f"# Rules\n\n{WIDE_TABLE}\n\nRead {LONG_URL}.\n\n{CODE}"
    )
    return responses


def test_pages_of_an_annotator_and_of_someone_logged_out(page):
    alice = make_user("alice", "annotators")
    responses = hostile_data()
    pages = Pages(page)

    page.goto(f"{page.base}/accounts/login/")
    pages.check("login")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector(".errors")
    pages.check("login-error")
    page.goto(f"{page.base}/no-such-page/")
    pages.check("not-found")
    page.goto(f"{page.base}/api/docs/")
    assert page.url == f"{page.base}/accounts/login/?next=/api/docs/"
    page.goto(f"{page.base}/accounts/login/")
    page.context.clear_cookies()  # the form's CSRF token now matches no cookie
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Your session ended")
    pages.check("csrf-failure")

    log_in(page, "alice")
    pages.check("task")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#task .errors")
    pages.check("task-errors")
    page.keyboard.press("?")
    page.keyboard.press("s")
    pages.check("task-skip-and-shortcuts")
    page.keyboard.press("Escape")
    page.keyboard.press("2")
    page.keyboard.insert_text(CRITIQUE + "y" * 20_000)
    pages.check("task-over-the-limit")
    page.fill("#id_critique", CRITIQUE)
    page.context.clear_cookies()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#page-alert")
    pages.check("task-session-ended")

    log_in(page, "alice")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f'#task[data-done="{responses[0].pk}"]')
    pages.check("task-after-a-judgment")
    judgment = alice.judgments.get()
    page.goto(f"{page.base}/judgments/")
    pages.check("my-judgments")
    page.goto(f"{page.base}/judgments/{judgment.pk}/edit/")
    pages.check("edit-judgment")
    reviewer = make_user("rita", "reviewers")
    judgment.reject(reviewer, f"Shorter, please: {LONG_WORD}")
    page.reload()
    pages.check("edit-judgment-reviewed")
    page.goto(f"{page.base}/guidelines/")
    pages.check("guidelines")
    page.goto(f"{page.base}/review/")
    pages.check("not-allowed")
    models.Response.objects.update(retired=True)
    page.goto(f"{page.base}/")
    assert "Nothing left to judge" in page.inner_text("h1")
    pages.check("task-empty")
    pages.assert_clean()


def test_pages_of_a_reviewer_and_of_staff(page):
    annotator = make_user("a-very-long-username-" + "x" * 60, "annotators")
    other = make_user("bob", "annotators")
    responses = hostile_data()
    models.Response.objects.update(overlap=2)
    for response in responses:
        for who in (annotator, other):
            models.Judgment.objects.create(
                response=response, annotator=who, verdict="negative", critique=CRITIQUE
            )
    models.TrainingRun.objects.create(status="failed", error=f"Out of memory: {LONG_WORD}")
    make_user("rita", "reviewers")
    make_user("sam", is_staff=True, is_superuser=True)
    pages = Pages(page)

    log_in(page, "rita", expect="/review/")
    pages.check("review")
    page.keyboard.press("r")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#review .field-errors")
    pages.check("review-errors")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    pages.check("review-edit")
    page.goto(f"{page.base}/review/agreement/")
    pages.check("agreement")
    page.goto(f"{page.base}/judgments/")
    pages.check("my-judgments-empty")
    page.goto(f"{page.base}/review/?round=1&annotator=rita")
    pages.check("review-empty")

    page.click("button:has-text('Log out')")
    log_in(page, "sam", expect="/overview/")
    pages.check("overview")
    page.goto(f"{page.base}/api/docs/")
    page.wait_for_selector("#swagger-ui")
    pages.check("api-docs", axe=False)  # third-party Swagger UI: exempt from axe
    pages.assert_clean()


def test_the_training_comparison_rounds_and_onboarding_pages(page):
    from annotate import compare
    from bench.run_page import step_record

    rita = make_user("rita", "reviewers")
    make_user("sam", is_staff=True, is_superuser=True)
    responses = hostile_data()
    round2 = models.Round.objects.create(number=2, adapter=f"/runs/{LONG_WORD}")
    for response in responses:
        models.Response.objects.create(
            prompt=response.prompt, round=round2, generator="tuned", text=response.text[::-1]
        )
        models.Judgment.objects.create(
            response=response, annotator=rita, verdict="negative", critique=CRITIQUE
        )
    comparison = compare.create(
        system_a="round:1",
        system_b="round:2",
        sample_size=3,
        instructions=f"Prefer the answer that is correct. {LONG_URL}",
    )
    series = [step_record(i + 1, evaluate=(i + 1) % 5 == 0) for i in range(20)]
    run = models.TrainingRun.objects.create(
        status="running",
        total_steps=40,
        series=series,
        worker_host=LONG_WORD,
        log_tail=f"step 20 {LONG_URL}\n{CODE}",
        config={"collapse_margin": 0.3},
    )
    pages = Pages(page)

    log_in(page, "rita", expect="/review/")
    page.goto(f"{page.base}/compare/")
    pages.check("compare-list")
    page.goto(f"{page.base}/compare/{comparison.pk}/")
    pages.check("compare-pair")
    page.keyboard.press("1")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector('#compare[data-voted="1"]')
    pages.check("compare-pair-after-a-vote")
    page.goto(f"{page.base}/compare/{comparison.pk}/results/")
    pages.check("compare-results")
    page.goto(f"{page.base}/rounds/")
    pages.check("rounds")

    page.click("button:has-text('Log out')")
    log_in(page, "sam", expect="/overview/")
    page.goto(f"{page.base}/compare/new/")
    pages.check("compare-new")
    page.goto(f"{page.base}/training/")
    pages.check("training-list")
    page.goto(f"{page.base}/training/new/")
    pages.check("training-new")
    page.goto(f"{page.base}/training/{run.pk}/")
    pages.check("training-run")
    page.goto(f"{page.base}/staff/users/add/")
    pages.check("add-people")
    pages.assert_clean()


def test_the_admin_pages_curators_use(page):
    make_user("sam", is_staff=True, is_superuser=True)
    responses = hostile_data()
    annotator = make_user("a-very-long-username-" + "x" * 60, "annotators")
    judgment = models.Judgment.objects.create(
        response=responses[0],
        annotator=annotator,
        verdict="negative",
        critique=CRITIQUE,
        spans=[[0, 10]],
    )
    models.TrainingRun.objects.create(status="failed", error=f"Out of memory: {LONG_WORD}")
    pages = Pages(page)

    log_in(page, "sam", expect="/overview/")
    for name, path in [
        ("admin-index", "/admin/"),
        ("admin-judgments", "/admin/annotate/judgment/"),
        ("admin-judgment", f"/admin/annotate/judgment/{judgment.pk}/change/"),
        ("admin-responses", "/admin/annotate/response/"),
        ("admin-response", f"/admin/annotate/response/{responses[0].pk}/change/"),
        ("admin-prompts", "/admin/annotate/prompt/"),
        ("admin-training-runs", "/admin/annotate/trainingrun/"),
    ]:
        page.goto(f"{page.base}{path}")
        pages.check(name)
    pages.assert_clean()
