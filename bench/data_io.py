"""Import, export and admin changelist at 100,000 rows, on SQLite and on PostgreSQL.

    python -m bench data [--db sqlite|postgres|both] [--records N] [--requests N]

Each database gets a throwaway copy (a temporary SQLite file; a PostgreSQL database named
critique_bench on the server of DATABASE_URL, or 127.0.0.1:5432 as user postgres), which
is migrated, measured in a child process with DATABASE_URL pointing at it, and removed.
The export runs in a process of its own so its peak RSS (VmHWM) is that of the export
alone; an export of zero rows, measured the same way, is the baseline (Python, Django and
the database driver). Times are wall-clock: on a busy machine they grow, so the load
average is printed with them.
"""

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "critique_bench"
WORDS = (
    "model",
    "answer",
    "river",
    "cloud",
    "number",
    "garden",
    "engine",
    "letter",
    "planet",
    "reason",
    "table",
    "window",
    "simple",
    "quickly",
    "history",
    "market",
    "energy",
    "signal",
    "winter",
    "forest",
    "language",
    "detail",
    "method",
)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=9, help="Changelist requests per URL.")
    args = parser.parse_args(argv)
    databases = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    for name in databases:
        load = os.getloadavg()[0]
        print(
            f"\n== {name}: {args.records:,} records "
            f"(load average {load:.1f} on {os.cpu_count()} CPUs at the start) ==",
            flush=True,
        )
        try:
            with _throwaway_database(name) as url:
                result = _run_child(url, args.records, args.requests)
        except _Unavailable as e:
            print(f"  skipped: {e}")
            continue
        _report(result)


class _Unavailable(Exception):
    pass


@contextmanager
def _throwaway_database(kind: str) -> Iterator[str]:
    """Yield a DATABASE_URL for an empty database, and remove the database afterwards."""
    if kind == "sqlite":
        tmp = tempfile.mkdtemp(prefix="critique-bench-")
        try:
            yield f"sqlite:///{tmp}/bench.sqlite3"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        base = "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(base)
    server = urlunsplit(parts._replace(path="/postgres"))
    _postgres(server, f"DROP DATABASE IF EXISTS {BENCH_DB}", f"CREATE DATABASE {BENCH_DB}")
    try:
        yield urlunsplit(parts._replace(path=f"/{BENCH_DB}"))
    finally:
        _postgres(server, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def _postgres(url: str, *statements: str) -> None:
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            for statement in statements:
                conn.execute(statement)
    except psycopg.OperationalError as e:
        raise _Unavailable(f"cannot reach PostgreSQL ({str(e).strip()})") from e


def _run_child(url: str, records: int, requests: int) -> dict:
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings")
    command = [sys.executable, "-m", "bench.data_io", "--child", str(records), str(requests)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"The benchmark failed on {url} (exit status {done.returncode}).")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _report(r: dict) -> None:
    n = r["records"]
    mib = 1024 * 1024
    print(f"  import         {r['import_s']:7.1f} s  {n / r['import_s']:9,.0f} records/s")
    print(f"  re-import      {r['reimport_s']:7.1f} s  (all {n:,} unchanged)")
    export, empty = r["export"], r["empty_export"]
    print(
        f"  export         {export['seconds']:7.1f} s  {n / export['seconds']:9,.0f} records/s"
        f"  ({r['export_mb']:.0f} MB of JSON lines)"
    )
    print(
        f"  export RSS     peak {export['peak_rss'] / mib:.0f} MiB for {n:,} rows, "
        f"{empty['peak_rss'] / mib:.0f} MiB for none (Python, Django, the driver)"
    )
    for label, ms in r["admin"].items():
        print(f"  admin {label:<40} median {ms:6.1f} ms per request")


# ---------------------------------------------------------------- the child process


def _records(n: int, seed: int = 0):
    """Records shaped like the paper's: ~70-char instructions, ~600-char outputs, 30% judged
    negative with a ~150-char critique."""
    rng = random.Random(seed)

    def text(words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(words))

    for i in range(n):
        record = {
            "id": i,
            "instruction": f"Question {i}: {text(10)}?",
            "input": text(8) if i % 5 == 0 else "",
            "output": text(90),
            "judgment": text(22) if rng.random() < 0.3 else None,
        }
        yield record


def _export(out: Path, *args: str) -> dict:
    """Run export_judgments in a process of its own; return its time and peak RSS."""
    command = [sys.executable, "-m", "bench.data_io", "--export", str(out), *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"export_judgments failed: {done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _export_child(argv: list[str]) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    start = time.perf_counter()
    call_command("export_judgments", *argv, stderr=io.StringIO())
    seconds = time.perf_counter() - start
    # VmHWM, not getrusage(): ru_maxrss survives exec(), so a child started by a big
    # process reports the parent's peak. VmHWM belongs to this process's own memory map.
    with open("/proc/self/status") as f:
        hwm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": seconds, "peak_rss": hwm_kb * 1024}))


def _median_ms(client, url: str, requests: int) -> float:
    times = []
    for i in range(requests + 1):
        start = time.perf_counter()
        response = client.get(url)
        if i:  # the first is a warm-up: templates, caches, the connection
            times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}.")
    return statistics.median(times)


def _child(records: int, requests: int) -> None:
    import warnings

    import django

    warnings.simplefilter("ignore")  # whitenoise's "No directory at staticfiles/"
    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    result: dict = {"records": records}
    with tempfile.TemporaryDirectory(prefix="critique-bench-") as tmp:
        data = Path(tmp) / "bench.jsonl"
        with data.open("w") as f:
            for record in _records(records):
                f.write(json.dumps(record) + "\n")

        for key in ("import_s", "reimport_s"):
            start = time.perf_counter()
            call_command("import_responses", str(data), "--round", "1", stdout=io.StringIO())
            result[key] = time.perf_counter() - start

        out = Path(tmp) / "export.jsonl"
        result["empty_export"] = _export(out, "--status", "rejected")  # no rows: the baseline
        result["export"] = _export(out, "--status", "all")
        result["export_mb"] = out.stat().st_size / 1e6
        with out.open() as f:
            exported = sum(1 for _ in f)
        if exported != records:
            raise RuntimeError(f"The export has {exported} lines for {records} records.")

    staff = User.objects.create_superuser("bench-admin", "bench@example.org", "bench-password")
    client = Client()
    client.force_login(staff)
    base = "/admin/annotate/judgment/"
    middle = max(1, records // 200)  # halfway through, at 100 rows a page
    urls = {
        "judgments changelist": base,
        "judgments, filter verdict=negative": base + "?verdict__exact=negative",
        "judgments, filter round=1": base + "?response__round__number__exact=1",
        f"judgments, page {middle} (offset {middle * 100:,})": f"{base}?p={middle}",
        "judgments, search 'Question 99999'": base + "?q=Question+99999",
        "responses changelist": "/admin/annotate/response/",
    }
    result["admin"] = {label: _median_ms(client, url, requests) for label, url in urls.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["--export"]:
        _export_child(sys.argv[2:])
    else:
        main(sys.argv[1:])
