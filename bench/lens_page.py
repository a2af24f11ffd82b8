"""The lens preview as the annotator gets it: through the page and a real lens worker.

    python -m bench lens-page [--runs 20] [--tokens 100,500,2000] [--base-model PATH]
                              [--interval 0.05]

A throwaway SQLite database is migrated and given an annotator and one response per size;
`manage.py db_worker --queue-name lens` runs as a subprocess with the model (default: the
embedded SmolLM2-135M-Instruct, on the CPU) and is warmed up with one preview. Then, per
size, --runs times: POST the preview form as htmx does (a new critique each time, as when
an annotator edits and previews again), then GET the poll URL every POLL_MS (what the page's
`hx-trigger="load delay:300ms"` does) until the marking comes back. Printed: the round trip
the annotator sees (p50/p95), the same polling every 20 ms (the page's own delay left out),
and the worker's time on the job (started → finished). This process never imports torch,
like the web process. Responses are English prose of about the given number of tokens
(the worker's token count of each is printed).
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = (
    "The Apollo 11 mission landed the first humans on the Moon in July 1969, and Neil "
    "Armstrong stepped onto the surface while Buzz Aldrin followed him shortly after. "
)
CRITIQUES = [
    "The year is wrong: the landing was in 1969, not {n}.",
    "It names the wrong astronaut as the second man on the Moon ({n}).",
    "The response repeats itself instead of answering ({n}).",
]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench lens-page", description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tokens", default="100,500,2000")
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--interval", type=float, default=0.05, help="db_worker --interval")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.tokens.split(",")]
    # A SIGTERM (timeout, kill) unwinds as an exit, so the worker subprocess is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="critique-lens-page-") as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite3"
        os.environ.update(DATABASE_URL=url, DJANGO_SETTINGS_MODULE="config.settings")
        os.environ.pop("LENS_BASE_MODEL", None)
        if args.base_model:
            os.environ["LENS_BASE_MODEL"] = args.base_model
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        _run(args, sizes)


def _run(args, sizes: list[int]) -> None:
    from django.test import Client
    from django.utils import timezone

    from annotate import lens_views, models, workers
    from tests.conftest import make_user

    user = make_user("bench-annotator", "annotators")
    prompt = models.Prompt.objects.create(
        source="bench", external_id="moon", instruction="Tell me about the Moon landing."
    )
    # About 37 tokens a sentence for SmolLM2's tokenizer.
    responses = {
        n: models.Response.objects.create(prompt=prompt, text=SENTENCE * max(1, round(n / 37)))
        for n in sizes
    }
    # Handed to the annotator, as the queue does: the preview checks that.
    until = timezone.now() + timedelta(days=1)
    for response in responses.values():
        models.Reservation.objects.create(response=response, annotator=user, expires=until)
    client = Client()
    client.force_login(user)
    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--queue-name",
            "lens",
            "--interval",
            str(args.interval),
            "--no-startup-delay",
            "--no-reload",
            "--verbosity",
            "0",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        while not workers.alive("lens"):
            if worker.poll() is not None:
                raise SystemExit("The lens worker exited before it started listening.")
            time.sleep(0.1)
        print(
            f"lens worker up (db_worker --interval {args.interval}); load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; warming up…",
            flush=True,
        )
        start = time.perf_counter()
        _preview(client, responses[sizes[0]], "Warm-up.", lens_views.POLL_MS / 1000)
        print(f"  first preview (loads the model): {time.perf_counter() - start:.1f} s")
        print(
            f"{'tokens':>8} {'page p50':>9} {'page p95':>9} {'raw p50':>8} {'raw p95':>8}"
            f" {'worker p50':>11}  (seconds, {args.runs} runs each)"
        )
        for response in responses.values():
            page, raw, work, tokens = [], [], [], 0
            for i in range(args.runs):
                critique = CRITIQUES[i % len(CRITIQUES)].format(n=1900 + i)
                seconds, job, count = _preview(
                    client, response, critique, lens_views.POLL_MS / 1000
                )
                page.append(seconds)
                work.append((job.finished_at - job.started_at).total_seconds())
                tokens = count
                seconds, _, _ = _preview(client, response, critique + " Again.", 0.02)
                raw.append(seconds)
            print(
                f"{tokens:>8} {_p(page, 50):>9.2f} {_p(page, 95):>9.2f} {_p(raw, 50):>8.2f}"
                f" {_p(raw, 95):>8.2f} {statistics.median(work):>11.2f}",
                flush=True,
            )
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _preview(client, response, critique: str, poll: float):
    """POST the preview as htmx does, poll every `poll` s; (seconds, job, tokens)."""
    from django.urls import reverse
    from django_tasks_db.models import DBTaskResult

    hx = {"HX-Request": "true"}
    start = time.perf_counter()
    page = client.post(
        reverse("annotate:lens-preview"),
        {"response": response.pk, "critique": critique},
        headers=hx,
    )
    html = page.content.decode()
    if page.status_code != 200 or "hx-get" not in html:
        raise SystemExit(f"The preview did not start: {page.status_code} {html[:300]}")
    poll_url = html.split('hx-get="', 1)[1].split('"', 1)[0]
    while True:
        time.sleep(poll)
        html = client.get(poll_url, headers=hx).content.decode()
        if "lens-text" in html or "lens-error" in html:
            break
    seconds = time.perf_counter() - start
    if "lens-error" in html:
        raise SystemExit(f"The preview failed: {html}")
    job = DBTaskResult.objects.get(pk=poll_url.rstrip("/").rsplit("/", 1)[1])
    return seconds, job, len(job.return_value["tokens"])


def _p(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
