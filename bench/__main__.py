"""`python -m bench [NAME] [-- args]`: the project's benchmarks.

data       import/export/admin changelist at 100,000 rows, SQLite and PostgreSQL
load       gunicorn + simulated annotators, SQLite and PostgreSQL
stats      the queue's claim after a bulk import, with and without ANALYZE (PostgreSQL)
jobs       enqueue -> running with an idle worker; a web process's memory (no torch)
run-page   a training run's page, its status poll and series endpoint at 2,000 steps
compare    the results page at 100,000 votes; vote submit latency under the crowd
training   `python -m training bench` with a CPU-sized shape
lens       critique lens preview latency and bulk throughput, embedded model on the CPU
lens-page  the lens preview through the page and a real lens worker (not in "all": it
           loads the embedded model in a worker as well)
"""

import importlib
import subprocess
import sys

# Benchmarks that run in this process, by name, in the order "all" runs them.
IN_PROCESS = {
    "data": "bench.data_io",
    "load": "bench.load",
    "stats": "bench.planner_stats",
    "jobs": "bench.jobs",
    "run-page": "bench.run_page",
    "compare": "bench.compare",
}
# Benchmarks that load torch run in a subprocess: it keeps this process's memory clean.
SUBPROCESS = {"training": ["training", "bench"], "lens": ["bench.lens"]}
NOT_IN_ALL = {"lens-page": "bench.lens_page"}


def main(argv: list[str]) -> None:
    which = argv[0] if argv and not argv[0].startswith("-") else "all"
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    names = [*IN_PROCESS, *SUBPROCESS, *NOT_IN_ALL]
    if which not in (*names, "all"):
        raise SystemExit(f"Unknown benchmark {which!r}: choose {', '.join(names)} or all.")
    if which in NOT_IN_ALL:
        return importlib.import_module(NOT_IN_ALL[which]).main(rest)
    for name, module in IN_PROCESS.items():
        if which in (name, "all"):
            importlib.import_module(module).main(rest if which == name else [])
    for name, command in SUBPROCESS.items():
        if which in (name, "all"):
            args = rest if which == name else []
            if name == "training" and not args:
                args = ["--preset", "tiny", "--device", "cpu"]
            subprocess.run([sys.executable, "-m", *command, *args], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
