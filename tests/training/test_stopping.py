"""Stopping a run gracefully (callbacks in-process, SIGTERM / SIGINT to the command) and
resuming it to the same weights; the plan and stopped events of metrics.jsonl."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.conftest import make_model, make_tokenizer
from tests.training.test_trainer import lora_weights, small_config
from training import trainer
from training.callbacks import STOPPED_EXIT_CODE, StopSignals, TrainCallbacks

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]


def run(config, callbacks=None):
    tokenizer = make_tokenizer()
    model = make_model(tokenizer)
    result = trainer.train(
        config,
        progress=False,
        log=lambda _: None,
        model=model,
        tokenizer=tokenizer,
        callbacks=callbacks,
    )
    return result, model


def lines_of(output_dir) -> list[dict]:
    return list(trainer.iter_metrics_lines(output_dir))


# --- in-process ----------------------------------------------------------------------------


def test_should_stop_checkpoints_and_a_resumed_run_ends_with_the_same_weights(
    triples_file, tmp_path
):
    settings = {"num_epochs": 2, "max_steps": 5, "lora_dropout": 0.3}
    _, straight = run(small_config(triples_file, tmp_path / "straight", **settings))
    seen = []
    callbacks = TrainCallbacks(on_step=seen.append, should_stop=lambda: len(seen) >= 2)

    stopped, _ = run(small_config(triples_file, tmp_path / "resumed", **settings), callbacks)

    assert stopped.stopped_on_request and not stopped.stopped_early
    assert "Stopped at step 2 of 5" in stopped.stop_reason
    assert stopped.metrics["steps"] == 2
    assert [record["step"] for record in seen] == [1, 2]
    out = tmp_path / "resumed"
    assert (out / "checkpoints" / "step-0000002" / trainer.STATE_FILENAME).is_file()
    assert not (out / "adapter_model.safetensors").exists()  # not finished: no final adapter
    assert lines_of(out)[-1] == {"event": "stopped", "reason": "request", "step": 2}

    result, resumed = run(
        small_config(triples_file, out, resume_from="latest", **settings),
        TrainCallbacks(should_stop=lambda: False),
    )

    assert not result.stopped_on_request and result.metrics["steps"] == 5
    expected = lora_weights(straight)
    for name, weight in lora_weights(resumed).items():
        assert torch.equal(weight, expected[name]), name
    assert [line["step"] for line in trainer.iter_metrics(out)] == [1, 2, 3, 4, 5]
    events = [line["event"] for line in lines_of(out) if "event" in line]
    assert events == ["plan", "stopped", "plan"]


def test_the_first_line_is_the_plan_and_readers_skip_events(triples_file, tmp_path):
    planned = []
    config = small_config(triples_file, tmp_path / "out", max_steps=2)

    run(config, TrainCallbacks(on_event=planned.append))

    first = lines_of(tmp_path / "out")[0]
    assert first["event"] == "plan"
    assert first["steps"] == 2 and first["records"] == 12
    assert first["align_p"] == 8 and first["align_n"] == 4  # downsample=-1 keeps all
    assert first["tokens"] > 0 and first["start_step"] == 0
    assert planned == [first]
    assert [line["step"] for line in trainer.iter_metrics(tmp_path / "out")] == [1, 2]


def test_a_stop_asked_before_the_first_step_saves_step_zero_and_resumes(triples_file, tmp_path):
    settings = {"max_steps": 3, "lora_dropout": 0.0}
    _, straight = run(small_config(triples_file, tmp_path / "straight", **settings))

    stopped, _ = run(
        small_config(triples_file, tmp_path / "out", **settings),
        TrainCallbacks(should_stop=lambda: True),
    )
    result, resumed = run(
        small_config(triples_file, tmp_path / "out", resume_from="latest", **settings)
    )

    assert stopped.stopped_on_request and stopped.metrics["steps"] == 0
    assert result.metrics["steps"] == 3
    expected = lora_weights(straight)
    for name, weight in lora_weights(resumed).items():
        assert torch.equal(weight, expected[name]), name


def test_a_stop_asked_after_the_last_step_is_a_normal_finish(triples_file, tmp_path):
    seen = []
    callbacks = TrainCallbacks(on_step=seen.append, should_stop=lambda: bool(seen))

    result, _ = run(small_config(triples_file, tmp_path / "out", max_steps=1), callbacks)

    assert not result.stopped_on_request and result.metrics["steps"] == 1
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


def test_a_second_signal_of_the_same_kind_is_not_graceful():
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGINT)
        assert signals.should_stop() == "signal"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs between bytecodes; this gives it the chance
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- the command, stopped by a signal ------------------------------------------------------


def command(triples_file, model_dir, output, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "training",
        "train",
        f"--data={triples_file}",
        f"--base-model={model_dir}",
        f"--output={output}",
        "--no-progress",
        "--micro_batch_size=2",
        "--gradient_accumulation_steps=2",
        "--warmup_steps=0",
        "--learning_rate=0.01",
        "--downsample=-1",
        "--checkpoint_every=0",
        "--eval_every=0",
        "--lora_dropout=0.3",  # the dropout stream has to continue across the stop too
        "--num_epochs=20",  # 60 steps: long enough to be signalled in the middle
        *extra,
    ]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_run_stops_with_status_75_and_resumes_to_the_same_adapter(
    triples_file, model_dir, tmp_path, signal_number
):
    out = tmp_path / "signalled"
    child = subprocess.Popen(
        command(triples_file, model_dir, out),
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = out / trainer.METRICS_FILENAME
    deadline = time.monotonic() + 120
    while not (metrics.exists() and '"step": 1' in metrics.read_text()):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the run never took a step"
        time.sleep(0.05)
    child.send_signal(signal_number)
    stdout, stderr = child.communicate(timeout=120)

    assert child.returncode == STOPPED_EXIT_CODE, stderr[-2000:]
    stopped = lines_of(out)[-1]
    assert stopped["event"] == "stopped" and stopped["reason"] == "signal"
    assert 1 <= stopped["step"] < 60
    assert f"Stopped at step {stopped['step']} of 60" in stdout
    assert (out / "checkpoints" / f"step-{stopped['step']:07d}").is_dir()

    resumed = subprocess.run(
        command(triples_file, model_dir, out, "--resume=latest"),
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
    )
    straight = subprocess.run(
        command(triples_file, model_dir, tmp_path / "straight"),
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
    )

    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert [line["step"] for line in trainer.iter_metrics(out)] == list(range(1, 61))
    ours = load_file(out / "adapter_model.safetensors")
    theirs = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    assert ours.keys() == theirs.keys()
    for name, weight in theirs.items():
        assert torch.allclose(ours[name], weight, atol=1e-6), name
    assert json.loads((out / "run.json").read_text())["metrics"]["steps"] == 60


class TwoProcesses:
    """What _stop_requested sees of accelerate on rank 0 when rank 1 answered `theirs`."""

    num_processes = 2
    device = torch.device("cpu")

    def __init__(self, theirs: int):
        self.theirs = theirs

    def gather(self, tensor):
        return torch.cat([tensor, torch.tensor([self.theirs])])


@pytest.mark.parametrize(
    ("mine", "theirs", "agreed"),
    [
        (False, 0, ""),  # nobody asked
        (False, 2, "signal"),  # the other process got the signal: stop here too
        (False, 1, "request"),
        ("signal", 0, "signal"),
        (True, 2, "signal"),
    ],
)
def test_all_processes_agree_to_stop_at_the_same_step(mine, theirs, agreed):
    callbacks = TrainCallbacks(should_stop=lambda: mine)

    assert trainer._stop_requested(callbacks, TwoProcesses(theirs)) == agreed


def test_stop_signals_do_nothing_outside_the_main_thread():
    import threading

    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def install():
        with StopSignals() as signals:
            seen.append(signal.getsignal(signal.SIGTERM))
            seen.append(signals.should_stop())

    worker = threading.Thread(target=install)
    worker.start()
    worker.join()

    assert seen == [before, False]
    assert signal.getsignal(signal.SIGTERM) == before
