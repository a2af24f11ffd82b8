"""`python -m bench [data|load|training|jobs|lens|lens-page|all] [-- args]`: benchmarks.

data      import/export/admin changelist at 100,000 rows, SQLite and PostgreSQL
load      gunicorn + simulated annotators, SQLite and PostgreSQL
training  `python -m training bench` with a CPU-sized shape
jobs      enqueue -> running with an idle worker; a web process's memory (no torch)
lens      critique lens preview latency and bulk throughput, embedded model on the CPU
lens-page the lens preview through the page and a real lens worker (not in "all")
"""

import subprocess
import sys


def main(argv: list[str]) -> None:
    which = argv[0] if argv and not argv[0].startswith("-") else "all"
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    if which == "lens-page":
        from bench import lens_page

        return lens_page.main(rest)
    if which not in ("data", "load", "training", "jobs", "lens", "all"):
        raise SystemExit(
            f"Unknown benchmark {which!r}: choose data, load, training, jobs, lens, lens-page "
            "or all."
        )
    if which in ("data", "all"):
        from bench import data_io

        data_io.main(rest)
    if which in ("load", "all"):
        from bench import load

        load.main(rest)
    if which in ("jobs", "all"):
        from bench import jobs

        jobs.main(rest)
    if which in ("training", "all"):
        # A subprocess keeps torch out of this process and its memory figures clean.
        args = rest or ["--preset", "tiny", "--device", "cpu"]
        subprocess.run([sys.executable, "-m", "training", "bench", *args], check=True)
    if which in ("lens", "all"):
        # Its own process too: it loads torch and a model.
        lens_args = rest if which == "lens" else []
        subprocess.run([sys.executable, "-m", "bench.lens", *lens_args], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
