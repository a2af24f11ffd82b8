"""`python -m bench jobs`: how fast an idle worker starts a job, and how small the web stays.

For each database (a fresh SQLite file; PostgreSQL database critique_bench_jobs on the
server of DATABASE_URL, or 127.0.0.1:5432 as user postgres), migrated:

1. Enqueue -> running: one `manage.py db_worker --queue-name gpu --interval I` waits idle;
   the benchmark enqueues a training run at a random moment of the worker's poll cycle and
   takes the time until the worker has claimed it (the run's started_at, written at the
   claim). The run has no data snapshot, so it fails at once after the claim, and the next
   one is measured against an idle worker again. Goal: under 2 s. The worker's poll
   interval bounds it: the latency is about uniform on [0, I] plus the claim.
2. Memory: the resident set of a web process with the whole app loaded (WSGI app, every
   URL's view, the admin, the API) after serving a few pages, and whether torch is in it;
   beside it, what `import torch, transformers, peft` alone costs a process, and the idle
   worker's resident set before and after it ran jobs.
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.load import Database, _django_env, _python

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "critique_bench_jobs"


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_latency(runs: int, interval: float) -> None:
    """In a child with DJANGO_SETTINGS_MODULE set: enqueue `runs` runs, one at a time."""
    import django

    django.setup()
    from django.utils import timezone

    from annotate import jobs, models, workers

    deadline = time.monotonic() + 60
    while not workers.alive("gpu"):
        if time.monotonic() > deadline:
            raise SystemExit("The worker did not start within 60 s.")
        time.sleep(0.1)
    latencies = []
    for _ in range(runs):
        time.sleep(random.uniform(0, interval))  # any moment of the worker's poll cycle
        run = models.TrainingRun.objects.create(
            snapshot_path="/nonexistent/bench-jobs.jsonl", output_dir="/nonexistent"
        )
        enqueued = timezone.now()
        jobs.enqueue_training(run)
        while True:
            run.refresh_from_db(fields=["started_at", "status"])
            if run.status not in ("queued", "running"):
                break
            time.sleep(0.005)
        latencies.append((run.started_at - enqueued).total_seconds())
    q = statistics.quantiles(latencies, n=20, method="inclusive")
    print(
        f"  enqueue -> running ({runs} runs, --interval {interval}): "
        f"p50 {statistics.median(latencies):.3f} s  p95 {q[18]:.3f} s  max {max(latencies):.3f} s"
    )


def load_web_app() -> None:
    """Import what a web process loads (Django set up): the WSGI app, every view the URLconf
    routes to, the admin, the API, and every module of annotate/ but the management
    commands and migrations. tests/test_web_stays_small.py checks that torch is not in it."""
    import importlib
    import pkgutil

    from django.contrib import admin
    from django.urls import URLPattern, URLResolver, get_resolver

    import annotate
    import config.urls  # noqa: F401
    import config.wsgi  # noqa: F401

    def walk(patterns):
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns)
            elif isinstance(p, URLPattern):
                importlib.import_module(p.callback.__module__)

    walk(get_resolver().url_patterns)
    admin.site.get_urls()
    for info in pkgutil.walk_packages(annotate.__path__, "annotate."):
        if ".management" not in info.name and ".migrations" not in info.name:
            importlib.import_module(info.name)


def measure_web() -> None:
    """In a child: load what a web process loads, serve some pages, report the RSS."""
    import django

    django.setup()
    from django.test import Client

    load_web_app()
    client = Client(HTTP_HOST="127.0.0.1")
    for path in ("/accounts/login/", "/api/schema/", "/admin/login/"):
        client.get(path)
    heavy = [m for m in ("torch", "transformers", "peft") if m in sys.modules]
    print(f"  web process, app loaded: {rss_mb():.0f} MB resident; torch etc. loaded: {heavy}")


def measure_torch() -> None:
    import peft  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    print(f"  for scale, a process after import torch, transformers, peft: {rss_mb():.0f} MB")


def run_one(kind: str, args: argparse.Namespace) -> None:
    print(f"== {kind}")
    with Database(kind, BENCH_DB) as url:
        env = _django_env(url)
        env.update(DEBUG="false", LOG_LEVEL="ERROR", WORKER_HEARTBEAT_SECONDS="1")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        for interval in args.interval:
            worker = subprocess.Popen(
                [sys.executable, "manage.py", "db_worker", "--queue-name", "gpu",
                 "--no-reload", "--interval", str(interval), "--verbosity", "0"],
                cwd=ROOT, env=env,
            )  # fmt: skip
            try:
                time.sleep(3)  # Django and the app loaded, polling
                idle = rss_mb(worker.pid)
                out = _python(
                    f"import bench.jobs as b; b.measure_latency({args.runs}, {interval})", env
                )
                print(out, end="")
                print(
                    f"  worker resident set: {idle:.0f} MB idle, "
                    f"{rss_mb(worker.pid):.0f} MB after its jobs"
                )
            finally:
                worker.terminate()
                worker.wait(timeout=60)
        # DEBUG for the static files' plain storage (no collectstatic manifest needed).
        web_env = dict(env, DEBUG="true")
        print(_python("import bench.jobs as b; b.measure_web()", web_env), end="")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench jobs", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=20, help="jobs timed per interval")
    parser.add_argument(
        "--interval",
        type=float,
        nargs="+",
        default=[1.0, 0.5],
        help="worker poll intervals to try (db_worker --interval; the library's default is 1)",
    )
    args = parser.parse_args(argv)
    for kind in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        run_one(kind, args)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    print(_python("import bench.jobs as b; b.measure_torch()", env), end="")


if __name__ == "__main__":
    main(sys.argv[1:])
