"""Run a job's work as a child process and watch it: log tail, progress, cancel, signals.

Training and generation run in a child process of the worker (`python -m training train`,
`manage.py generate_responses --job N`), not in the worker itself, so a crash or an
out-of-memory error fails the job with its last log lines instead of killing the worker,
and the GPU memory is given back when the child exits.

A child never outlives its worker: it is started through a small shim that asks Linux to
send it SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG, kept across exec), so even
`kill -9` of the worker ends the training it supervised (training checkpoints on SIGTERM).
The child runs in its own process group, so a stop reaches every process of an
`accelerate launch` at once; the worker forwards its own SIGTERM/SIGINT to it
(stop_children, called from the worker command's signal handler).
"""

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

# Exit status of `python -m training train` after a graceful stop (checkpoint saved).
STOPPED_EXIT = 75
LOG_LINES = 40
# After asking a child to stop, how long it may take to checkpoint before SIGKILL, when
# the worker itself must go (a second Ctrl+C, an error in the supervising loop).
KILL_GRACE_SECONDS = 30

# Set PR_SET_PDEATHSIG (1) to SIGTERM, then exec the real command. If the worker already
# died before prctl took effect, the parent is no longer the worker: stop at once.
_SHIM = (
    "import ctypes, os, signal, sys\n"
    "prctl = getattr(ctypes.CDLL(None, use_errno=True), 'prctl', None)\n"
    "if prctl is not None:\n"
    "    prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(75)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)

_children: set[subprocess.Popen] = set()
_shutting_down = threading.Event()


def stop_children(signum: int = signal.SIGTERM) -> None:
    """The worker is stopping: ask every supervised child to stop (checkpoint and exit).

    Safe to call from a signal handler: it only sends signals and sets a flag.
    """
    _shutting_down.set()
    for child in list(_children):
        _signal_group(child, signal.SIGTERM)


def shutting_down() -> bool:
    return _shutting_down.is_set()


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signum)


@dataclass
class Outcome:
    returncode: int
    stop: str  # "" ran to its end; "cancel", "shutdown" or "lost" when we asked it to stop
    log: list[str]

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log[-lines:])


def supervise(
    command: list[str],
    tick: Callable[[str], str],
    *,
    cwd: str | Path | None = None,
    env: dict | None = None,
) -> Outcome:
    """Run `command`, calling tick(log_tail) every JOB_FLUSH_SECONDS and once at the end.

    tick writes progress and the heartbeat and returns "" to go on, or why to stop the child
    ("cancel", "lost"); the child then gets SIGTERM (training checkpoints and exits 75).
    """
    child = subprocess.Popen(
        [sys.executable, "-c", _SHIM, str(os.getpid()), *command],
        cwd=cwd or settings.BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    _children.add(child)
    log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
    reader = threading.Thread(target=_read_lines, args=(child, log), daemon=True)
    reader.start()
    stop = "shutdown" if shutting_down() else ""
    if stop:
        _signal_group(child, signal.SIGTERM)
    every = settings.JOB_FLUSH_SECONDS
    try:
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=every)
            done = child.poll() is not None
            if done:
                reader.join(timeout=5)
            wanted = tick("\n".join(log))
            if not stop and shutting_down():
                stop = "shutdown"
                _signal_group(child, signal.SIGTERM)  # already sent by stop_children
            if not stop and wanted:
                stop = wanted
                _signal_group(child, signal.SIGTERM)
            if done:
                return Outcome(child.returncode, stop, list(log))
    finally:
        if child.poll() is None:  # the worker is going down, or this loop failed
            _signal_group(child, signal.SIGTERM)
            try:
                child.wait(timeout=KILL_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait()
        _children.discard(child)


def _read_lines(child: subprocess.Popen, log: collections.deque) -> None:
    for line in child.stdout:
        line = line.rstrip("\n").rsplit("\r", 1)[-1]  # a progress bar's last state
        if line.strip():
            log.append(line[:2000])
    child.stdout.close()
