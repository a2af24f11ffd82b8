"""Many users at once, each in its own thread on its own database connection."""

import threading

from django.db import connection


def run_at_once(people, work) -> tuple[list, list[BaseException]]:
    """Run work(person, submitted) in one thread per person, all starting together.

    Each thread appends what it submitted to its list; returns everything submitted and
    the exceptions the threads raised. Each thread closes its own database connection."""
    barrier = threading.Barrier(len(people))
    submitted: list = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def target(person):
        mine: list = []
        try:
            barrier.wait()
            work(person, mine)
        except BaseException as exc:  # returned; the test asserts there are none
            with lock:
                errors.append(exc)
        finally:
            with lock:
                submitted.extend(mine)
            connection.close()

    threads = [threading.Thread(target=target, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return submitted, errors
