from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MinValueValidator
from django.db import models
from django.db.models import Count, F, IntegerField, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from annotate import validators as v


def count_subquery(queryset: QuerySet, by: str, count: Count | None = None) -> Coalesce:
    """count (default COUNT(*)) over a queryset correlated with OuterRef on `by`, as a
    subquery: one number per outer row, 0 when it has none. Not Count() over a join, which
    multiplies rows when two are counted side by side."""
    counted = queryset.order_by().values(by).annotate(n=count or Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _spans_are_pairs(spans) -> bool:
    # full_clean() calls clean() even when the field validator already failed.
    try:
        v.validate_spans(spans)
    except ValidationError:
        return False
    return True


class Round(models.Model):
    """One model version's batch of responses in the online loop.

    The round number is the primary key, so `--round N` and `Response.round_id` agree.
    """

    number = models.PositiveIntegerField(primary_key=True)
    base_model = models.CharField(max_length=500, blank=True)
    adapter = models.CharField(
        max_length=1000, blank=True, help_text="Adapter directory; blank for the base model."
    )
    training_run = models.ForeignKey(
        "TrainingRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="rounds"
    )
    notes = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"Round {self.number}"


class Prompt(models.Model):
    source = models.CharField(max_length=v.MAX_SOURCE_CHARS, default="manual")
    # Unique per source so re-imports are idempotent; a content hash when the file has no id.
    external_id = models.CharField(max_length=v.MAX_EXTERNAL_ID_CHARS)
    instruction = models.TextField(
        validators=[v.validate_not_blank, MaxLengthValidator(v.MAX_INSTRUCTION_CHARS)]
    )
    input = models.TextField(blank=True, validators=[MaxLengthValidator(v.MAX_INPUT_CHARS)])
    metadata = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="prompt_unique_source_id"
            )
        ]

    def __str__(self) -> str:
        return self.instruction[:80]


class Response(models.Model):
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField(
        validators=[v.validate_not_blank, MaxLengthValidator(v.MAX_RESPONSE_CHARS)]
    )
    generator = models.CharField(max_length=v.MAX_GENERATOR_CHARS, blank=True, db_index=True)
    round = models.ForeignKey(
        Round, null=True, blank=True, on_delete=models.PROTECT, related_name="responses"
    )
    overlap = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Judgments this response needs."
    )
    # Kept equal to judgments.count() by the code that creates and deletes judgments
    # (queue.submit, the importer, Judgment.delete); the queue filters on it with an index
    # instead of counting judgments for every candidate.
    judgment_count = models.PositiveIntegerField(default=0, editable=False)
    retired = models.BooleanField(default=False, help_text="Retired responses leave the queue.")
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [
            # The queue's scan: open responses, newest round first, then oldest. Full
            # responses leave the index, so neither next_for's walk nor the "left" count
            # steps over the judged part of the queue.
            models.Index(
                F("round").desc(),
                "id",
                condition=Q(retired=False, judgment_count__lt=F("overlap")),
                name="response_queue_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="response_overlap_positive"),
        ]

    def __str__(self) -> str:
        return f"Response {self.pk} to prompt {self.prompt_id}"

    @property
    def is_full(self) -> bool:
        return self.judgment_count >= self.overlap


class Judgment(models.Model):
    class Verdict(models.TextChoices):
        POSITIVE = "positive", "Good"
        NEGATIVE = "negative", "Has problems"

    class ReviewState(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REJECTED = "rejected", "Rejected"

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="judgments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments"
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    critique = models.TextField(blank=True, validators=[MaxLengthValidator(v.MAX_CRITIQUE_CHARS)])
    spans = models.JSONField(default=list, blank=True, validators=[v.validate_spans])
    seconds_spent = models.PositiveIntegerField(null=True, blank=True)
    review_state = models.CharField(
        max_length=8, choices=ReviewState.choices, default=ReviewState.PENDING
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_judgments",
    )
    review_note = models.TextField(blank=True, validators=[MaxLengthValidator(v.MAX_NOTE_CHARS)])
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["response", "annotator"], name="judgment_one_per_annotator"
            ),
            models.CheckConstraint(
                condition=Q(verdict="positive") | ~Q(critique=""),
                name="judgment_negative_needs_critique",
            ),
            models.CheckConstraint(
                condition=Q(verdict__in=["positive", "negative"]), name="judgment_verdict_valid"
            ),
            models.CheckConstraint(
                condition=Q(review_state__in=["pending", "accepted", "rejected"]),
                name="judgment_review_state_valid",
            ),
        ]
        indexes = [
            # Export and the review queue: by state, oldest first.
            models.Index(fields=["review_state", "created"], name="judgment_state_created_idx"),
            # "My judgments" and "judged today".
            models.Index(fields=["annotator", "created"], name="judgment_annotator_idx"),
            models.Index(fields=["created"], name="judgment_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_verdict_display()} by {self.annotator} on response {self.response_id}"

    def clean(self) -> None:
        self.critique = (self.critique or "").strip()
        if self.verdict == self.Verdict.NEGATIVE and not self.critique:
            raise ValidationError(
                {"critique": "Say what is wrong with the response: a critique is required."}
            )
        if self.spans and self.response_id is not None and _spans_are_pairs(self.spans):
            length = len(self.response.text)
            for start, end in self.spans:
                if end > length:
                    raise ValidationError(
                        {"spans": f"Span [{start}, {end}] runs past the response ({length})."}
                    )

    @property
    def is_reviewed(self) -> bool:
        return self.review_state != self.ReviewState.PENDING

    def accept(self, reviewer, note: str = "") -> None:
        self._review(self.ReviewState.ACCEPTED, reviewer, note)

    def reject(self, reviewer, note: str) -> None:
        if not note or not note.strip():
            raise ValidationError({"review_note": "Say why the judgment is rejected."})
        self._review(self.ReviewState.REJECTED, reviewer, note)

    def _review(self, state: str, reviewer, note: str) -> None:
        self.review_state = state
        self.reviewer = reviewer
        self.review_note = (note or "").strip()
        self.reviewed_at = timezone.now()
        self.save(
            update_fields=["review_state", "reviewer", "review_note", "reviewed_at", "updated"]
        )

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        Response.objects.filter(pk=self.response_id, judgment_count__gt=0).update(
            judgment_count=F("judgment_count") - 1
        )
        return result


class Reservation(models.Model):
    """A response handed to one annotator; it holds one of the response's slots until
    it is submitted, skipped or expires."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="reservations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reservations"
    )
    created = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["response", "annotator"], name="reservation_one_per_annotator"
            )
        ]
        indexes = [models.Index(fields=["response", "expires"], name="reservation_live_idx")]

    def __str__(self) -> str:
        return f"Response {self.response_id} reserved for {self.annotator} until {self.expires}"

    @property
    def is_live(self) -> bool:
        return self.expires > timezone.now()


class Skip(models.Model):
    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="skips"
    )
    reason = models.TextField(validators=[MaxLengthValidator(v.MAX_REASON_CHARS)])
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["response", "annotator"], name="skip_one_per_annotator"
            )
        ]

    def __str__(self) -> str:
        return f"{self.annotator} skipped response {self.response_id}"


class Guideline(models.Model):
    """The annotation guidelines, Markdown edited by staff; the newest one is shown."""

    title = models.CharField(max_length=200, default="Annotation guidelines")
    body = models.TextField(help_text="Markdown. Raw HTML is shown as text.")
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated"]

    def __str__(self) -> str:
        return self.title


class JobStatus(models.TextChoices):
    """A job's life: queued -> running -> succeeded / failed / interrupted / cancelled."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    INTERRUPTED = "interrupted", "Interrupted"
    CANCELLED = "cancelled", "Cancelled"


class Job(models.Model):
    """What a training run and a generation run share as jobs on a worker (annotate/jobs.py).

    `heartbeat_at` is written by the worker every few seconds while it runs the job; a
    running job whose heartbeat is older than RUN_HEARTBEAT_TIMEOUT lost its worker and is
    marked interrupted by jobs.sweep_stale().
    """

    Status = JobStatus
    ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
    FINISHED = (
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.INTERRUPTED,
        JobStatus.CANCELLED,
    )

    status = models.CharField(
        max_length=11, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True
    )
    error = models.TextField(blank=True)
    worker_host = models.CharField(max_length=255, blank=True, help_text="Where it ran last.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    log_tail = models.TextField(blank=True, help_text="The last lines of the job's output.")
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(
        max_length=64, blank=True, help_text="The django-tasks result id of the last enqueue."
    )
    created = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def can_cancel(self) -> bool:
        return self.is_active and not self.cancel_requested

    @property
    def can_resume(self) -> bool:
        return self.status in (JobStatus.FAILED, JobStatus.INTERRUPTED, JobStatus.CANCELLED)

    @property
    def duration(self):
        """Running time so far (or in all, once finished); None before it starts."""
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def request_cancel(self) -> bool:
        """Cancel: a queued job at once, a running one at its next step (the worker sees
        cancel_requested). False when there is nothing to cancel."""
        model = type(self)
        now = timezone.now()
        if model.objects.filter(pk=self.pk, status=JobStatus.QUEUED).update(
            status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now
        ):
            self.status, self.cancel_requested, self.finished_at = JobStatus.CANCELLED, True, now
            return True
        if model.objects.filter(pk=self.pk, status=JobStatus.RUNNING).update(
            cancel_requested=True
        ):
            self.cancel_requested = True
            return True
        self.refresh_from_db()
        return False

    def mark_running(self) -> None:
        self.status = JobStatus.RUNNING
        self.started_at = self.started_at or timezone.now()
        self.save(update_fields=["status", "started_at"])

    def mark_failed(self, error: str) -> None:
        self.mark_finished(JobStatus.FAILED, error)

    def mark_finished(self, status: str, error: str = "") -> None:
        self.status = status
        self.error = error
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "error", "finished_at"])


class TrainingRun(Job):
    # Series points kept at most (about): a 3-step run keeps every step, a 10-hour run
    # every k-th step (and every evaluation), so the curves stay readable and the row small.
    SERIES_POINTS = 2000

    base_model = models.CharField(max_length=1000, blank=True)
    config = models.JSONField(default=dict, blank=True)
    # The exact data the run saw: a JSONL snapshot, its hash and what was in it.
    snapshot_path = models.CharField(max_length=1000, blank=True)
    snapshot_sha256 = models.CharField(max_length=64, blank=True)
    positive_count = models.PositiveIntegerField(default=0)
    negative_count = models.PositiveIntegerField(default=0)
    filters = models.JSONField(default=dict, blank=True, help_text="The selection exported.")
    metrics = models.JSONField(default=dict, blank=True)
    # Per optimizer step, as training writes metrics.jsonl (step, loss, l_mle, l_ul,
    # flagged, lr, tokens, tokens_per_s, peak_memory_mb, "eval" at evaluations ...),
    # downsampled to about SERIES_POINTS (annotate/series.py).
    series = models.JSONField(default=list, blank=True)
    total_steps = models.PositiveIntegerField(
        null=True, blank=True, help_text="Optimizer steps planned (from the trainer's plan)."
    )
    plan = models.JSONField(default=dict, blank=True, help_text="The trainer's data plan.")
    output_dir = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_runs",
    )
    # The New run form's (or an API client's) token: the same token again finds this run
    # instead of starting a second one (a double click). Unique, so two racing requests
    # cannot both insert.
    request_token = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"Training run {self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("annotate:training-run", args=[self.pk])

    @property
    def step(self) -> int:
        """The last optimizer step reported (0 before the first)."""
        return self.series[-1]["step"] if self.series else 0

    @property
    def progress(self) -> float | None:
        """Share of the planned steps done, 0..1; None before the plan is known."""
        if not self.total_steps:
            return None
        return min(1.0, self.step / self.total_steps)

    @property
    def eta(self):
        """Time left, from the mean seconds per step of the steps seen; None if unknown."""
        if self.status != JobStatus.RUNNING or not self.total_steps or not self.series:
            return None
        timed = [p["seconds"] for p in self.series if p.get("seconds") is not None]
        if not timed:
            return None
        left = max(0, self.total_steps - self.step)
        return timedelta(seconds=left * sum(timed) / len(timed))

    def mark_succeeded(self, metrics: dict) -> None:
        self.status = JobStatus.SUCCEEDED
        self.metrics = metrics
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "metrics", "finished_at"])

    def mark_failed(self, error: str) -> None:
        self.status = self.Status.FAILED
        self.error = error
        self.finished_at = timezone.now()
        self.save(update_fields=["status", "error", "finished_at"])


class LensResult(models.Model):
    """What CUT would push down for one judgment: the response tokens its critique flags
    (annotate/lens.py computes it on a worker with training.lens).

    Stored with the critique it was computed from: once the judgment's critique changes,
    the row is stale (is_fresh is false) until a worker recomputes it.
    """

    judgment = models.OneToOneField(Judgment, on_delete=models.CASCADE, related_name="lens")
    model = models.CharField(max_length=1000, help_text="Base model (and adapter) scored with.")
    threshold = models.FloatField(help_text="λ: a token is flagged when p(y|x,j)/p(y|x) > λ.")
    critique = models.TextField(help_text="The critique text the lens was computed from.")
    flagged_spans = models.JSONField(default=list, blank=True)  # [[start, end), ...] characters
    flagged_share = models.FloatField(default=0.0)
    # [{"start", "end", "log_ratio", "flagged"}, ...] per response token, in characters.
    tokens = models.JSONField(default=list, blank=True)
    # The response ran past the trainer's cutoff: its end is neither trained on nor scored.
    truncated = models.BooleanField(default=False)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "lens result"

    def __str__(self) -> str:
        return f"Lens of judgment {self.judgment_id} ({self.model}, λ={self.threshold})"

    @property
    def is_fresh(self) -> bool:
        """Computed from the judgment's current critique. If the judgment is not loaded
        already, this causes a SQL query."""
        return self.critique == self.judgment.critique


class GenerationRun(Job):
    """A generation job: one response per selected prompt into round `round_number`, from a
    base model or base + adapter (what `generate_responses` does)."""

    round_number = models.PositiveIntegerField()
    training_run = models.ForeignKey(
        TrainingRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generation_runs",
        help_text="The run whose adapter answers (its output directory).",
    )
    adapter = models.CharField(max_length=1000, blank=True, help_text="Blank: the base model.")
    base_model = models.CharField(
        max_length=1000, blank=True, help_text="Blank: the adapter's base, or embedded."
    )
    prompts = models.CharField(
        max_length=300, default="all", help_text="all, source=NAME or round=M."
    )
    limit = models.PositiveIntegerField(null=True, blank=True)
    overlap = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    max_new_tokens = models.PositiveIntegerField(default=256, validators=[MinValueValidator(1)])
    batch_size = models.PositiveIntegerField(default=8, validators=[MinValueValidator(1)])
    prompt_count = models.PositiveIntegerField(default=0, help_text="Prompts to answer.")
    done_count = models.PositiveIntegerField(default=0, help_text="Prompts answered so far.")
    created_count = models.PositiveIntegerField(default=0, help_text="Responses saved.")
    empty_count = models.PositiveIntegerField(default=0, help_text="Empty answers left out.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generation_runs",
    )

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"Generation run {self.pk} for round {self.round_number} ({self.status})"

    @property
    def progress(self) -> float | None:
        if not self.prompt_count:
            return None
        return min(1.0, self.done_count / self.prompt_count)


class Worker(models.Model):
    """A running `manage.py db_worker`, kept by its heartbeat (annotate/workers.py)."""

    worker_id = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    # Comma-separated with a comma at each end (",default,gpu,") so `contains ",gpu,"`
    # finds a queue on every database; "*" listens to all.
    queues = models.CharField(max_length=500)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["host", "pid"]

    def __str__(self) -> str:
        return f"Worker {self.host}:{self.pid} ({self.queues.strip(',')})"

    @property
    def queue_names(self) -> list[str]:
        return [q for q in self.queues.split(",") if q]


# Blind pairwise comparisons (annotate/compare.py) ---------------------------------------


def validate_system(value: str) -> None:
    """A compared system: "base", "round:N" or "run:ID" (a training run's adapter)."""
    kind, _, arg = value.partition(":")
    if value == "base" or (kind in ("round", "run") and arg.isdigit()):
        return
    raise ValidationError(
        f"A system is base, round:N or run:ID (a training run's adapter); got {value!r}."
    )


def validate_prompt_set(value: str) -> None:
    kind, sep, arg = value.partition("=")
    if value == "all" or (sep and kind == "source" and arg) or (kind == "round" and arg.isdigit()):
        return
    raise ValidationError(f"A prompt set is all, source=NAME or round=N; got {value!r}.")


class Comparison(models.Model):
    """Two systems over a sample of a prompt set, judged blind, side by side."""

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting for responses"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    system_a = models.CharField(max_length=40, validators=[validate_system])
    system_b = models.CharField(max_length=40, validators=[validate_system])
    prompt_set = models.CharField(max_length=300, default="all", validators=[validate_prompt_set])
    sample_size = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    overlap = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Votes each pair needs."
    )
    instructions = models.TextField(
        blank=True, validators=[MaxLengthValidator(2000)], help_text="Shown to evaluators."
    )
    # The sampled prompts, drawn once at creation with `seed`, in the order drawn.
    prompt_ids = models.JSONField(default=list, blank=True, editable=False)
    seed = models.BigIntegerField(default=0, editable=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.WAITING)
    # The jobs that generate a system's missing responses (compare_systems.generate_missing).
    generation_runs = models.ManyToManyField(
        "GenerationRun", blank=True, related_name="comparisons", editable=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="comparisons",
    )
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(system_a=F("system_b")), name="comparison_two_systems"
            ),
        ]

    def __str__(self) -> str:
        return f"Comparison {self.pk}: {self.system_a} vs {self.system_b}"

    def get_absolute_url(self) -> str:
        return reverse("annotate:comparison-results", args=[self.pk])


class ComparisonPair(models.Model):
    """One prompt's two responses, A's and B's; which is shown left is drawn per assignment."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="+")
    response_a = models.ForeignKey(Response, on_delete=models.PROTECT, related_name="+")
    response_b = models.ForeignKey(Response, on_delete=models.PROTECT, related_name="+")
    overlap = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    # Kept equal to votes.count() by compare.submit, as Response.judgment_count is.
    vote_count = models.PositiveIntegerField(default=0, editable=False)
    # The votes by winner (the side order undone) and the decisive votes for the left side,
    # kept by compare.submit with vote_count: the results add up pairs, not votes.
    a_votes = models.PositiveIntegerField(default=0, editable=False)
    b_votes = models.PositiveIntegerField(default=0, editable=False)
    tie_votes = models.PositiveIntegerField(default=0, editable=False)
    both_bad_votes = models.PositiveIntegerField(default=0, editable=False)
    left_votes = models.PositiveIntegerField(default=0, editable=False)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "prompt"], name="pair_one_per_prompt"),
        ]
        indexes = [
            models.Index(
                "comparison",
                "id",
                condition=Q(vote_count__lt=F("overlap")),
                name="pair_queue_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Pair {self.pk} of comparison {self.comparison_id}"


class PairReservation(models.Model):
    """A pair handed to one evaluator, with the side order they see; it holds one of the
    pair's slots until it is voted on, skipped or expires."""

    pair = models.ForeignKey(ComparisonPair, on_delete=models.CASCADE, related_name="reservations")
    evaluator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pair_reservations"
    )
    a_on_left = models.BooleanField()
    created = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pair", "evaluator"], name="pair_reservation_one")
        ]
        indexes = [models.Index(fields=["pair", "expires"], name="pair_reservation_live_idx")]

    def __str__(self) -> str:
        return f"Pair {self.pair_id} reserved for {self.evaluator} until {self.expires}"


class PairSkip(models.Model):
    pair = models.ForeignKey(ComparisonPair, on_delete=models.CASCADE, related_name="skips")
    evaluator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pair_skips"
    )
    reason = models.TextField(blank=True, validators=[MaxLengthValidator(v.MAX_REASON_CHARS)])
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["pair", "evaluator"], name="pair_skip_one")]

    def __str__(self) -> str:
        return f"{self.evaluator} skipped pair {self.pair_id}"


class Vote(models.Model):
    """One evaluator's choice on one pair, as seen (left/right) and with the order they saw."""

    class Choice(models.TextChoices):
        LEFT = "left", "Left is better"
        RIGHT = "right", "Right is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both are bad"

    pair = models.ForeignKey(ComparisonPair, on_delete=models.CASCADE, related_name="votes")
    evaluator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="votes"
    )
    choice = models.CharField(max_length=8, choices=Choice.choices)
    a_on_left = models.BooleanField()
    reason = models.TextField(blank=True, validators=[MaxLengthValidator(v.MAX_REASON_CHARS)])
    seconds_spent = models.PositiveIntegerField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pair", "evaluator"], name="vote_one_per_evaluator"),
            models.CheckConstraint(
                condition=Q(choice__in=["left", "right", "tie", "both_bad"]),
                name="vote_choice_valid",
            ),
        ]
        indexes = [models.Index(fields=["evaluator", "created"], name="vote_evaluator_idx")]

    def __str__(self) -> str:
        return f"{self.get_choice_display()} by {self.evaluator} on pair {self.pair_id}"

    @property
    def winner(self) -> str:
        """ "a", "b", "tie" or "both_bad": the choice with the side order undone."""
        if self.choice in (self.Choice.TIE, self.Choice.BOTH_BAD):
            return self.choice
        return "a" if (self.choice == self.Choice.LEFT) == self.a_on_left else "b"
