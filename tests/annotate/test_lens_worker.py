"""The lens computed for real with a tiny model: `manage.py lens --inline` in this process,
and the page's preview and the bulk command through a real `db_worker` subprocess."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from annotate import lens, models, queue
from tests.annotate.lens_helpers import lens_worker_process, wait_for

TEXTS = [
    "The Moon landing was in 1968, by Apollo 11.",
    "東京は日本の首都です 👍🏽\r\nSecond line.",
    "Water boils at 90 °C at sea level.",
]


@pytest.fixture
def judged(annotator, prompt, round1):
    made = []
    for i, text in enumerate(TEXTS):
        response = models.Response.objects.create(prompt=prompt, text=text, round=round1)
        made.append(
            models.Judgment.objects.create(
                response=response,
                annotator=annotator,
                verdict="negative",
                critique=f"Critique {i}: the number is wrong.",
            )
        )
    return made


def expected(model_dir, judgments) -> list[dict]:
    """What training.lens says for these judgments, computed directly."""
    from training.lens import LensScorer

    scorer = LensScorer.load(base_model=str(model_dir))
    return [
        r.to_dict() for r in scorer.score([lens.record(j.response, j.critique) for j in judgments])
    ]


def test_the_inline_command_stores_exactly_what_the_lens_computes(judged, model_dir, settings):
    settings.LENS_BASE_MODEL = str(model_dir)
    out = StringIO()
    call_command("lens", "--round", "1", "--inline", stdout=out)
    assert "Stored the lens of 3 judgments." in out.getvalue()
    for judgment, want in zip(judged, expected(model_dir, judged), strict=True):
        stored = models.LensResult.objects.get(judgment=judgment)
        assert stored.critique == judgment.critique
        assert stored.tokens == want["tokens"]
        assert stored.flagged_spans == want["flagged_spans"]
        assert stored.flagged_share == pytest.approx(want["flagged_share"])
        assert (stored.model, stored.threshold) == (want["model"], want["threshold"])
        assert stored.tokens[-1]["end"] <= len(judgment.response.text)
    # A second run finds nothing left to do.
    out = StringIO()
    call_command("lens", "--round", "1", "--inline", stdout=out)
    assert "Nothing to do" in out.getvalue()


def test_the_inline_command_says_what_is_wrong_with_a_bad_model_path(judged, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="Cannot compute the lens"):
        call_command("lens", "--inline", "--base-model", str(tmp_path / "missing"))
    assert not models.LensResult.objects.exists()


@pytest.mark.slow
def test_a_db_worker_stores_the_rounds_lens_and_keeps_its_model(
    transactional_db, judged, model_dir
):
    with lens_worker_process(model_dir):
        call_command("lens", "--round", "1", stdout=StringIO())
        wait_for(lambda: models.LensResult.objects.count() == len(judged), timeout=120)
        # An edit makes the lens stale; the worker recomputes it.
        judgment = judged[0]
        judgment.critique = "It was 1969."
        judgment.save()
        wait_for(
            lambda: models.LensResult.objects.get(judgment=judgment).critique == "It was 1969.",
            timeout=60,
        )
    assert not DBTaskResult.objects.filter(status="FAILED").exists()
    stored = models.LensResult.objects.get(judgment=judged[1])
    assert stored.tokens == expected(model_dir, [judged[1]])[0]["tokens"]


@pytest.mark.slow
def test_the_preview_goes_through_the_page_and_a_real_worker(
    transactional_db, client, annotator, response, model_dir
):
    client.force_login(annotator)
    assert queue.next_for(annotator).response == response
    with lens_worker_process(model_dir):
        page = client.post(
            reverse("annotate:lens-preview"),
            {"response": response.pk, "critique": "The capital is Lyon."},
            headers={"HX-Request": "true"},
        )
        assert page.status_code == 200
        url = reverse("annotate:lens-preview-result", args=[DBTaskResult.objects.get().pk])

        def done():
            html = client.get(url, headers={"HX-Request": "true"}).content.decode()
            return html if "lens-text" in html else None

        html = wait_for(done, timeout=120, every=0.1)
    assert "nothing was saved" in html
    assert "tokens (" in html
    assert not models.LensResult.objects.exists()


def test_the_worker_loads_a_model_once_with_the_configured_threads(
    model_dir, settings, monkeypatch, tmp_path
):
    import shutil

    import torch

    before = torch.get_num_threads()
    settings.LENS_THREADS = 1
    monkeypatch.setattr(lens, "_SCORERS", {})
    monkeypatch.setattr(lens, "MAX_SCORERS", 1)
    other = shutil.copytree(model_dir, tmp_path / "other-model")
    try:
        first = lens.scorer(str(model_dir), None)
        assert torch.get_num_threads() == 1
        assert lens.scorer(str(model_dir), None) is first  # kept between jobs
        lens.scorer(str(other), None)  # another model: the first one is unloaded
        assert list(lens._SCORERS) == [(str(other), None)]
    finally:
        torch.set_num_threads(before)
