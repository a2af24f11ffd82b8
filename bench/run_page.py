"""`python -m bench run-page`: what a training run's page costs as its series grows.

A run with N recorded steps (default 2,000, about what annotate.series keeps of a long
run; an evaluation every 50 steps) on a fresh, migrated SQLite file; through Django's test
client, the mean time and size of: the whole page (five charts with their tables), the
htmx status poll it repeats every 2 s while the run trains, the series endpoint the page's
script polls (the last 10 steps, and everything), and the Training list. Nothing is
asserted; the figures move with the machine.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench run-page")
    parser.add_argument("--steps", type=int, default=2000, help="Recorded steps of the run.")
    parser.add_argument("--repeat", type=int, default=10, help="Requests per measurement.")
    args = parser.parse_args(argv)
    # A child process: its own settings and database, whatever the caller has configured.
    with tempfile.TemporaryDirectory(prefix="critique-run-page-") as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            # As runserver serves it: static files without a collectstatic manifest.
            "DEBUG": "true",
        }
        command = [sys.executable, "-m", "bench.run_page", str(args.steps), str(args.repeat)]
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr)
    print(result.stdout, end="")


def measure(steps: int, repeat: int) -> None:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from annotate import models

    call_command("migrate", verbosity=0)
    staff = User.objects.create_user("bench", is_staff=True)
    series = [step_record(i + 1, evaluate=(i + 1) % 50 == 0) for i in range(steps)]
    run = models.TrainingRun.objects.create(
        status="running", total_steps=2 * steps, series=series, config={"collapse_margin": 0.3}
    )
    client = Client()
    client.force_login(staff)
    page = run.get_absolute_url()
    print(f"run page with {steps} recorded steps (mean of {repeat} requests):")
    for label, url, headers in [
        ("whole page", page, {}),
        ("status poll (htmx)", page, {"HX-Request": "true"}),
        ("series, last 10 steps", f"/training/{run.pk}/series/?after={steps - 10}", {}),
        ("series, everything", f"/training/{run.pk}/series/", {}),
        ("training list", "/training/", {}),
    ]:
        response = client.get(url, headers=headers)  # warm
        start = time.perf_counter()
        for _ in range(repeat):
            response = client.get(url, headers=headers)
        ms = (time.perf_counter() - start) / repeat * 1000
        assert response.status_code == 200, (url, response.status_code)
        print(f"  {label}: {ms:.1f} ms, {len(response.content) / 1024:.0f} KiB")


def step_record(step: int, *, evaluate: bool) -> dict:
    record = {
        "step": step,
        "loss": 2.0 / step,
        "l_mle": 1.5 / step,
        "l_ul": 0.5 / step,
        "flagged": 0.1,
        "lr": 4e-4,
        "tokens": 1000,
        "tokens_per_s": 5000.0,
        "seconds": 0.2,
    }
    if evaluate:
        record["eval"] = {"approved_delta": -0.01, "criticised_delta": -0.2, "gain": 0.19}
    return record


if __name__ == "__main__":
    measure(int(sys.argv[1]), int(sys.argv[2]))
