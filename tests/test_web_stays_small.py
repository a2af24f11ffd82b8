"""The web process never imports torch or transformers: a web worker stays small.

Model work runs on job workers (annotate/jobs.py). This loads what a web process loads
(the WSGI app, the URLconf and every view it routes to, the admin, the API) plus every
module of annotate/ but the management commands, in a fresh interpreter, and looks at
sys.modules.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import importlib, json, pkgutil, sys
import django
django.setup()
from django.urls import get_resolver, URLPattern, URLResolver
import config.wsgi, config.urls
from django.contrib import admin

def walk(patterns):
    for p in patterns:
        if isinstance(p, URLResolver):
            walk(p.url_patterns)
        elif isinstance(p, URLPattern):
            importlib.import_module(p.callback.__module__)

walk(get_resolver().url_patterns)
admin.site.get_urls()
import annotate
for info in pkgutil.walk_packages(annotate.__path__, "annotate."):
    if ".management" not in info.name and ".migrations" not in info.name:
        importlib.import_module(info.name)
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
