"""Train a LoRA adapter with CUT on the judgments in the database.

    manage.py train_cut                               # accepted judgments, embedded model
    manage.py train_cut --round 2 --max-steps 50 --threshold=1.2 --weight_unlike=0.5
    manage.py train_cut --dry-run                     # the plan only; trains nothing
    manage.py train_cut --resume                      # continue the newest unfinished run

The selected judgments are snapshotted to JSONL beside the adapter: that file, its sha256
and its counts are the run's exact data, recorded on a TrainingRun with the config, the
metrics and the outcome. Any `--name=value` not listed below overrides a field of
training.config.CUTConfig.
"""

import dataclasses
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Max

from annotate import exports, models
from training import data as training_data
from training import models as training_models
from training import trainer
from training.config import CONFIG_FILENAME, CUTConfig, apply_overrides

SNAPSHOT_NAME = "judgments.jsonl"
# These come from the command's own options (or from the database), never from overrides.
RESERVED_KEYS = {"data", "output_dir", "base_model", "resume_from"}


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

    def handle(self, *args, **options) -> None:
        reserved = sorted(RESERVED_KEYS & {_key(o) for o in options["overrides"]})
        if reserved:
            raise CommandError(
                f"Set {', '.join(reserved)} with the command's options (--base-model, "
                "--output, --resume), not as an override. To train on a file, use "
                "`python -m training train --data FILE`."
            )
        if options["resume"]:
            run, config = self.resume(options)
        else:
            config = self.build_config(options)
            selection = exports.select_judgments(options["status"], options["round"])
            if not selection.exists():
                raise CommandError(self.empty_message(options))
            if options["dry_run"]:
                self.say_device()  # a real run hears it from the trainer
                return self.dry_run(config, selection)
            run, config = self.record_run(config, selection, options)
        self.train(run, config, progress=not options["no_progress"])

    def build_config(self, options: dict) -> CUTConfig:
        """Every check that can fail cheaply, before any data is written or model loaded."""
        try:
            base = training_models.check_base_model(options["base_model"])
            config = apply_overrides(CUTConfig(), options["overrides"])
            changes = {"base_model": None if base == training_models.EMBEDDED else base}
            if options["max_steps"] is not None:
                changes["max_steps"] = options["max_steps"]
            return dataclasses.replace(config, **changes)
        except ValueError as error:
            raise CommandError(str(error)) from error

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
            base_model=training_models.check_base_model(config.base_model),
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
        runs = models.TrainingRun.objects.exclude(status=models.TrainingRun.Status.SUCCEEDED)
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
        run.mark_running()
        try:
            result = trainer.train(config, progress=progress, log=self.stdout.write)
        except KeyboardInterrupt:
            run.mark_failed("Interrupted. Continue it with `manage.py train_cut --resume`.")
            raise
        except Exception as error:
            run.mark_failed(f"{type(error).__name__}: {error}")
            raise CommandError(f"Training run {run.pk} failed: {error}") from error
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


def _key(override: str) -> str:
    return override.removeprefix("--").partition("=")[0].strip().replace("-", "_")
