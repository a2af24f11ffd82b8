"""What the training pages and the API read from runs: the selection a run's filters name,
the charts of its metric series, and a duration estimate from earlier runs.

Reads rows only; no model, no torch. The jobs themselves are annotate.jobs.
"""

import dataclasses
import datetime as dt
import hashlib
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.safestring import mark_safe

from annotate import exports, jobs, models
from annotate.generation import new_generation_run
from training.config import CUTConfig, apply_overrides

# What the run page plots: (chart id, title, [(series key, label)]). Keys are those of
# training's metrics.jsonl lines; holdout numbers sit under "eval" on evaluation steps.
CHARTS = [
    ("loss", "Loss", [("loss", "loss"), ("l_mle", "L_mle"), ("l_ul", "L_ul")]),
    ("flagged", "Flagged fraction of criticised tokens", [("flagged", "flagged")]),
    ("lr", "Learning rate", [("lr", "learning rate")]),
    ("tokens_per_s", "Tokens per second", [("tokens_per_s", "tokens/s")]),
    (
        "holdout",
        "Holdout against the base model (nats per token)",
        [
            ("eval.approved_delta", "Δ approved"),
            ("eval.criticised_delta", "Δ criticised"),
            ("eval.gain", "gain"),
        ],
    ),
]


def selection(filters: dict) -> QuerySet:
    """The judgments a run's filters select ({"status", "rounds", "since"}, as the New run
    form records them; train_cut's {"status", "round"} too). A query when evaluated."""
    since = filters.get("since")
    if isinstance(since, str):
        since = dt.date.fromisoformat(since)
    judgments = exports.select_judgments(
        filters.get("status", "accepted"), filters.get("round"), since
    )
    if filters.get("rounds"):
        judgments = judgments.filter(response__round__in=filters["rounds"])
    return judgments


def steps(series: list) -> list[dict]:
    """The per-step records of a series (event lines such as the plan left out)."""
    return [
        r
        for r in series or []
        if isinstance(r, dict)
        and isinstance(r.get("step"), int)
        and not isinstance(r["step"], bool)
        and "event" not in r
    ]


def _value(record: dict, key: str) -> float | None:
    head, _, tail = key.partition(".")
    value = record.get(head)
    if tail:
        value = value.get(tail) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


@dataclass
class Chart:
    id: str
    title: str
    labels: list[str]  # one a line
    keys: list[str]
    rows: list[list]  # [step, value, value, ...]; None where a line has no point
    # Horizontal reference lines, e.g. the collapse margin: [(label, y)].
    references: list[tuple[str, float]] = field(default_factory=list)

    def table_body(self) -> str:
        """The table's rows as HTML. Built here, not in the template: a long run's five
        tables hold about 10,000 rows, which the template language takes seconds to loop
        over. Every cell is a number formatted here (steps are ints, values finite floats,
        see steps() and _value()) or "—", so nothing needs escaping."""
        return mark_safe(  # numbers only, as said above
            "\n".join(
                "<tr>"
                + "".join(f"<td>{format_value(v, i == 0)}</td>" for i, v in enumerate(row))
                + "</tr>"
                for row in self.rows
            )
        )

    def as_json(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "labels": self.labels,
            "keys": self.keys,
            "rows": self.rows,
            "references": [{"label": label, "y": y} for label, y in self.references],
        }


def format_value(value, exact: bool = False) -> str:
    """A table cell: six significant digits (1e-07 stays 1e-07), "—" for no value."""
    if value is None:
        return "—"
    return str(value) if exact else f"{value:.6g}"


def charts(run: models.TrainingRun, after: int | None = None) -> list[Chart]:
    """One Chart per plot of the run page, each with the rows of its table; with `after`,
    only the steps after that one (what the page's script has not drawn yet)."""
    records = steps(run.series)
    if after is not None:
        records = [r for r in records if r["step"] > after]
    margin = (run.config or {}).get("collapse_margin")
    result = []
    for chart_id, title, lines in CHARTS:
        keys = [key for key, _ in lines]
        rows = []
        for record in records:
            values = [_value(record, key) for key in keys]
            if any(value is not None for value in values):
                rows.append([record["step"], *values])
        references = []
        if chart_id == "holdout" and isinstance(margin, int | float):
            references.append(("collapse margin (Δ approved floor)", -float(margin)))
        result.append(
            Chart(chart_id, title, [label for _, label in lines], keys, rows, references)
        )
    return result


def tokens_per_second(base_model: str) -> float | None:
    """The throughput of the newest succeeded run on this base model, or None.

    One query. metrics["tokens_per_s"] is what the trainer reports for the whole run."""
    runs = models.TrainingRun.objects.filter(
        base_model=base_model, status=models.TrainingRun.Status.SUCCEEDED
    ).order_by("-finished_at", "-pk")
    for metrics in runs.values_list("metrics", flat=True)[:20]:
        speed = (metrics or {}).get("tokens_per_s")
        if isinstance(speed, int | float) and speed > 0:
            return float(speed)
    return None


def estimate_seconds(plan: dict, config: dict, base_model: str) -> float | None:
    """How long the planned run should take at an earlier run's tokens per second.

    plan["tokens"] counts one epoch's training views; a max_steps below the epochs' steps
    trains that share of them.
    """
    speed = tokens_per_second(base_model)
    tokens = plan.get("tokens")
    if not speed or not tokens:
        return None
    accumulation = config.get("gradient_accumulation_steps", 1) or 1
    epochs = config.get("num_epochs", 1) or 1
    full_steps = math.ceil(plan.get("micro_batches", 0) / accumulation) * epochs
    share = min(1.0, plan["steps"] / full_steps) if full_steps else 1.0
    return tokens * epochs * share / speed


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress(run: models.TrainingRun) -> dict:
    """Step, total, percent done and the time left (TrainingRun.eta), for the page."""
    total = run.total_steps or 0
    step = min(run.step, total) if total else run.step
    eta = run.eta
    return {
        "step": step,
        "total": total,
        "percent": round(100 * step / total) if total else 0,
        "eta": format_duration(eta.total_seconds()) if eta is not None else "",
    }


def round_numbers(run: models.TrainingRun) -> str:
    """The rounds a run trained on ("all" when its selection named none), and the round
    generated from it, if any. Uses run.rounds: prefetch it for a list."""
    filters = run.filters or {}
    trained = filters.get("rounds") or (
        [filters["round"]] if filters.get("round") is not None else []
    )
    text = ", ".join(str(n) for n in trained) if trained else "all"
    generated = [str(r.number) for r in run.rounds.all()]
    if generated:
        text += f" → {', '.join(generated)}"
    return text


def selection_text(filters: dict) -> str:
    """ "accepted judgments in round 1 since 2026-01-01", for the run page."""
    filters = filters or {}
    status = filters.get("status", "accepted")
    text = "all judgments" if status == "all" else f"{status} judgments"
    rounds = filters.get("rounds") or (
        [filters["round"]] if filters.get("round") is not None else []
    )
    if rounds:
        text += f" in round{'s' if len(rounds) > 1 else ''} {', '.join(map(str, rounds))}"
    if filters.get("since"):
        text += f" since {filters['since']}"
    return text


def final_numbers(run: models.TrainingRun) -> dict:
    """The holdout gain and Δ approved of the run's last evaluation (None without one)."""
    validation = (run.metrics or {}).get("validation") or {}
    if not validation:
        evals = [r["eval"] for r in steps(run.series) if isinstance(r.get("eval"), dict)]
        validation = evals[-1] if evals else {}
    return {"gain": validation.get("gain"), "approved_delta": validation.get("approved_delta")}


def duration(run: models.TrainingRun) -> float | None:
    if run.started_at is None:
        return None
    end = run.finished_at or (None if run.is_finished else timezone.now())
    return (end - run.started_at).total_seconds() if end else None


@dataclass
class Row:
    run: models.TrainingRun
    rounds: str
    duration: str
    gain: float | None
    approved_delta: float | None


def rows(runs) -> list[Row]:
    result = []
    for run in runs:
        numbers = final_numbers(run)
        result.append(
            Row(
                run,
                round_numbers(run),
                format_duration(duration(run)),
                numbers["gain"],
                numbers["approved_delta"],
            )
        )
    return result


# Starting jobs ---------------------------------------------------------------------------

# training.models.EMBEDDED, written out: importing training.models would load torch here.
# A test checks that the two agree.
EMBEDDED = "embedded:SmolLM2-135M-Instruct"
SNAPSHOT_NAME = "judgments.jsonl"


def check_selection(filters: dict) -> None:
    """ValidationError saying what to change when the filters select no judgment."""
    if selection(filters).exists():
        return
    status = "" if filters.get("status") == "all" else f"{filters.get('status', 'accepted')} "
    rounds = [str(n) for n in filters.get("rounds") or []]
    where = f" in round{'s' if len(rounds) > 1 else ''} {', '.join(rounds)}" if rounds else ""
    since = f" since {filters['since']}" if filters.get("since") else ""
    hint = " Review some judgments first, or choose another status." * (status == "accepted ")
    raise ValidationError(f"No {status}judgments{where}{since} to train on.{hint}")


def base_model_warning(base_model: str) -> str:
    """A note when a base model path is not on this server. Not an error: the worker runs
    on another machine (a GPU box) and checks the path there, failing the run in seconds."""
    if not base_model or base_model == EMBEDDED:
        return ""
    path = Path(base_model).expanduser()
    if path.is_absolute() and not path.exists():
        return (
            f"{base_model} is not on this server; the worker checks it on its own machine "
            "and fails the run at once if it is missing there."
        )
    return ""


def start(
    *, filters: dict, base_model: str, overrides: dict, user, token: uuid.UUID | None
) -> tuple[models.TrainingRun, bool]:
    """Record a queued run, write its data snapshot and enqueue it; returns (run, created).

    The same token again (a double click, a resent form or API call) returns the run it
    started, not a second one: the token is unique in the database, so two requests racing
    each other cannot both insert. Raises ValueError for a config the trainer would refuse.
    """
    config = apply_overrides(CUTConfig(), overrides)  # ValueError: checked before any row
    if token is not None:
        existing = models.TrainingRun.objects.filter(request_token=token).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            run = models.TrainingRun.objects.create(
                status=models.TrainingRun.Status.QUEUED,
                base_model=base_model or EMBEDDED,
                filters=filters,
                created_by=user if user.is_authenticated else None,
                request_token=token,
            )
    except IntegrityError:
        return models.TrainingRun.objects.get(request_token=token), False
    output = Path(settings.TRAINING_DIR).resolve() / f"run-{run.pk}"
    snapshot = output / SNAPSHOT_NAME
    try:
        output.mkdir(parents=True, exist_ok=True)
        with snapshot.open("w", encoding="utf-8") as f:
            counts = exports.write_jsonl(selection(filters), f)
        digest = _sha256(snapshot)
    except OSError as error:
        run.mark_failed(f"Could not write the data snapshot to {snapshot}: {error}")
        return run, True
    base = None if run.base_model == EMBEDDED else run.base_model
    config = dataclasses.replace(
        config, data=str(snapshot), output_dir=str(output), base_model=base
    )
    run.output_dir, run.snapshot_path, run.snapshot_sha256 = str(output), str(snapshot), digest
    run.positive_count, run.negative_count = counts.positive, counts.negative
    run.config = config.to_dict()
    run.save(
        update_fields=[
            "output_dir",
            "snapshot_path",
            "snapshot_sha256",
            "positive_count",
            "negative_count",
            "config",
        ]
    )
    jobs.enqueue_training(run)
    return run, True


def _sha256(path: Path) -> str:
    # training.data.file_sha256 does the same, but importing training.data loads torch.
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def start_generation(run: models.TrainingRun, data: dict, user) -> models.GenerationRun:
    """Queue generation of a round with the run's adapter. ValidationError (by field:
    round_number, prompts, limit, training_run) when generation.new_generation_run refuses;
    nothing is saved then."""
    generation = new_generation_run(
        data["round"],
        training_run=run,
        prompts=data["prompts"],
        limit=data.get("limit"),
        created_by=user if user.is_authenticated else None,
    )
    jobs.enqueue_generation(generation)
    return generation
