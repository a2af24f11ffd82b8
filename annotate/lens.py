"""The critique lens: the response tokens a critique flags, which CUT would push down.

training.lens computes it (the trainer's templates, tokenisation and λ); this module runs
it where it belongs and keeps the results.

- **Jobs.** The web process never loads a model (nor imports torch): it enqueues a job on
  settings.LENS_QUEUE and reads rows. A worker, `manage.py db_worker --queue-name lens`,
  runs `preview` (a draft critique; nothing is saved, the marking is the job's return
  value, which the page polls for) and `compute` (stored judgments, saved as LensResult).
  The worker keeps each LensScorer it loaded in _SCORERS, keyed by model, so only the
  first job after a start pays for loading the model.
- **A queue of its own.** A preview must answer in a second or two; on the "gpu" queue it
  would wait behind a training run for hours. Previews also outrank bulk jobs on the lens
  queue (PREVIEW_PRIORITY), and bulk work goes in chunks of CHUNK judgments, so a preview
  waits at most for one chunk.
- **Freshness.** A LensResult keeps the critique it was computed from. When a judgment's
  critique changes afterwards (the annotator's edit, the reviewer's edit-and-accept, the
  admin, the API), the post_save handler below enqueues a recompute.
"""

from collections.abc import Iterable
from statistics import median

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone
from django_tasks import task

from annotate import models

CHUNK = 8  # judgments per bulk job: a preview queued behind one waits for 8, not 800
PREVIEW_PRIORITY = 50
BULK_PRIORITY = -10
# The reviewer's warnings: a critique that flags (almost) nothing teaches nothing; one that
# flags most of the response pushes all of it down, the good parts too.
LOW_SHARE = 0.02
HIGH_SHARE = 0.6

# Loaded scorers, in the worker process only: (base_model, adapter) -> LensScorer, the most
# recently used last. At most MAX_SCORERS stay loaded (a model per round's adapter would
# otherwise pile up in the worker's memory).
_SCORERS: dict[tuple, object] = {}
MAX_SCORERS = 2


def model_options(
    base_model: str | None = None, adapter: str | None = None, threshold: float | None = None
) -> dict:
    """Which model the lens scores with and λ: what a job or command asked for, else the
    settings of the process that scores (the worker's; None there: the defaults)."""
    return {
        "base_model": base_model if base_model is not None else settings.LENS_BASE_MODEL,
        "adapter": adapter if adapter is not None else settings.LENS_ADAPTER,
        "threshold": threshold if threshold is not None else settings.LENS_THRESHOLD,
    }


def worker_alive() -> bool:
    """Is a worker serving the lens queue? Cheap: one query for its heartbeat."""
    from annotate import workers

    return workers.alive(settings.LENS_QUEUE)


def scorer(base_model: str | None, adapter: str | None):
    """The LensScorer for this model, loaded once per worker process."""
    key = (base_model, adapter)
    if key in _SCORERS:
        _SCORERS[key] = _SCORERS.pop(key)  # most recently used last
    else:
        while len(_SCORERS) >= MAX_SCORERS:
            _SCORERS.pop(next(iter(_SCORERS)))
        # Imported here: torch loads in the worker, never in the web process.
        import torch

        from training.lens import LensScorer

        if settings.LENS_THREADS:
            torch.set_num_threads(settings.LENS_THREADS)
        _SCORERS[key] = LensScorer.load(base_model=base_model, adapter=adapter)
    return _SCORERS[key]


def record(response: models.Response, critique: str) -> dict:
    """The training record for a response and a critique, as export writes it."""
    return {
        "instruction": response.prompt.instruction,
        "input": response.prompt.input,
        "output": response.text,
        "judgment": critique,
    }


# Jobs ----------------------------------------------------------------------------------


@task(queue_name=settings.LENS_QUEUE, priority=PREVIEW_PRIORITY)
def preview(
    response_id: int,
    critique: str,
    user_id: int,
    base_model: str | None = None,
    adapter: str | None = None,
    threshold: float | None = None,
) -> dict:
    """The lens of a draft critique; user_id says whose draft it is (who may read it)."""
    options = model_options(base_model, adapter, threshold)
    response = models.Response.objects.select_related("prompt").get(pk=response_id)
    lens = scorer(options["base_model"], options["adapter"])
    [result] = lens.score([record(response, critique)], options["threshold"])
    return result.to_dict()


@task(queue_name=settings.LENS_QUEUE, priority=BULK_PRIORITY)
def compute(
    judgment_ids: list[int],
    base_model: str | None = None,
    adapter: str | None = None,
    threshold: float | None = None,
) -> dict:
    """Compute and store the lens of these judgments (those with a critique)."""
    judgments = models.Judgment.objects.filter(pk__in=judgment_ids)
    return {"stored": compute_now(judgments, base_model, adapter, threshold)}


def compute_now(
    judgments: QuerySet,
    base_model: str | None = None,
    adapter: str | None = None,
    threshold: float | None = None,
    batch: int = CHUNK,
) -> int:
    """Score and store in this process (a worker, or `manage.py lens --inline`)."""
    options = model_options(base_model, adapter, threshold)
    lens = scorer(options["base_model"], options["adapter"])
    threshold = options["threshold"]
    todo = list(judgments.exclude(critique="").select_related("response__prompt").order_by("pk"))
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        results = lens.score([record(j.response, j.critique) for j in chunk], threshold)
        for judgment, result in zip(chunk, results, strict=True):
            store(judgment, judgment.critique, result.to_dict())
    return len(todo)


def store(judgment: models.Judgment, critique: str, result: dict) -> models.LensResult:
    lens, _ = models.LensResult.objects.update_or_create(
        judgment=judgment,
        defaults={
            "model": result["model"],
            "threshold": result["threshold"],
            "critique": critique,
            "flagged_spans": result["flagged_spans"],
            "flagged_share": result["flagged_share"],
            "tokens": result["tokens"],
            "truncated": bool(result.get("truncated", False)),
            "computed_at": timezone.now(),
        },
    )
    return lens


# Enqueueing ----------------------------------------------------------------------------


def enqueue_preview(response: models.Response, critique: str, user) -> str:
    """The job's id, for the page to poll. The worker scores with its own settings.

    The user's previews still waiting in the queue are dropped first: the page shows only
    the newest, so pressing L three times while typing costs the worker one preview."""
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.ready().filter(
        task_path=preview.module_path, args_kwargs__args__2=user.pk
    ).delete()
    job = preview.enqueue(response.pk, critique, user.pk)
    return str(job.id)


def enqueue_compute(
    judgment_ids: Iterable[int], priority: int = BULK_PRIORITY, **options
) -> list[str]:
    """Jobs of CHUNK judgments each; options (base_model, adapter, threshold) override the
    worker's settings. A page that waits for one passes PREVIEW_PRIORITY, so it does not
    queue behind a round's bulk work."""
    ids = list(judgment_ids)
    if len(ids) == 1:
        # A page asking again (a reload, another reviewer) replaces a job not yet started.
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.ready().filter(
            task_path=compute.module_path, args_kwargs__args__0=ids
        ).delete()
    task = compute.using(priority=priority)
    return [str(task.enqueue(ids[i : i + CHUNK], **options).id) for i in range(0, len(ids), CHUNK)]


def needing_lens(judgments: QuerySet, force: bool = False) -> QuerySet:
    """The negative judgments among these that have no lens for their current critique."""
    negatives = judgments.filter(verdict=models.Judgment.Verdict.NEGATIVE).exclude(critique="")
    if force:
        return negatives
    return negatives.filter(Q(lens__isnull=True) | ~Q(lens__critique=F("critique")))


def after_import(response_ids: list[int], source: str) -> list[str]:
    """settings.LENS_AFTER_IMPORT: the lens of the negative judgments an import created
    (filed under the source's importer account) goes on the worker's queue."""
    if not settings.LENS_AFTER_IMPORT or not response_ids:
        return []
    from annotate.imports import importer_account

    importer = importer_account(source)
    ids: list[int] = []
    for start in range(0, len(response_ids), 1000):  # SQLite's limit on parameters
        judgments = models.Judgment.objects.filter(
            annotator=importer, response_id__in=response_ids[start : start + 1000]
        )
        ids += needing_lens(judgments).values_list("pk", flat=True)
    return enqueue_compute(ids)


@receiver(post_save, sender=models.Judgment, dispatch_uid="lens_recompute_on_edit")
def _recompute_when_critique_changes(sender, instance: models.Judgment, created: bool, **kw):
    # Only edits can make a stored lens stale; a new judgment has none (and submit, the
    # hot path, pays nothing here).
    update_fields = kw.get("update_fields")
    if created or (update_fields is not None and "critique" not in update_fields):
        return
    if not instance.critique:
        return
    stale = models.LensResult.objects.filter(judgment_id=instance.pk).exclude(
        critique=instance.critique
    )
    if stale.exists():
        transaction.on_commit(lambda: enqueue_compute([instance.pk]))


# Reading -------------------------------------------------------------------------------


def span_length(spans: Iterable) -> int:
    return sum(end - start for start, end in merge(spans))


def merge(spans: Iterable) -> list[tuple[int, int]]:
    """Sorted, overlapping or touching spans joined; malformed ones dropped."""
    merged: list[list[int]] = []
    for span in sorted(
        tuple(s) for s in spans or [] if isinstance(s, list | tuple) and len(s) == 2
    ):
        start, end = span
        if not (isinstance(start, int) and isinstance(end, int) and start < end):
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def overlap(highlighted: Iterable, flagged: Iterable) -> int:
    """Characters in both sets of spans."""
    a, b = merge(highlighted), merge(flagged)
    i = j = total = 0
    while i < len(a) and j < len(b):
        total += max(0, min(a[i][1], b[j][1]) - max(a[i][0], b[j][0]))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def annotator_stats() -> list[dict]:
    """Per annotator, over their judgments with a lens of the current critique: how many,
    the median flagged share, and the share of their highlighted characters the lens
    flags too (None where they highlighted nothing)."""
    rows = (
        models.LensResult.objects.filter(critique=F("judgment__critique"))
        .values_list(
            "judgment__annotator__username", "flagged_share", "flagged_spans", "judgment__spans"
        )
        .order_by("judgment__annotator__username")
    )
    per: dict[str, dict] = {}
    for username, share, flagged, spans in rows.iterator(chunk_size=2000):
        entry = per.setdefault(username, {"shares": [], "highlighted": 0, "both": 0})
        entry["shares"].append(share)
        entry["highlighted"] += span_length(spans)
        entry["both"] += overlap(spans, flagged)
    return [
        {
            "username": username,
            "judgments": len(entry["shares"]),
            "median_flagged_share": median(entry["shares"]),
            "highlight_flagged": entry["both"] / entry["highlighted"]
            if entry["highlighted"]
            else None,
        }
        for username, entry in per.items()
    ]
