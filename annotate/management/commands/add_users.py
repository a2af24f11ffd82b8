"""Add many people at once, each with a one-time link to set their password.

    manage.py add_users people.csv --role annotator --base-url https://critique.example.org
    printf 'rita,rita@example.org,reviewer\\nbob\\n' | manage.py add_users -

Lines are `username[,email[,role]]`. Every bad line is named with its number and nothing
is created; otherwise the accounts are created and a CSV of username, email, role and link
goes to stdout (or --output). The links are shown this once; nothing stores them.
"""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate import onboarding


class Command(BaseCommand):
    help = "Create accounts from lines of username[,email[,role]] with set-password links."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path", help="A file of username[,email[,role]] lines, or - for stdin."
        )
        parser.add_argument(
            "--role",
            choices=sorted(onboarding.ROLES),
            default="annotator",
            help="The role of lines that name none (default annotator).",
        )
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Where people open the app; the links start with it.",
        )
        parser.add_argument("--output", help="Write the CSV of links to this file, not stdout.")

    def handle(self, *args, **options) -> None:
        text = self._read(options["path"])
        try:
            people = onboarding.parse(text, options["role"])
        except onboarding.OnboardingError as error:
            raise CommandError(
                "Nothing was created:\n" + "\n".join(f"  {p}" for p in error.problems)
            ) from None
        base = options["base_url"].rstrip("/")
        # Opened before anything is created: links that can't be written would be lost.
        out = self._open(options["output"]) if options["output"] else None
        onboarding.create(people, lambda path: base + path)
        table = onboarding.as_csv(people)
        if out:
            with out:
                out.write(table)
        else:
            self.stdout.write(table, ending="")
        self.stderr.write(
            f"Created {len(people)} accounts. Give each person their link; it works once."
        )

    def _open(self, path: str):
        try:
            return open(path, "x", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as error:
            raise CommandError(f"Cannot write {path}: {error}") from None

    def _read(self, path: str) -> str:
        if path == "-":
            return sys.stdin.read()
        try:
            return Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {path}: {error}") from None
