"""The lens in bulk: `manage.py lens` (queued), after an import, in the export and on the
agreement page. The computation itself runs in test_lens_worker.py."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from annotate import imports, lens, models
from tests.annotate.lens_helpers import store_lens


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("lens", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def round_judgments(annotator, other_annotator, make_responses, round1):
    """In round 1: 10 negative judgments, one positive, one negative with a fresh lens;
    in no round: one negative."""
    responses = make_responses(12, round=round1)
    made = [
        models.Judgment.objects.create(
            response=r, annotator=annotator, verdict="negative", critique=f"Wrong {i}."
        )
        for i, r in enumerate(responses[:10])
    ]
    positive = models.Judgment.objects.create(
        response=responses[10], annotator=annotator, verdict="positive"
    )
    done = models.Judgment.objects.create(
        response=responses[11], annotator=other_annotator, verdict="negative", critique="Old."
    )
    store_lens(done, {})
    (elsewhere,) = make_responses(1)
    other = models.Judgment.objects.create(
        response=elsewhere, annotator=annotator, verdict="negative", critique="Other."
    )
    return {"negatives": made, "positive": positive, "done": done, "elsewhere": other}


def test_it_queues_the_rounds_negative_judgments_without_a_lens_in_chunks(round_judgments):
    out, err = run("--round", "1")
    jobs = DBTaskResult.objects.order_by("enqueued_at")
    assert "Queued the lens of 10 judgments as 2 jobs on the 'lens' queue." in out
    assert "No worker serves that queue now" in err
    queued = [pk for job in jobs for pk in job.args_kwargs["args"][0]]
    assert sorted(queued) == sorted(j.pk for j in round_judgments["negatives"])
    assert [len(job.args_kwargs["args"][0]) for job in jobs] == [lens.CHUNK, 10 - lens.CHUNK]
    assert {job.queue_name for job in jobs} == {"lens"}
    assert {job.priority for job in jobs} == {lens.BULK_PRIORITY}


def test_force_recomputes_fresh_ones_and_model_options_reach_the_job(round_judgments):
    run("--round", "1", "--force", "--base-model", "/models/x", "--threshold", "1.5")
    jobs = list(DBTaskResult.objects.all())
    assert sum(len(job.args_kwargs["args"][0]) for job in jobs) == 11
    assert jobs[0].args_kwargs["kwargs"] == {"base_model": "/models/x", "threshold": 1.5}


def test_a_critique_edited_since_counts_as_needing_a_lens(round_judgments):
    done = round_judgments["done"]
    models.Judgment.objects.filter(pk=done.pk).update(critique="New text.")
    run("--round", "1")
    queued = [pk for job in DBTaskResult.objects.all() for pk in job.args_kwargs["args"][0]]
    assert done.pk in queued


def test_with_nothing_to_do_it_says_so(round_judgments):
    out, _ = run("--round", "1", "--status", "accepted")
    assert "Nothing to do" in out
    assert not DBTaskResult.objects.exists()


def test_an_unknown_round_is_an_error(db):
    with pytest.raises(CommandError, match="There is no round 7."):
        run("--round", "7")


def test_an_import_queues_the_lens_of_its_critiques_when_the_setting_asks(db, settings):
    settings.LENS_AFTER_IMPORT = True
    records = [
        ("r1", {"instruction": "Add 2 and 2.", "output": "5", "judgment": "2 + 2 is 4, not 5."}),
        ("r2", {"instruction": "Add 1 and 1.", "output": "2", "judgment": None}),
    ]
    imports.import_records(records, source="paper", round_number=1)
    [job] = DBTaskResult.objects.all()
    [negative] = models.Judgment.objects.filter(verdict="negative")
    assert job.args_kwargs["args"] == [[negative.pk]]


def test_an_import_queues_nothing_by_default(db):
    records = [("r1", {"instruction": "Add.", "output": "5", "judgment": "Wrong sum."})]
    imports.import_records(records, source="paper")
    assert not DBTaskResult.objects.exists()


# Export ----------------------------------------------------------------------------------


def export(*args) -> list[dict]:
    out = StringIO()
    call_command("export_judgments", "-", *args, stdout=out, stderr=StringIO())
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_export_with_lens_adds_the_fresh_lens_and_null_otherwise(round_judgments):
    done = round_judgments["done"]
    first = round_judgments["negatives"][0]
    stored = store_lens(first, {"Answer": 3.0})
    models.Judgment.objects.filter(pk=done.pk).update(critique="Edited since.")
    by_id = {t["id"]: t for t in export("--status", "all", "--lens")}
    assert by_id[first.pk]["lens"] == {
        "model": "tiny-model",
        "threshold": 1.1,
        "flagged_spans": stored.flagged_spans,
        "flagged_share": stored.flagged_share,
    }
    assert by_id[first.pk]["lens"]["flagged_spans"] == [[0, 6]]
    assert by_id[done.pk]["lens"] is None  # computed for an older critique
    assert by_id[round_judgments["positive"].pk]["lens"] is None


def test_export_without_lens_has_no_lens_key(round_judgments):
    assert all("lens" not in t for t in export("--status", "all"))


# Agreement page --------------------------------------------------------------------------


def test_the_agreement_page_shows_the_lens_per_annotator(
    client, reviewer, annotator, other_annotator, make_responses
):
    a, b, c = make_responses(3)  # texts "Answer 0" ...
    j1 = models.Judgment.objects.create(
        response=a, annotator=annotator, verdict="negative", critique="x", spans=[[0, 8]]
    )
    j2 = models.Judgment.objects.create(
        response=b, annotator=annotator, verdict="negative", critique="y", spans=[[7, 8]]
    )
    j3 = models.Judgment.objects.create(
        response=c, annotator=other_annotator, verdict="negative", critique="z"
    )
    store_lens(j1, {"Answer": 2.0})  # flags 6 of the 8 highlighted characters, share 1/2
    store_lens(j2, {})  # flags none of the 1 highlighted, share 0
    store_lens(j3, {"Answer": 2.0, "2": 2.0})  # share 1
    client.force_login(reviewer)
    page = client.get(reverse("annotate:agreement"))
    html = page.content.decode()
    assert "The lens, by annotator" in html
    rows = {row["username"]: row for row in lens.annotator_stats()}
    assert rows["alice"]["median_flagged_share"] == pytest.approx(0.25)
    assert rows["alice"]["highlight_flagged"] == pytest.approx(6 / 9)
    assert rows["bob"]["median_flagged_share"] == 1.0
    assert rows["bob"]["highlight_flagged"] is None
    assert "<td>67%</td>" in html and "<td>25%</td>" in html


def test_overlap_counts_characters_in_both(db):
    assert lens.overlap([[0, 10]], [[2, 4], [8, 12]]) == 4
    assert lens.overlap([[0, 3], [2, 6]], [[0, 6]]) == 6  # merged first
    assert lens.overlap([], [[0, 6]]) == 0
