"""Export judgments as JSON lines triples for training.

    manage.py export_judgments data.jsonl --status accepted --round 2
    manage.py export_judgments - --status all | head

Counts (positive, negative, per round) go to stderr, so "-" leaves stdout pure JSONL.
"""

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime

from annotate import exports
from annotate.management import arguments, output


def parse_since(value: str) -> dt.date | dt.datetime:
    try:
        parsed = parse_datetime(value) or parse_date(value)
    except ValueError:
        parsed = None
    if parsed is None:
        raise CommandError(f"--since must be a date (2024-05-31) or a datetime, got {value!r}.")
    return parsed


class Command(BaseCommand):
    help = "Write judgments as JSON lines (instruction, input, output, judgment, ...)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="Output file, or - for stdout.")
        parser.add_argument("--status", choices=exports.STATUSES, default="accepted")
        parser.add_argument(
            "--round",
            type=arguments.round_number,
            help="Only judgments of responses in this round.",
        )
        parser.add_argument("--since", help="Only judgments created on or after this date.")
        parser.add_argument(
            "--positive-judgment",
            action="store_true",
            help="Put notes written on positive judgments in the judgment field too.",
        )
        parser.add_argument(
            "--lens",
            action="store_true",
            help="Add each judgment's stored lens: {model, threshold, flagged_spans, "
            "flagged_share} (null where none is computed for the current critique).",
        )

    def handle(self, *args, **options) -> None:
        since = parse_since(options["since"]) if options["since"] else None
        queryset = exports.select_judgments(options["status"], options["round"], since)
        kw = {"positive_judgment": options["positive_judgment"], "lens": options["lens"]}
        if options["path"] == "-":
            counts = exports.write_jsonl(queryset, self.stdout, **kw)
        else:
            counts = output.write_file(
                Path(options["path"]), lambda f: exports.write_jsonl(queryset, f, **kw)
            )
        for line in counts.lines():
            self.stderr.write(line)
