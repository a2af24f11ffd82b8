import subprocess
import sys

CODE = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
import config.urls, annotate.admin, annotate.lens, annotate.lens_views
import annotate.management.commands.lens, annotate.templatetags.lens_tags
from django.template.loader import get_template
get_template("annotate/lens_panel.html#marking")
heavy = sorted(m for m in ("torch", "transformers", "peft") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_the_web_process_never_imports_torch_for_the_lens():
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "none"
