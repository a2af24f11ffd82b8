"""Fresh planner statistics after a bulk import, whichever door it came through.

Measured on PostgreSQL with autovacuum off: 10,000 tasks imported through the API in
batches of 1,000 left the planner believing the tables were as small as before, and the
queue's claim query took 28 ms instead of 1.7 ms (19 judgments/s instead of 54/s) until an
ANALYZE. Autovacuum catches up eventually; an import need not wait for it.

So every import (imports.import_records: `import_responses`, `POST /api/responses/`,
`seed_demo`) ends with refresh_if_grown(): when the prompt or the response table now holds
more than a tenth more rows than the planner believes (PostgreSQL's pg_class.reltuples,
SQLite's sqlite_stat1, both written by ANALYZE), ANALYZE them. An import that grows a
table by more than a tenth always does; so do many small imports once they add up to a
tenth, which a test of each import's own growth would miss. SQLite's planner reads
sqlite_stat1, which only ANALYZE writes, so it runs there too.
"""

from django.db import connection

from annotate import models

# The tables the queue and the admin's lists plan against; judgments grow with imports too.
TABLES = (models.Prompt, models.Response, models.Judgment)
# Rows beyond the planner's estimate, as a share of it, above which statistics are refreshed.
GROWTH = 0.1
# SQLite: rows sampled per index, so ANALYZE of a large table takes milliseconds.
SQLITE_ANALYSIS_LIMIT = 1000


def outgrew(rows: int, believed: int | None) -> bool:
    """More than a tenth more rows than the planner believes (any row, if it knows none)."""
    if rows <= 0:
        return False
    return believed is None or rows > (1 + GROWTH) * believed


def refresh_if_grown(prompts_added: int, responses_added: int) -> bool:
    """ANALYZE the tables when an import that added rows left the prompt or response
    table more than a tenth larger than the planner believes. Costs a COUNT of each.
    Returns whether it analysed."""
    if not (prompts_added or responses_added):
        return False
    grown = any(
        outgrew(model.objects.count(), believed_rows(model))
        for model in (models.Prompt, models.Response)
    )
    if grown:
        analyze()
    return grown


def believed_rows(model) -> int | None:
    """The row count the planner works with, from the last ANALYZE; None if there was none."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
            reltuples = cursor.fetchone()[0]
            return None if reltuples < 0 else int(reltuples)
        if connection.vendor == "sqlite":
            cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
            if cursor.fetchone() is None:
                return None
            # One row per index (idx NULL for a table without one); stat starts with the
            # number of rows in the table.
            cursor.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = %s LIMIT 1", [table])
            found = cursor.fetchone()
            return int(found[0].split()[0]) if found else None
    return None


def analyze() -> None:
    names = [connection.ops.quote_name(m._meta.db_table) for m in TABLES]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
            for name in names:
                cursor.execute(f"ANALYZE {name}")
        else:
            cursor.execute(f"ANALYZE {', '.join(names)}")
