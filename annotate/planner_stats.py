"""Fresh planner statistics after a bulk import, whichever door it came through.

Measured on PostgreSQL with autovacuum off: 10,000 tasks imported through the API in
batches of 1,000 left the planner believing the tables were as small as before, and the
queue's claim query took 28 ms instead of 1.7 ms (19 judgments/s instead of 54/s) until an
ANALYZE. Autovacuum catches up eventually; an import need not wait for it. So every import
(imports.import_records: `import_responses`, `POST /api/responses/`, `seed_demo`) ends with
refresh_if_grown(): when the rows it added are more than a tenth of what the prompt and
response tables held before, ANALYZE them. SQLite's planner reads `sqlite_stat1`, which
only ANALYZE writes, so it runs there too.
"""

from django.db import connection

from annotate import models

# The tables the queue and the admin's lists plan against; judgments grow with imports too.
TABLES = (models.Prompt, models.Response, models.Judgment)
# Added rows, as a share of the rows there before, above which the statistics are refreshed.
GROWTH = 0.1
# SQLite: rows sampled per index, so ANALYZE of a large table takes milliseconds.
SQLITE_ANALYSIS_LIMIT = 1000


def grew(added: int, total_after: int) -> bool:
    """More than a tenth more rows than before (an empty table grows by any row)."""
    return added > 0 and added > GROWTH * (total_after - added)


def refresh_if_grown(prompts_added: int, responses_added: int) -> bool:
    """ANALYZE the tables when an import grew prompts or responses by more than a tenth.
    Counts both tables (two COUNT queries). Returns whether it analysed."""
    if not (prompts_added or responses_added):
        return False
    if not (
        grew(prompts_added, models.Prompt.objects.count())
        or grew(responses_added, models.Response.objects.count())
    ):
        return False
    analyze()
    return True


def analyze() -> None:
    names = [connection.ops.quote_name(m._meta.db_table) for m in TABLES]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
            for name in names:
                cursor.execute(f"ANALYZE {name}")
        else:
            cursor.execute(f"ANALYZE {', '.join(names)}")
