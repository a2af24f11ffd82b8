"""Load benchmark: gunicorn on 127.0.0.1 and C simulated annotators, on SQLite and PostgreSQL.

    python -m bench load [--db sqlite|postgres|both] [--annotators 20] [--seconds 30]
                         [--warmup 5] [--responses 10000] [--overlap 1] [--think 1]
                         [--workers 2xCPUs] [--threads 2]

For each database: a throwaway copy (a temporary SQLite file; a PostgreSQL database named
critique_bench_load on the server of DATABASE_URL, or 127.0.0.1:5432 as user postgres) is
migrated, loaded with N responses and C annotator accounts, and vacuumed and analysed as
autovacuum would after a bulk load. gunicorn serves the app with DEBUG off and the
settings of config/gunicorn.py. Each simulated
annotator logs in through the login form, then loops until time is up: GET the task page
(which reserves a response), then POST the judgment form with the CSRF token from that
page, exactly as the browser does without JavaScript. The first --warmup seconds run the
same loop but are left out of the latencies.

Printed per database: p50/p95/p99 latency of both steps, judgments per second, errors
(any answer that is not the expected page or redirect), judgments lost (submits the
client saw succeed that are not in the database) and over-assigned responses (more
judgments than their overlap). The client runs on the same machine and competes with
the server for the CPU; the figures are for the pair.
"""

import argparse
import http.client
import os
import random
import re
import runpy
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
gunicorn_conf = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))
BENCH_DB = "critique_bench_load"
PASSWORD = "bench-annotator-password"
TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
RESPONSE_RE = re.compile(r'data-response-id="(\d+)"')
CRITIQUES = [
    "The answer skips the second half of the question.",
    "The code does not handle an empty list.",
    "It states a wrong date for the event.",
]


# The databases -------------------------------------------------------------------------


class Database:
    """A context manager yielding the DATABASE_URL of an empty database, removed on exit."""

    def __init__(self, kind: str, name: str = BENCH_DB) -> None:
        self.kind = kind
        self.name = name  # of the PostgreSQL database; each benchmark its own
        self.tmpdir: str | None = None

    def __enter__(self) -> str:
        if self.kind == "sqlite":
            self.tmpdir = tempfile.mkdtemp(prefix="critique-load-")
            return f"sqlite:///{self.tmpdir}/bench.sqlite3"
        parts = urlsplit(os.environ.get("DATABASE_URL", "") or "")
        if parts.scheme not in ("postgres", "postgresql", "pgsql"):
            parts = urlsplit("postgres://postgres@127.0.0.1:5432/postgres")
        self.admin_url = urlunsplit(parts._replace(path="/postgres"))
        self._execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self._execute(f"CREATE DATABASE {self.name}")
        return urlunsplit(parts._replace(path=f"/{self.name}"))

    def __exit__(self, *exc) -> None:
        if self.kind == "sqlite":
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        else:
            self._execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def _execute(self, statement: str) -> None:
        import psycopg

        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
                conn.execute(statement)
        except psycopg.OperationalError as error:
            raise SystemExit(f"PostgreSQL is not reachable at {self.admin_url}: {error}") from None


def _django_env(url: str) -> dict:
    return dict(
        os.environ,
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY="load-benchmark-only",
        ALLOWED_HOSTS="127.0.0.1",
        # Plain HTTP on 127.0.0.1, no TLS proxy in front: no redirect, cookies over HTTP.
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        LOG_LEVEL="ERROR",
        PYTHONPATH=str(ROOT),
    )


def _python(code: str, env: dict) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"Child process failed:\n{result.stderr[-3000:]}")
    return result.stdout


def _prepare(url: str, responses: int, annotators: int, overlap: int) -> None:
    env = _django_env(url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    _python(f"import bench.load as b; b.seed({responses}, {annotators}, {overlap})", env)


def seed(responses: int, annotators: int, overlap: int) -> None:
    """Runs in a child process with Django set up from the environment."""
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User

    from annotate import models

    rng = random.Random(0)
    round1 = models.Round.objects.create(number=1, base_model="bench")
    prompts = models.Prompt.objects.bulk_create(
        models.Prompt(source="bench", external_id=str(i), instruction=f"Question {i}: explain X.")
        for i in range(responses)
    )
    words = [
        "the",
        "model",
        "answer",
        "explains",
        "each",
        "step",
        "of",
        "the",
        "reasoning",
        "and",
        "the",
        "final",
        "result",
    ]
    models.Response.objects.bulk_create(
        (
            models.Response(
                prompt=p,
                round=round1 if i % 2 else None,
                generator="bench",
                overlap=overlap,
                text=" ".join(rng.choices(words, k=120)),
            )
            for i, p in enumerate(prompts)
        ),
        batch_size=2000,
    )
    # One hash for everyone: hashing C passwords would dominate the setup time.
    password = make_password(PASSWORD)
    users = User.objects.bulk_create(
        User(username=f"annotator{i}", password=password) for i in range(annotators)
    )
    Group.objects.get(name="annotators").user_set.add(*users)
    _vacuum_analyze()


def _vacuum_analyze() -> None:
    """What autovacuum would do after a bulk load: planner statistics and the visibility map.

    Without it the first minutes run on guesses (PostgreSQL plans for a few hundred rows,
    not 10,000), and some servers, this project's CI among them, run with autovacuum off.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def verify() -> None:
    """Child process: reads the client's submits from stdin, prints lost and over-assigned."""
    import json

    import django

    django.setup()
    from django.db.models import Count, F

    from annotate import models

    submitted = json.load(sys.stdin)
    stored = set(
        models.Judgment.objects.values_list("annotator__username", "response_id").iterator()
    )
    lost = sum((user, pk) not in stored for user, pk in submitted)
    by_count = models.Response.objects.annotate(n=Count("judgments"))
    over = by_count.filter(n__gt=F("overlap")).count()
    drift = by_count.exclude(n=F("judgment_count")).count()
    print(json.dumps({"lost": lost, "over": over, "drift": drift, "stored": len(stored)}))


# The server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _collectstatic(env: dict) -> None:
    # DEBUG off serves hashed names from the manifest that collectstatic writes.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


class Server:
    def __init__(self, url: str, workers: int, threads: int) -> None:
        self.env = _django_env(url)
        self.port = _free_port()
        self.workers, self.threads = workers, threads

    def __enter__(self) -> "Server":
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [
                str(gunicorn),
                "--config=config/gunicorn.py",
                f"--bind=127.0.0.1:{self.port}",
                f"--workers={self.workers}",
                f"--threads={self.threads}",
                "config.wsgi:application",
            ],
            cwd=ROOT,
            env=self.env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise SystemExit("gunicorn exited at start; see its output above.") from None
                time.sleep(0.2)
        raise SystemExit("gunicorn did not start listening within 30 s.")

    def __exit__(self, *exc) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()


# The annotators ------------------------------------------------------------------------


@dataclass
class Results:
    task_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    submitted: list[tuple[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    empty: int = 0
    # Cycles that start before this (time.monotonic()) are the warm-up: their judgments are
    # verified like the rest, their latencies are not reported.
    measure_from: float = 0.0
    measured_judgments: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Annotator:
    """One browser without JavaScript: a keep-alive connection and its cookies."""

    def __init__(self, port: int, username: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.username = username
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, response.headers.get("Location", ""), text

    def log_in(self) -> None:
        _, _, page = self.request("GET", "/accounts/login/")
        token = TOKEN_RE.search(page).group(1)
        status, location, _ = self.request(
            "POST",
            "/accounts/login/",
            {"csrfmiddlewaretoken": token, "username": self.username, "password": PASSWORD},
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"{self.username} could not log in (status {status}).")

    # One cycle: GET the page that reserves an item, think, POST the form, expect a redirect
    # back to the page. bench.compare.Evaluator overrides these for the pair page.
    page_path = "/"
    page_name = "/"
    empty_text = "Your queue is empty"

    def item_id(self, page: str) -> int | None:
        found = RESPONSE_RE.search(page)
        return int(found.group(1)) if found else None

    def submission(self, item: int, page: str, rng: random.Random) -> tuple[str, dict]:
        negative = rng.random() < 0.4
        form = {
            "csrfmiddlewaretoken": TOKEN_RE.search(page).group(1),
            "verdict": "negative" if negative else "positive",
            "critique": rng.choice(CRITIQUES) if negative else "",
            "spans": "[[0, 3]]" if negative else "",
            "seconds_spent": str(rng.randint(5, 120)),
        }
        return f"/responses/{item}/judgment/", form

    def submit_error(self, status: int, page: str) -> str:
        error = re.search(r'<ul class="errorlist[^"]*"[^>]*><li>([^<]+)', page)
        return f"POST answered {status}: {error.group(1) if error else page[:100]}"

    def work(self, deadline: float, think: float, results: Results, rng: random.Random) -> None:
        while time.monotonic() < deadline:
            measured = time.monotonic() >= results.measure_from
            started = time.perf_counter()
            status, _, page = self.request("GET", self.page_path)
            page_ms = (time.perf_counter() - started) * 1000
            item = self.item_id(page)
            if status != 200 or item is None:
                with results.lock:
                    if status == 200 and self.empty_text in page:
                        results.empty += 1
                    else:
                        results.errors.append(f"GET {self.page_name} answered {status}")
                if status == 200:
                    return
                continue
            if think:
                time.sleep(rng.uniform(0, 2 * think))
            path, form = self.submission(item, page, rng)
            started = time.perf_counter()
            status, location, page = self.request("POST", path, form)
            submit_ms = (time.perf_counter() - started) * 1000
            with results.lock:
                if measured:
                    results.task_ms.append(page_ms)
                if status == 302 and location == self.page_path:
                    results.submitted.append((self.username, item))
                    if measured:
                        results.submit_ms.append(submit_ms)
                        results.measured_judgments += 1
                else:
                    results.errors.append(self.submit_error(status, page))


def _run_clients(
    port: int,
    annotators: int,
    seconds: float,
    think: float,
    warmup: float,
    client_class: Callable[[int, str], Annotator] = Annotator,
) -> Results:
    clients = [client_class(port, f"annotator{i}") for i in range(annotators)]
    for client in clients:
        client.log_in()
    results = Results(measure_from=time.monotonic() + warmup)
    deadline = results.measure_from + seconds
    threads = [
        threading.Thread(
            target=client.work, args=(deadline, think, results, random.Random(i)), daemon=True
        )
        for i, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


# Reporting -----------------------------------------------------------------------------


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:6.1f}  p95 {q[94]:6.1f}  p99 {q[98]:6.1f} ms"


def run_one(kind: str, args: argparse.Namespace) -> dict:
    import json

    with Database(kind) as url:
        print(f"== {kind}: migrating and loading {args.responses:,} responses ...", flush=True)
        _prepare(url, args.responses, args.annotators, args.overlap)
        _collectstatic(_django_env(url))
        with Server(url, args.workers, args.threads) as server:
            print(
                f"   gunicorn gthread {args.workers} workers x {args.threads} threads; "
                f"{args.annotators} annotators for {args.warmup:g} s of warm-up, then "
                f"{args.seconds:g} s measured; think {args.think:g} s",
                flush=True,
            )
            load_before = os.getloadavg()[0]
            results = _run_clients(
                server.port, args.annotators, args.seconds, args.think, args.warmup
            )
            # Zero when the queue ran dry during the warm-up.
            elapsed = max(time.monotonic() - results.measure_from, 0.0)
            load_after = os.getloadavg()[0]
        check = json.loads(
            subprocess.run(
                [sys.executable, "-c", "import bench.load as b; b.verify()"],
                cwd=ROOT,
                env=_django_env(url),
                input=json.dumps(results.submitted),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    summary = {
        "db": kind,
        "task": _percentiles(results.task_ms),
        "submit": _percentiles(results.submit_ms),
        "judgments": len(results.submitted),
        "per_second": results.measured_judgments / elapsed if elapsed else 0.0,
        "errors": len(results.errors),
        "lost": check["lost"],
        "over": check["over"],
        "drift": check["drift"],
        "empty": results.empty,
    }
    if not results.task_ms:
        print("   nothing measured: the queue ran dry in the warm-up; load more --responses")
    print(f"   task page  {summary['task']}")
    print(f"   submit     {summary['submit']}")
    print(
        f"   {summary['judgments']:,} judgments, {summary['per_second']:.1f}/s; "
        f"errors {summary['errors']}, lost {summary['lost']}, over-assigned {summary['over']}, "
        f"judgment_count drift {summary['drift']}"
    )
    # Other work on the machine slows both server and client; say how busy it was.
    print(
        f"   load average {load_before:.1f} before, {load_after:.1f} after ({os.cpu_count()} CPUs)"
    )
    for error in sorted(set(results.errors))[:5]:
        print(f"   error: {error}")
    return summary


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30, help="measured seconds")
    # New connections, first statements to prepare, templates to load: the first seconds
    # say how a cold server starts, not how it serves. They run but are not reported.
    parser.add_argument("--warmup", type=float, default=5, help="seconds run before measuring")
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--overlap", type=int, default=1)
    # A person needs half a minute or more per judgment; one second on average (uniform
    # 0-2 s) is a crowd far faster than real annotators. --think 0 is a stress test: the
    # latency it shows is queueing at saturation, and its judgments/s is the throughput.
    parser.add_argument(
        "--think", type=float, default=1.0, help="mean seconds between page and submit"
    )
    # The served defaults of config/gunicorn.py: 2 workers per CPU, 2 threads each.
    parser.add_argument("--workers", type=int, default=gunicorn_conf["workers"])
    parser.add_argument("--threads", type=int, default=gunicorn_conf["threads"])
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    summaries = [run_one(kind, args) for kind in kinds]
    failed = [s["db"] for s in summaries if s["errors"] or s["lost"] or s["over"] or s["drift"]]
    if failed:
        raise SystemExit(f"Load benchmark found errors, lost or over-assigned work on {failed}.")


if __name__ == "__main__":
    main(sys.argv[1:])
