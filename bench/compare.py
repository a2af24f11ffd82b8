"""Comparison benchmark: the results page at 100,000 votes, and vote submits under the load
benchmark's crowd (bench/load.py's databases, gunicorn server and HTTP clients).

    python -m bench compare [--db sqlite|postgres|both] [--votes 100000] [--overlap 5]
                            [--evaluators 20] [--seconds 30] [--warmup 5] [--think 1]
                            [--pairs 10000]

For each database: a throwaway copy (SQLite in a temporary directory; PostgreSQL
database critique_bench_compare) is migrated and loaded with a comparison of
votes/overlap pairs holding `votes` votes (random choices and side orders, every pair full),
and a second, empty comparison of --pairs pairs for the crowd. Printed:

- results: the reviewer's results page (GET /compare/N/results/, rendered in-process by
  Django's test client: the statistics, the 1,000-resample bootstrap, Bradley–Terry with
  its 1,000 refits, the template) and the rounds dashboard, best and median of 5;
- crowd: C simulated evaluators log in through the login form and loop: GET the pair page
  (which reserves a pair), think, POST a vote with the page's CSRF token, as a browser
  without JavaScript does. p50/p95/p99 of both steps, votes per second, errors, votes lost
  (submits the client saw succeed that are not stored) and pairs over their overlap.
"""

import argparse
import http.client
import json
import random
import re
import statistics
import subprocess
import sys
import time

from bench import load

PAIR_RE = re.compile(r'action="/compare/(\d+)/pairs/(\d+)/vote/"')
CHOICES = ["left", "right", "tie", "both_bad"]
BENCH_DB = "critique_bench_compare"


def seed(votes: int, overlap: int, pairs: int, evaluators: int) -> None:
    """Child process: two rounds, a full comparison of `votes` votes, an empty one of
    `pairs` pairs, the evaluator accounts and a staff user. Prints the comparison ids."""
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User

    from annotate import compare, models

    rng = random.Random(0)
    full_pairs = votes // overlap
    n = full_pairs + pairs
    round1 = models.Round.objects.create(number=1, base_model="bench-base")
    round2 = models.Round.objects.create(number=2, base_model="bench-base", adapter="/runs/b")
    prompts = models.Prompt.objects.bulk_create(
        (
            models.Prompt(source="bench", external_id=str(i), instruction=f"Question {i}?")
            for i in range(n)
        ),
        batch_size=5000,
    )
    for round in (round1, round2):
        models.Response.objects.bulk_create(
            (
                models.Response(prompt=p, round=round, text=f"Answer {i} of round {round.pk}.")
                for i, p in enumerate(prompts)
            ),
            batch_size=5000,
        )
    ids = [p.pk for p in prompts]
    full = models.Comparison.objects.create(
        system_a="round:1",
        system_b="round:2",
        sample_size=full_pairs,
        overlap=overlap,
        prompt_ids=ids[:full_pairs],
        state=models.Comparison.State.OPEN,
    )
    compare.refresh(full)
    crowd = models.Comparison.objects.create(
        system_a="round:1",
        system_b="round:2",
        sample_size=pairs,
        overlap=1,
        prompt_ids=ids[full_pairs:],
    )
    compare.refresh(crowd)
    password = make_password(load.PASSWORD)
    voters = User.objects.bulk_create(User(username=f"voter{i}") for i in range(overlap))
    users = User.objects.bulk_create(
        User(username=f"annotator{i}", password=password) for i in range(evaluators)
    )
    Group.objects.get(name="annotators").user_set.add(*users, *voters)
    User.objects.create_user("bench-staff", password=load.PASSWORD, is_staff=True)
    rows = []
    for pair_id in full.pairs.values_list("pk", flat=True).iterator():
        for voter in voters:
            # B somewhat better, and a slight lean to the left side, as people have.
            a_on_left = rng.random() < 0.5
            winner = rng.choices(["a", "b", "tie", "both_bad"], [0.35, 0.45, 0.15, 0.05])[0]
            if winner in ("a", "b") and rng.random() < 0.05:
                choice = "left"
            elif winner in ("a", "b"):
                choice = "left" if (winner == "a") == a_on_left else "right"
            else:
                choice = winner
            rows.append(
                models.Vote(pair_id=pair_id, evaluator=voter, choice=choice, a_on_left=a_on_left)
            )
    models.Vote.objects.bulk_create(rows, batch_size=5000)
    compare.recount(full.pairs.all())
    load._vacuum_analyze()
    print(json.dumps({"full": full.pk, "crowd": crowd.pk}))


def time_results(comparison: int) -> None:
    """Child process: time the results page and the dashboard in-process."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench-staff"))
    for name, url in (("results page", f"/compare/{comparison}/results/"), ("rounds", "/rounds/")):
        times = []
        for _ in range(5):
            started = time.perf_counter()
            answer = client.get(url, HTTP_HOST="127.0.0.1")
            times.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise SystemExit(f"{url} answered {answer.status_code}")
        print(
            f"   {name:13s} best {min(times) * 1000:7.1f} ms  median "
            f"{statistics.median(times) * 1000:7.1f} ms",
            flush=True,
        )


def verify(comparison: int) -> None:
    """Child process: submits from stdin -> lost and over-assigned counts."""
    import django

    django.setup()
    from django.db.models import Count, F

    from annotate import models

    submitted = json.load(sys.stdin)
    stored = set(
        models.Vote.objects.filter(pair__comparison_id=comparison)
        .values_list("evaluator__username", "pair_id")
        .iterator()
    )
    lost = sum((user, pk) not in stored for user, pk in submitted)
    pairs = models.ComparisonPair.objects.filter(comparison_id=comparison)
    counted = pairs.annotate(n=Count("votes"))
    over = counted.filter(n__gt=F("overlap")).count()
    drift = counted.exclude(n=F("vote_count")).count()
    print(json.dumps({"lost": lost, "over": over, "drift": drift, "stored": len(stored)}))


class Evaluator(load.Annotator):
    """One browser without JavaScript voting on pairs."""

    def request(self, method: str, path: str, form: dict | None = None):
        # gunicorn closes a keep-alive connection idle for 30 s (logging in 20 clients on a
        # busy machine can take that long); a browser opens a new one and sends again.
        try:
            return super().request(method, path, form)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()
            return super().request(method, path, form)

    page_name = "pair page"
    empty_text = "Nothing left to compare"

    def __init__(self, port: int, username: str, comparison: int) -> None:
        super().__init__(port, username)
        self.page_path = f"/compare/{comparison}/"

    def item_id(self, page: str) -> int | None:
        found = PAIR_RE.search(page)
        return int(found.group(2)) if found else None

    def submission(self, item: int, page: str, rng: random.Random) -> tuple[str, dict]:
        form = {
            "csrfmiddlewaretoken": load.TOKEN_RE.search(page).group(1),
            "choice": rng.choice(CHOICES),
            "reason": "",
            "seconds_spent": str(rng.randint(3, 60)),
        }
        return f"{self.page_path}pairs/{item}/vote/", form

    def submit_error(self, status: int, page: str) -> str:
        return f"POST vote answered {status}: {page[:100]}"


def _crowd(port: int, comparison: int, args) -> load.Results:
    return load._run_clients(
        port,
        args.evaluators,
        args.seconds,
        args.think,
        args.warmup,
        lambda port, username: Evaluator(port, username, comparison),
    )


def run_one(kind: str, args) -> bool:
    with load.Database(kind, BENCH_DB) as url:
        env = load._django_env(url)
        print(
            f"== {kind}: migrating and loading {args.votes:,} votes "
            f"({args.votes // args.overlap:,} pairs x {args.overlap}) ...",
            flush=True,
        )
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=load.ROOT,
            env=env,
            check=True,
        )
        ids = json.loads(
            load._python(
                f"import bench.compare as b; b.seed({args.votes}, {args.overlap}, "
                f"{args.pairs}, {args.evaluators})",
                env,
            )
            .strip()
            .splitlines()[-1]
        )
        # DEBUG off serves hashed static names from collectstatic's manifest.
        load._collectstatic(env)
        sys.stdout.write(
            load._python(f"import bench.compare as b; b.time_results({ids['full']})", env)
        )
        with load.Server(url, args.workers, args.threads) as server:
            print(
                f"   crowd: {args.evaluators} evaluators, {args.warmup:g} s warm-up, "
                f"{args.seconds:g} s measured, think {args.think:g} s",
                flush=True,
            )
            results = _crowd(server.port, ids["crowd"], args)
            elapsed = max(time.monotonic() - results.measure_from, 0.0)
        check = json.loads(
            subprocess.run(
                [sys.executable, "-c", f"import bench.compare as b; b.verify({ids['crowd']})"],
                cwd=load.ROOT,
                env=env,
                input=json.dumps(results.submitted),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    print(f"   pair page  {load._percentiles(results.task_ms)}")
    print(f"   vote       {load._percentiles(results.submit_ms)}")
    rate = results.measured_judgments / elapsed if elapsed else 0.0
    print(
        f"   {len(results.submitted):,} votes, {rate:.1f}/s; errors {len(results.errors)}, "
        f"lost {check['lost']}, over-assigned {check['over']}, vote_count drift {check['drift']}"
    )
    for error in sorted(set(results.errors))[:5]:
        print(f"   error: {error}")
    return not (results.errors or check["lost"] or check["over"] or check["drift"])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench compare", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--votes", type=int, default=100_000)
    parser.add_argument(
        "--overlap", type=int, default=5, help="votes per pair of the full comparison"
    )
    parser.add_argument(
        "--pairs", type=int, default=10_000, help="pairs of the crowd's comparison"
    )
    parser.add_argument("--evaluators", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=load.gunicorn_conf["workers"])
    parser.add_argument("--threads", type=int, default=load.gunicorn_conf["threads"])
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    failed = [kind for kind in kinds if not run_one(kind, args)]
    if failed:
        raise SystemExit(
            f"Comparison benchmark found errors, lost or over-assigned votes on {failed}."
        )


if __name__ == "__main__":
    main(sys.argv[1:])
