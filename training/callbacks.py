"""Following and stopping a run: callbacks for callers in the same process, signals from outside.

In-process (a worker that runs training itself):

    callbacks = TrainCallbacks(on_step=store_point, should_stop=lambda: cancelled.is_set())
    result = trainer.train(config, callbacks=callbacks)
    if result.stopped_on_request: ...  # a checkpoint was saved; resume_from="latest" continues

From outside (a supervisor that runs `python -m training train` as a child): send SIGTERM or
SIGINT. The child finishes the optimizer step it is in, saves a checkpoint, appends
`{"event": "stopped", "reason": "signal", "step": N}` to metrics.jsonl and exits with
STOPPED_EXIT_CODE. `--resume latest` continues from that checkpoint. A second signal of the
same kind is not graceful: it does what the signal did before (SIGINT raises
KeyboardInterrupt, SIGTERM ends the process), for a person who does not want to wait.
"""

import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass

# EX_TEMPFAIL in sysexits.h: "try again later". The run stopped cleanly and can be resumed;
# a supervisor tells it apart from success (0), bad input (2) and a crash (1 or a signal).
STOPPED_EXIT_CODE = 75


@dataclass
class TrainCallbacks:
    # Called on the main process with each optimizer step's metrics (the dict that is also
    # written to metrics.jsonl) right after the step.
    on_step: Callable[[dict], object] | None = None
    # Asked after every optimizer step. True (or a short reason string, such as "signal")
    # stops the run: checkpoint, "stopped" event, TrainResult.stopped_on_request. Under
    # several processes a stop asked on any of them stops all of them at the same step.
    should_stop: Callable[[], bool | str] | None = None
    # Called on the main process with the event lines of metrics.jsonl ("plan", "stopped").
    on_event: Callable[[dict], object] | None = None


class StopSignals:
    """A context manager that turns SIGTERM / SIGINT into a stop request (should_stop).

    Handlers can only be installed from the main thread; elsewhere this does nothing and
    the signals keep their usual effect.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)):
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for number in self.signals:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()

    def _handle(self, number: int, frame) -> None:
        if self.received == number:
            # Asked twice: stop waiting for the step to finish.
            signal.signal(number, self._previous.get(number, signal.SIG_DFL))
            os.kill(os.getpid(), number)
            return
        if self.received is None:
            self.received = number

    def should_stop(self) -> bool | str:
        return "signal" if self.received is not None else False
