"""Train a LoRA adapter with CUT on the judgments in the database.

    manage.py train_cut                               # accepted judgments, embedded model
    manage.py train_cut --round 2 --max-steps 50 --threshold=1.2 --weight_unlike=0.5
    manage.py train_cut --dry-run                     # the plan only; trains nothing
    manage.py train_cut --resume                      # continue the newest unfinished run
    manage.py train_cut --round 2 --queue             # record it; a worker trains it

The selected judgments are snapshotted to JSONL beside the adapter: that file, its sha256
and its counts are the run's exact data, recorded on a TrainingRun with the config, the
metrics and the outcome. Any `--name=value` not listed below overrides a field of
training.config.CUTConfig.

With --queue the run is recorded (snapshot, config) and queued for a worker
(`manage.py db_worker --queue-name gpu`, see annotate/jobs.py); the command prints the run's
page and returns at once. A base model path missing on this machine is then only a
warning: the worker checks it again on its own.
"""

import dataclasses
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max
from django.utils import timezone

from annotate import exports, jobs, models, series, workers
from training import data as training_data
from training import models as training_models
from training import trainer
from training.callbacks import STOPPED_EXIT_CODE, StopSignals, TrainCallbacks
from training.config import CONFIG_FILENAME, CUTConfig, apply_overrides

SNAPSHOT_NAME = "judgments.jsonl"


class OverridesParser(CommandParser):
    """Collects `--name=value` options it doesn't know into options["overrides"]."""

    def parse_args(self, args=None, namespace=None):
        options, extra = self.parse_known_args(args, namespace)
        odd = [a for a in extra if not (a.startswith("--") and "=" in a)]
        if odd:
            self.error(
                f"unrecognized arguments: {' '.join(odd)} (config overrides look like "
                "--threshold=1.2)"
            )
        options.overrides = extra
        return options


class Command(BaseCommand):
    help = (
        "Snapshot judgments, train a CUT adapter on them and record the TrainingRun. Any "
        "other --name=value sets that field of training.config.CUTConfig (--threshold=1.2)."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        # No abbreviations: "--out=x" must not silently mean --output.
        parser = super().create_parser(prog_name, subcommand, allow_abbrev=False, **kwargs)
        parser.__class__ = OverridesParser
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-model", help="Local model directory. Default: embedded.")
        parser.add_argument("--output", help="Adapter directory. Default: TRAINING_DIR/run-ID.")
        parser.add_argument(
            "--status",
            choices=exports.STATUSES,
            default="accepted",
            help="Which judgments to train on, by review state. Default: accepted.",
        )
        parser.add_argument("--round", type=int, help="Only judgments of this round.")
        parser.add_argument("--max-steps", type=int, help="Stop after this many steps.")
        parser.add_argument("--dry-run", action="store_true", help="Print the plan only.")
        parser.add_argument(
            "--resume",
            action="store_true",
            help="Continue the newest failed or interrupted run (or the one in --output).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Record the run and queue it for a worker (db_worker --queue-name gpu); "
            "print its page and return at once.",
        )

    def handle(self, *args, **options) -> None:
        # These come from the command's own options (or the database), never from overrides.
        reserved = sorted(jobs.RESERVED_KEYS & {_key(o) for o in options["overrides"]})
        if reserved:
            raise CommandError(
                f"Set {', '.join(reserved)} with the command's options (--base-model, "
                "--output, --resume), not as an override. To train on a file, use "
                "`python -m training train --data FILE`."
            )
        if options["queue"] and options["dry_run"]:
            raise CommandError("--dry-run trains nothing, so there is nothing to --queue.")
        if options["resume"]:
            run, config = self.resume(options)
            if options["queue"]:
                return self.enqueue(run, config, resume=True)
        else:
            config = self.build_config(options)
            selection = exports.select_judgments(options["status"], options["round"])
            if not selection.exists():
                raise CommandError(self.empty_message(options))
            if options["dry_run"]:
                self.say_device()  # a real run hears it from the trainer
                return self.dry_run(config, selection)
            run, config = self.record_run(config, selection, options)
            if options["queue"]:
                return self.enqueue(run, config, resume=False)
        self.train(run, config, progress=not options["no_progress"])

    def enqueue(self, run: models.TrainingRun, config: CUTConfig, *, resume: bool) -> None:
        run.config = {**config.to_dict(), "resume_from": ""}
        run.save(update_fields=["config"])
        try:
            (jobs.enqueue_resume if resume else jobs.enqueue_training)(run)
        except jobs.JobError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Training run {run.pk} queued on the {jobs.QUEUE} queue.")
        self.stdout.write(f"Watch it at {jobs.page_url(run)}")
        if not workers.alive(jobs.QUEUE):
            self.stdout.write(
                f"No worker is listening on the {jobs.QUEUE} queue yet: start one with "
                f"`python manage.py db_worker --queue-name {jobs.QUEUE}`."
            )

    def build_config(self, options: dict) -> CUTConfig:
        """Every check that can fail cheaply, before any data is written or model loaded."""
        try:
            base = self.check_base_model(options)
            config = apply_overrides(CUTConfig(), options["overrides"])
            changes = {"base_model": None if base == training_models.EMBEDDED else base}
            if options["max_steps"] is not None:
                changes["max_steps"] = options["max_steps"]
            return dataclasses.replace(config, **changes)
        except ValueError as error:
            raise CommandError(str(error)) from error

    def check_base_model(self, options: dict) -> str:
        """The name to record; with --queue a path missing here is a warning only."""
        try:
            return training_models.check_base_model(options["base_model"])
        except ValueError as error:
            if not options["queue"]:
                raise
            self.stderr.write(f"Warning: {error} The worker checks again on its machine.")
            return str(options["base_model"])

    def empty_message(self, options: dict) -> str:
        where = f" in round {options['round']}" if options["round"] is not None else ""
        status = "" if options["status"] == "all" else f"{options['status']} "
        hint = " Review some judgments first, or pass --status all." * (status == "accepted ")
        return f"No {status}judgments{where} to train on.{hint}"

    def say_device(self) -> None:
        import torch

        if not torch.cuda.is_available():
            self.stdout.write("No GPU found: training on the CPU (slow).")

    def dry_run(self, config: CUTConfig, selection) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            snapshot = Path(scratch) / SNAPSHOT_NAME
            with snapshot.open("w", encoding="utf-8") as f:
                exports.write_jsonl(selection, f)
            try:
                tokenizer = training_models.load_tokenizer(config.base_model)
                plan = training_data.plan(
                    dataclasses.replace(config, data=str(snapshot)), tokenizer
                )
            except ValueError as error:
                raise CommandError(str(error)) from error
        self.stdout.write(f"Base model: {training_models.check_base_model(config.base_model)}")
        for line in plan.lines():
            self.stdout.write(line.replace(str(snapshot), "the selected judgments"))
        self.stdout.write("Dry run: nothing was written and no run was recorded.")

    def record_run(self, config: CUTConfig, selection, options: dict):
        """Create the TrainingRun, then write the snapshot into its output directory."""
        output = Path(options["output"]).expanduser().resolve() if options["output"] else None
        if output is not None and output.exists() and any(output.iterdir()):
            raise CommandError(
                f"{output} is not empty. Choose a new --output directory, or pass --resume to "
                "continue the run that wrote it."
            )
        run = models.TrainingRun.objects.create(
            base_model=config.base_model or training_models.EMBEDDED,
            filters={"status": options["status"], "round": options["round"]},
        )
        try:
            output = output or Path(settings.TRAINING_DIR).resolve() / f"run-{run.pk}"
            output.mkdir(parents=True, exist_ok=True)
            snapshot = output / SNAPSHOT_NAME
            with snapshot.open("w", encoding="utf-8") as f:
                counts = exports.write_jsonl(selection, f)
            config = dataclasses.replace(config, data=str(snapshot), output_dir=str(output))
        except (OSError, ValueError) as error:
            run.mark_failed(f"Could not write the data snapshot: {error}")
            raise CommandError(run.error) from error
        run.output_dir = str(output)
        run.snapshot_path = str(snapshot)
        run.snapshot_sha256 = training_data.file_sha256(snapshot)
        run.positive_count, run.negative_count = counts.positive, counts.negative
        run.config = config.to_dict()
        run.save()
        self.stdout.write(
            f"Training run {run.pk}: {counts.positive} positive and {counts.negative} negative "
            f"judgments snapshotted to {snapshot}."
        )
        return run, config

    def resume(self, options: dict):
        Status = models.JobStatus
        runs = models.TrainingRun.objects.filter(
            status__in=[Status.FAILED, Status.INTERRUPTED, Status.CANCELLED]
        )
        if options["output"]:
            runs = runs.filter(output_dir=str(Path(options["output"]).expanduser().resolve()))
        run = runs.exclude(snapshot_path="").order_by("-created").first()
        if run is None:
            raise CommandError("There is no failed or interrupted training run to resume.")
        snapshot = Path(run.snapshot_path)
        if not snapshot.is_file() or training_data.file_sha256(snapshot) != run.snapshot_sha256:
            raise CommandError(
                f"The data snapshot of run {run.pk} ({snapshot}) is missing or changed; "
                "it cannot be resumed. Start a new run instead."
            )
        try:
            config = apply_overrides(CUTConfig(), run.config)
            config = apply_overrides(config, options["overrides"])
            if options["max_steps"] is not None:
                config = dataclasses.replace(config, max_steps=options["max_steps"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        run.error = ""  # the old failure no longer describes the run
        run.save(update_fields=["error"])
        checkpoints = Path(run.output_dir) / trainer.CHECKPOINT_DIR
        if any((p / trainer.STATE_FILENAME).is_file() for p in checkpoints.glob("step-*")):
            config = dataclasses.replace(config, resume_from="latest")
            self.stdout.write(f"Resuming training run {run.pk} from its latest checkpoint.")
        else:
            self.stdout.write(
                f"Training run {run.pk} left no checkpoint: training again from the start on "
                "the same data snapshot."
            )
        return run, config

    def train(self, run: models.TrainingRun, config: CUTConfig, *, progress: bool) -> None:
        run.worker_host = workers.host_name()
        run.save(update_fields=["worker_host"])
        run.mark_running()
        live = LiveRun(run)
        try:
            # Ctrl+C (or SIGTERM) stops after the current step with a checkpoint; twice, now.
            with StopSignals() as signals:
                live.signals = signals
                result = trainer.train(
                    config, progress=progress, log=self.stdout.write, callbacks=live.callbacks()
                )
        except KeyboardInterrupt:
            live.flush(force=True)
            run.mark_finished(
                models.JobStatus.INTERRUPTED,
                "Interrupted. Continue it with `manage.py train_cut --resume`.",
            )
            raise
        except Exception as error:
            live.flush(force=True)
            run.mark_failed(f"{type(error).__name__}: {error}")
            raise CommandError(f"Training run {run.pk} failed: {error}") from error
        live.flush(force=True)
        if result.stopped_on_request:
            cancelled = live.stop == "cancel"
            run.mark_finished(
                models.JobStatus.CANCELLED if cancelled else models.JobStatus.INTERRUPTED,
                f"{'Cancelled' if cancelled else 'Stopped'} at step {run.step}. Continue it "
                "with `manage.py train_cut --resume`.",
            )
            raise CommandError(f"Training run {run.pk}: {run.error}", returncode=STOPPED_EXIT_CODE)
        metrics = {
            **result.metrics,
            "stopped_early": result.stopped_early,
            "stop_reason": result.stop_reason,
        }
        saved = Path(result.output_dir) / CONFIG_FILENAME
        if saved.is_file():  # the config as used: "auto" template resolved
            run.config = CUTConfig.load(saved).to_dict()
            run.save(update_fields=["config"])
        run.mark_succeeded(metrics)
        self.stdout.write(self.style.SUCCESS(f"Training run {run.pk} succeeded."))
        self.stdout.write(f"Adapter saved in {result.output_dir}.")
        latest = models.Round.objects.aggregate(latest=Max("number"))["latest"] or 0
        self.stdout.write(
            "Generate the next round with it: python manage.py generate_responses "
            f"--round {latest + 1} --adapter {result.output_dir}"
        )


class LiveRun:
    """The inline run's page stays live as a worker's would: the trainer's callbacks write
    the series and a heartbeat every JOB_FLUSH_SECONDS, and a Cancel on the page (or
    Ctrl+C here) stops it after the current step with a checkpoint."""

    def __init__(self, run: models.TrainingRun):
        self.run = run
        self.pending: list[dict] = []
        self.flushed = 0.0
        self.signals: StopSignals | None = None
        self.stop = ""

    def callbacks(self) -> TrainCallbacks:
        return TrainCallbacks(
            on_step=self.on_step, on_event=self.on_event, should_stop=self.should_stop
        )

    def on_step(self, record: dict) -> None:
        self.pending.append(record)
        self.flush()

    def on_event(self, record: dict) -> None:
        if record.get("event") == "plan" and isinstance(record.get("steps"), int):
            self.run.total_steps, self.run.plan = record["steps"], record
            self.flush(force=True)

    def should_stop(self) -> str:
        if not self.stop and self.signals is not None and self.signals.should_stop():
            self.stop = "signal"
        if not self.stop and self.flush():
            self.stop = "cancel" if self.run.cancel_requested else ""
        return self.stop

    def flush(self, *, force: bool = False) -> bool:
        """Write what is new (at most every JOB_FLUSH_SECONDS); True when it wrote."""
        if not force and time.monotonic() - self.flushed < settings.JOB_FLUSH_SECONDS:
            return False
        run = self.run
        run.series = series.merge(run.series, self.pending, run.total_steps, run.SERIES_POINTS)
        self.pending = []
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["series", "total_steps", "plan", "heartbeat_at"])
        run.cancel_requested = (
            models.TrainingRun.objects.filter(pk=run.pk).values_list("cancel_requested", flat=True)
        ).get()
        self.flushed = time.monotonic()
        return True


def _key(override: str) -> str:
    return override.removeprefix("--").partition("=")[0].strip().replace("-", "_")
