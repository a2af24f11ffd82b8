"""The New run page's dry-run preview, computed in a job on a worker.

Why a job and not the web process: counting tokens needs the base model's tokenizer, and
the numbers must be the ones the trainer will see (training.data.plan with the chat
template applied). Measured on the development machine (peak RSS of a bare interpreter):
`import tokenizers` alone adds 9 MiB (8 -> 17 MiB), but it cannot apply a chat template
or the prompt cut-off the trainer applies; transformers' AutoTokenizer pulls in torch and
takes the process to 306 MiB, which the web process must never import (a test checks
sys.modules). The base model directory is also where the worker runs (a GPU box), not
necessarily on the web server. So the page enqueues this task on the `gpu` queue, ahead of
any queued training (PRIORITY), and polls its result; the estimate of the duration, which
needs only rows, is added on the web side (training_runs.estimate_seconds).
"""

import dataclasses
import socket
import tempfile
from pathlib import Path

from django_tasks import task

from annotate import exports, training_runs

# Ahead of training runs (priority 0) waiting on the same queue: a preview takes seconds.
PRIORITY = 50


@task(queue_name="gpu", priority=PRIORITY)
def preview_run(filters: dict, base_model: str, overrides: dict) -> dict:
    """The plan of a run with these filters, base model and overrides, or {"error": ...}.

    Returns JSON: the counts of training.data.Plan, the resolved base model and the host.
    """
    # Heavy imports here, in the worker only: importing this module stays light.
    from training import data as training_data
    from training import models as training_models
    from training.config import CUTConfig, apply_overrides

    host = socket.gethostname()
    try:
        base = training_models.check_base_model(base_model or None)
        config = apply_overrides(CUTConfig(), overrides)
        with tempfile.TemporaryDirectory() as scratch:
            snapshot = Path(scratch) / "judgments.jsonl"
            with snapshot.open("w", encoding="utf-8") as f:
                exports.write_jsonl(training_runs.selection(filters), f)
            tokenizer = training_models.load_tokenizer(base_model or None)
            plan = training_data.plan(dataclasses.replace(config, data=str(snapshot)), tokenizer)
    except ValueError as error:
        return {"error": f"{error} (on {host})", "host": host}
    fields = dataclasses.asdict(plan)
    fields.pop("data")  # a scratch file that is gone by now
    return {**fields, "base_model": base, "host": host}
