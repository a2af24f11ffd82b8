"""Planner statistics after a bulk import: the queue's claim with and without the ANALYZE
that annotate/planner_stats.py runs after an import.

    python -m bench stats [--records 10000] [--batch 1000] [--annotators 100]

On a throwaway PostgreSQL database (DATABASE_URL's server, else 127.0.0.1:5432), twice:
import --records prompts + responses through imports.import_records (the code behind
`POST /api/responses/` and `import_responses`) in batches of --batch, once with the
refresh turned off ("stale": what the planner knew before, as with autovacuum off or not
yet come by) and once as shipped ("refreshed"); then --annotators annotators each claim
their first task (queue.next_for) and the claim times are printed. Nothing is asserted.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "critique_bench_planner_stats"


def _admin_url() -> tuple[str, str]:
    parts = urlsplit(os.environ.get("DATABASE_URL", "") or "")
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        parts = urlsplit("postgres://postgres@127.0.0.1:5432/postgres")
    return urlunsplit(parts._replace(path="/postgres")), urlunsplit(
        parts._replace(path=f"/{BENCH_DB}")
    )


def _execute(admin_url: str, statement: str) -> None:
    import psycopg

    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)
    except psycopg.OperationalError as error:
        raise SystemExit(f"PostgreSQL is not reachable at {admin_url}: {error}") from None


def run_one(mode: str, args: argparse.Namespace) -> dict:
    admin_url, url = _admin_url()
    _execute(admin_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    _execute(admin_url, f"CREATE DATABASE {BENCH_DB}")
    try:
        env = dict(
            os.environ,
            DATABASE_URL=url,
            DJANGO_SETTINGS_MODULE="config.settings",
            LOG_LEVEL="ERROR",
            PYTHONPATH=str(ROOT),
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.planner_stats",
                "--child",
                mode,
                f"--records={args.records}",
                f"--batch={args.batch}",
                f"--annotators={args.annotators}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            raise SystemExit(f"The {mode} run failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        _execute(admin_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def child(mode: str, args: argparse.Namespace) -> None:
    import time

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection

    from annotate import imports, planner_stats, queue

    call_command("migrate", verbosity=0)
    if mode == "stale":
        planner_stats.refresh_if_grown = lambda *a, **k: False
        imports.planner_stats = planner_stats
    group = Group.objects.get(name="annotators")
    people = []
    for i in range(args.annotators):
        user = User.objects.create_user(f"bench{i}")
        user.groups.add(group)
        people.append(user)
    started = time.perf_counter()
    for start in range(0, args.records, args.batch):
        records = (
            (f"records[{i}]", {"id": f"b{i}", "instruction": f"Task {i}.", "output": f"{i}"})
            for i in range(start, min(start + args.batch, args.records))
        )
        imports.import_records(records, source="bench")
    imported = time.perf_counter() - started
    claims = []
    for user in people:
        t0 = time.perf_counter()
        queue.next_for(user)
        claims.append((time.perf_counter() - t0) * 1000)
    claims.sort()
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'annotate_response'")
        believed = cursor.fetchone()[0]
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
    print(
        json.dumps(
            {
                "import_s": round(imported, 2),
                "believed_rows": believed,
                "autovacuum": autovacuum,
                "claim_p50_ms": round(claims[len(claims) // 2], 2),
                "claim_p95_ms": round(claims[int(len(claims) * 0.95)], 2),
            }
        )
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench stats", description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--annotators", type=int, default=100)
    parser.add_argument("--child", choices=["stale", "refreshed"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args)
        return
    print(
        f"Planner statistics: {args.records} records imported in batches of {args.batch}, "
        f"then {args.annotators} annotators claim a task each (PostgreSQL)"
    )
    for mode in ("stale", "refreshed"):
        found = run_one(mode, args)
        print(
            f"  {mode:9}  import {found['import_s']:6.2f} s   planner believes "
            f"{found['believed_rows']:>8.0f} responses   claim p50 {found['claim_p50_ms']:6.2f} ms"
            f"  p95 {found['claim_p95_ms']:6.2f} ms   (autovacuum {found['autovacuum']})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
