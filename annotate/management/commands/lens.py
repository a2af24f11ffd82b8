"""Compute the critique lens of a round's negative judgments and store it per judgment.

    manage.py lens --round 1             # enqueue on the lens worker
    manage.py lens --round 1 --inline    # compute here (loads the model in this process)

Judgments that already have a lens for their current critique are skipped unless --force.
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate import exports, lens, models
from annotate.management import arguments


class Command(BaseCommand):
    help = "Compute the critique lens (what CUT would push down) of negative judgments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--round", type=arguments.round_number, help="Only judgments of this round."
        )
        parser.add_argument(
            "--status",
            choices=exports.STATUSES,
            default="all",
            help="Only judgments in this review state (default: all).",
        )
        parser.add_argument(
            "--inline", action="store_true", help="Compute in this process, not on a worker."
        )
        parser.add_argument(
            "--force", action="store_true", help="Recompute judgments that have a fresh lens."
        )
        parser.add_argument("--base-model", help="Default: LENS_BASE_MODEL (the embedded model).")
        parser.add_argument("--adapter", help="Default: LENS_ADAPTER (none).")
        parser.add_argument("--threshold", type=float, help="λ. Default: LENS_THRESHOLD.")

    def handle(self, *args, **options) -> None:
        if (
            options["round"] is not None
            and not models.Round.objects.filter(number=options["round"]).exists()
        ):
            raise CommandError(f"There is no round {options['round']}.")
        selection = exports.select_judgments(options["status"], options["round"])
        todo = lens.needing_lens(selection, force=options["force"])
        ids = list(todo.values_list("pk", flat=True))
        model = {
            name: options[name]
            for name in ("base_model", "adapter", "threshold")
            if options[name] is not None
        }
        if not ids:
            self.stdout.write("Nothing to do: every selected negative judgment has its lens.")
            return
        if options["inline"]:
            try:
                stored = lens.compute_now(todo, **model)
            except (ValueError, FileNotFoundError) as e:
                raise CommandError(f"Cannot compute the lens: {e}") from e
            self.stdout.write(f"Stored the lens of {stored} judgments.")
            return
        jobs = lens.enqueue_compute(ids, **model)
        self.stdout.write(
            f"Queued the lens of {len(ids)} judgments as {len(jobs)} jobs on the "
            f"{lens.settings.LENS_QUEUE!r} queue."
        )
        if not lens.worker_alive():
            self.stderr.write(
                "No worker serves that queue now; start one: "
                f"manage.py db_worker --queue-name {lens.settings.LENS_QUEUE}"
            )
