"""The web process never imports torch or transformers: a web worker stays small.

Model work runs on job workers (annotate/jobs.py). This loads what a web process loads
(bench.jobs.load_web_app: the WSGI app, the URLconf and every view it routes to, the admin,
the API, every module of annotate/ but the management commands) in a fresh interpreter,
and looks at sys.modules.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
import django
django.setup()
from bench.jobs import load_web_app
load_web_app()
heavy = sorted(m for m in ("torch", "transformers", "peft", "accelerate") if m in sys.modules)
print(json.dumps(heavy))
"""


def test_the_web_process_imports_no_torch_or_transformers():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "config.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
