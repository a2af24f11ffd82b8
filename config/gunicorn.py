"""gunicorn's settings for serving Critique Loop: `gunicorn -c config/gunicorn.py config.wsgi`.

WEB_BIND     default 127.0.0.1:8000 (put a proxy that serves TLS in front)
WEB_WORKERS  default 2 per CPU
WEB_THREADS  default 2 per worker

Processes rather than threads: a request holds Python's GIL for most of its time, so threads
of one worker mostly wait for each other. On the 2-core development machine, 4 workers x 2
threads gave a p95 of 24-26 ms for the task page at 20 annotators where 2 x 4 gave 28-38 ms
(`python -m bench load --workers W --threads T`, README "Benchmarks").
"""

import os

bind = os.environ.get("WEB_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", 2 * (os.cpu_count() or 1)))
threads = int(os.environ.get("WEB_THREADS", 2))
# Browsers keep the connection between the task page and the submit.
keepalive = 30
# Static files come from WhiteNoise in the app; gunicorn logs only problems by default.
loglevel = os.environ.get("LOG_LEVEL", "warning").lower()
