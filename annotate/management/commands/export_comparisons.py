"""Export comparison votes as preference pairs (prompt, chosen, rejected) for DPO.

    manage.py export_comparisons prefs.jsonl --comparison 3
    manage.py export_comparisons - --include-ties | head

One line per decisive vote; ties and "both are bad" only with --include-ties. The count
goes to stderr, so "-" leaves stdout pure JSONL.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate import compare_exports, models
from annotate.management import output


class Command(BaseCommand):
    help = "Write comparison votes as JSON lines preference pairs (prompt, chosen, rejected)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="Output file, or - for stdout.")
        parser.add_argument("--comparison", type=int, help="Only this comparison's votes.")
        parser.add_argument(
            "--include-ties",
            action="store_true",
            help='Keep ties and "both are bad" (outcome says which; no preference in them).',
        )

    def handle(self, *args, **options) -> None:
        comparison = options["comparison"]
        if comparison is not None and not models.Comparison.objects.filter(pk=comparison).exists():
            raise CommandError(f"There is no comparison {comparison}.")
        votes = compare_exports.select_votes(comparison, include_ties=options["include_ties"])
        if options["path"] == "-":
            written = compare_exports.write_jsonl(votes, self.stdout)
        else:
            written = output.write_file(
                Path(options["path"]), lambda f: compare_exports.write_jsonl(votes, f)
            )
        self.stderr.write(f"{written} preference pairs written.")
