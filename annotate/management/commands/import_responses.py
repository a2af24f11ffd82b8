"""Import prompts and model responses (and, if the file has them, judgments).

    manage.py import_responses data.jsonl --round 1 --overlap 2

Records are Alpaca-style: instruction, input, output, optional judgment, optional id.
Everything is checked before anything is written; one bad record stops the import.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from annotate import imports
from annotate.management import arguments

# Files above this size get a progress bar (when stderr is a terminal).
LARGE_FILE_BYTES = 1_000_000


class Command(BaseCommand):
    help = "Import prompts and responses from a JSON lines, JSON or CSV file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="The file to import.")
        parser.add_argument(
            "--format", choices=imports.FORMATS, help="Default: from the file's extension."
        )
        parser.add_argument("--source", help="Name of the data source. Default: the file's stem.")
        parser.add_argument(
            "--round", type=arguments.round_number, help="Put the responses in this round."
        )
        parser.add_argument(
            "--overlap",
            type=arguments.overlap,
            default=1,
            help="Judgments each response needs (default 1).",
        )
        parser.add_argument(
            "--accept-judgments",
            action="store_true",
            help="Mark judgments in the file as accepted instead of pending review.",
        )

    def handle(self, *args, **options) -> None:
        path = Path(options["path"])
        source = options["source"] or path.stem
        try:
            large = path.stat().st_size > LARGE_FILE_BYTES
        except OSError as e:
            raise CommandError(f"{path}: cannot read the file ({e.strerror}).") from e
        try:
            records = imports.read_records(path, options["format"])
            # disable=None: a bar only when stderr is a terminal.
            records = tqdm(
                records, unit=" records", desc="Checking", disable=None if large else True
            )
            summary = imports.import_records(
                records,
                source=source,
                round_number=options["round"],
                overlap=options["overlap"],
                accept_judgments=options["accept_judgments"],
                progress=large,
            )
        except imports.RecordError as e:
            raise CommandError(f"{e} Nothing was imported.") from e
        self.stdout.write(f"Imported {path} as source {source!r}: {summary}")
