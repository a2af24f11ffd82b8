"""`python -m bench [data|load|training|all] [-- args]`: the project's benchmarks.

data      import/export/admin changelist at 100,000 rows, SQLite and PostgreSQL
load      gunicorn + simulated annotators, SQLite and PostgreSQL
stats     the queue's claim after a bulk import, with and without ANALYZE (PostgreSQL)
training  `python -m training bench` with a CPU-sized shape
"""

import subprocess
import sys


def main(argv: list[str]) -> None:
    which = argv[0] if argv and not argv[0].startswith("-") else "all"
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    if which not in ("data", "load", "stats", "training", "all"):
        raise SystemExit(
            f"Unknown benchmark {which!r}: choose data, load, stats, training or all."
        )
    if which in ("data", "all"):
        from bench import data_io

        data_io.main(rest)
    if which in ("load", "all"):
        from bench import load

        load.main(rest)
    if which in ("stats", "all"):
        from bench import planner_stats

        planner_stats.main(rest)
    if which in ("training", "all"):
        # A subprocess keeps torch out of this process and its memory figures clean.
        args = rest or ["--preset", "tiny", "--device", "cpu"]
        subprocess.run([sys.executable, "-m", "training", "bench", *args], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
