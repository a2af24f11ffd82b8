"""The CUT training loop: LoRA on a stock causal LM, a plain readable loop (no HF Trainer).

One optimizer step = `gradient_accumulation_steps` micro-batches. The rooms around it:

    cut_step.py     one micro-batch: Align views, then Misalign views, forward and backward
    logprobs.py     log p of response tokens only, LM head in chunks (shared with the lens)
    loss.py         the CUT loss and the λ test
    evaluation.py   the holdout against the base model, and the collapse guard
    checkpoints.py  resumable checkpoints, the saved adapter and run.json
    metrics.py      metrics.jsonl (step lines and the plan / stopped events)
    callbacks.py    on_step / should_stop, and SIGTERM / SIGINT as a stop request

A stop request (callbacks or a signal) ends the run after the optimizer step in progress
with a checkpoint; resume_from="latest" continues it to the same weights.

Several GPUs (data parallel) through accelerate; the same command runs single-process on a
CPU or one GPU:

    accelerate launch -m training train --data triples.jsonl --base-model DIR --output OUT
    torchrun --nproc-per-node 4 -m training train --data triples.jsonl --base-model DIR ...

Each process takes every world_size-th micro-batch; gradients are averaged once per
optimizer step. The effective batch is micro_batch_size x gradient_accumulation_steps x
processes records.
"""

import contextlib
import copy
import json
import math
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from training import checkpoints, evaluation, metrics
from training import data as data_module
from training.callbacks import TrainCallbacks
from training.checkpoints import CHECKPOINT_DIR, RUN_FILENAME, STATE_FILENAME, Progress
from training.config import CUTConfig
from training.cut_step import cut_micro_step
from training.logprobs import ResponseScorer, autocast_for, compute_dtype
from training.metrics import METRICS_FILENAME, iter_metrics, iter_metrics_lines

# Imported by callers of the trainer (train_cut, job runners, tests) from here.
__all__ = [
    "CHECKPOINT_DIR",
    "METRICS_FILENAME",
    "RUN_FILENAME",
    "STATE_FILENAME",
    "TrainCallbacks",
    "TrainResult",
    "iter_metrics",
    "iter_metrics_lines",
    "train",
]


@dataclass
class TrainResult:
    output_dir: str
    metrics: dict  # final loss, l_mle, l_ul, flagged, validation, loss_curve, steps, ...
    stopped_early: bool = False  # the collapse guard stopped it (the adapter was saved)
    stop_reason: str = ""  # why it stopped early or on request, in a sentence
    # Stopped by TrainCallbacks.should_stop or a signal: a checkpoint was saved and no final
    # adapter; resume_from="latest" continues the run.
    stopped_on_request: bool = False


def attach_lora(model: nn.Module, config: CUTConfig) -> nn.Module:
    """Wrap a stock causal LM with a fresh LoRA adapter (CUT.md §5); base weights frozen."""
    from peft import LoraConfig, get_peft_model

    targets = set(config.lora_target_modules)
    found = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = sorted(targets - found)
    if missing:
        raise ValueError(
            f"lora_target_modules names {', '.join(missing)}, which this model does not have. "
            "Pick module names of the model (e.g. gate_proj,up_proj,down_proj for Llama)."
        )
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=sorted(targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(config.seed)  # LoRA A matrices are initialised from the global RNG
    return get_peft_model(model, lora)


def lr_lambda(config: CUTConfig, total_steps: int) -> Callable[[int], float]:
    """Linear warm-up from 0, then cosine / linear decay to 0 or constant (as transformers)."""
    warmup = config.warmup_steps

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total_steps - warmup)
        if config.lr_scheduler == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        if config.lr_scheduler == "linear":
            return max(0.0, 1.0 - progress)
        return 1.0

    return factor


def make_optimizer(model: nn.Module, config: CUTConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        params,
        lr=config.learning_rate,
        betas=(config.adam_beta1, config.adam_beta2),
        eps=config.adam_epsilon,
        weight_decay=config.weight_decay,
    )


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated, or the process's peak resident memory on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _epoch_plan(
    lengths: list[int], config: CUTConfig, epoch: int, rank: int, world: int
) -> list[list[list[int]]]:
    """This process's optimizer steps of one epoch: lists of micro-batches of record indices."""
    batches = data_module.micro_batches(
        lengths,
        config.micro_batch_size,
        seed=config.seed,
        epoch=epoch,
        group_by_length=config.group_by_length,
    )
    per_process = math.ceil(len(batches) / world)
    # Every process needs the same number of micro-batches; wrap around to fill the last.
    padded = [batches[i % len(batches)] for i in range(per_process * world)]
    mine = padded[rank::world]
    k = config.gradient_accumulation_steps
    return [mine[i : i + k] for i in range(0, len(mine), k)]


def _remaining_steps(
    lengths: list[int], config: CUTConfig, state: Progress, total: int, rank: int, world: int
) -> Iterator[list[list[int]]]:
    """Yield the micro-batches of each optimizer step still to do, epoch after epoch.

    state.epoch and state.next_chunk always say where the next step starts, so a checkpoint
    written after a step resumes with the step that follows it.
    """
    while state.step < total:
        steps = _epoch_plan(lengths, config, state.epoch, rank, world)
        while state.next_chunk < len(steps) and state.step < total:
            state.next_chunk += 1
            yield steps[state.next_chunk - 1]
        if state.next_chunk >= len(steps):
            state.epoch += 1
            state.next_chunk = 0


def train(
    config: CUTConfig,
    *,
    progress: bool = True,
    log: Callable[[str], object] = print,
    model: nn.Module | None = None,
    tokenizer=None,
    callbacks: TrainCallbacks | None = None,
) -> TrainResult:
    """Train a LoRA adapter with CUT and save it in config.output_dir.

    model/tokenizer: an already built causal LM and its tokenizer (tests pass a tiny one);
    by default config.base_model is loaded with training.models. The model gets LoRA
    layers injected in place. callbacks: follow the steps and stop the run on request
    (training.callbacks); a stopped run saves a checkpoint, not the adapter, and returns
    with stopped_on_request.
    """
    callbacks = callbacks or TrainCallbacks()
    from accelerate import Accelerator

    config.validate()
    # Read and check the data before anything heavy loads: a bad file fails in a second.
    data_module.prepare(config)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    device = accelerator.device
    dtype = compute_dtype(config, device)
    main = accelerator.is_main_process
    say = log if main else (lambda _: None)
    if device.type != "cuda":
        precision = "bfloat16" if dtype == torch.bfloat16 else "float32"
        say(f"No GPU: training on the CPU in {precision}. This works, but it is slow.")
    if model is None:
        from training import models

        model, tokenizer = models.load_model_and_tokenizer(
            config.base_model,
            dtype=torch.bfloat16 if dtype == torch.bfloat16 and device.type == "cuda" else None,
            log=say,
        )
    elif tokenizer is None:
        raise ValueError("Pass the tokenizer together with the model.")
    prepared = data_module.prepare(config, tokenizer, world_size=accelerator.num_processes)
    plan = prepared.plan
    for line in plan.lines():
        say(line)
    config = _with_resolved_template(config, plan.template)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    examples = prepared.train_examples
    holdout = [
        data_module.encode(t, tokenizer, plan.template, config.cutoff_len)
        for t in prepared.holdout
    ]

    model.config.use_cache = False
    peft_model = attach_lora(model, config)
    if config.gradient_checkpointing:
        peft_model.get_base_model().gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    scorer = ResponseScorer(peft_model, chunk_size=config.logprob_chunk_size, dtype=dtype)
    scorer = accelerator.prepare_model(scorer)
    plain_scorer = accelerator.unwrap_model(scorer)
    optimizer = make_optimizer(peft_model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config, plan.steps))
    autocast = autocast_for(device, dtype)
    output_dir = Path(config.output_dir)
    data_sha256 = data_module.file_sha256(config.data)

    state = Progress()
    checkpoint = checkpoints.find_checkpoint(output_dir, config.resume_from)
    if checkpoint is not None:
        state = checkpoints.resume(
            checkpoint,
            peft_model,
            optimizer,
            scheduler,
            data_sha256,
            device,
            accelerator.process_index,
        )
        say(f"Resumed from {checkpoint} at step {state.step}.")

    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
        metrics_file = metrics.open_metrics(output_dir, state.step)

    def event(record: dict) -> None:
        if main:
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
            if callbacks.on_event is not None:
                callbacks.on_event(record)

    event(metrics.plan_event(plan, state.step))

    eval_options = {
        "threshold": config.threshold,
        "batch_size": max(2 * config.micro_batch_size, 8),
        "device": device,
        "autocast": autocast,
    }
    base_eval = None
    if holdout:
        say(f"Scoring the {len(holdout)} holdout records with the base model.")
        plain_scorer.eval()
        with peft_model.disable_adapter():
            base_eval = evaluation.score_holdout(plain_scorer, holdout, **eval_options)
        say(
            f"Base model on the holdout: approved {evaluation.fmt(base_eval['approved_logp'])}, "
            f"criticised {evaluation.fmt(base_eval['criticised_logp'])} nats per token."
        )
        if state.best is None:
            state.best = {"step": 0, "gain": 0.0, "state": checkpoints.lora_state(peft_model)}

    def evaluate() -> dict:
        plain_scorer.eval()
        numbers = evaluation.compare_to_base(
            evaluation.score_holdout(plain_scorer, holdout, **eval_options), base_eval
        )
        plain_scorer.train()
        return numbers

    lengths = [e.tokens for e in examples]
    rank, world = accelerator.process_index, accelerator.num_processes
    bar = None
    if progress and main:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.steps, initial=state.step, desc="CUT", unit="step")
    stop_reason = ""
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    plain_scorer.train()

    def sync(should: bool):
        return contextlib.nullcontext() if should else accelerator.no_sync(scorer)

    def checkpoint_now() -> None:
        rng = checkpoints.gather_rng_states(accelerator)  # every process's dropout stream
        if main:
            checkpoints.save_checkpoint(
                output_dir, config, peft_model, optimizer, scheduler, state, rng, data_sha256
            )
        accelerator.wait_for_everyone()

    # Asked before the first step too, so a run cancelled while its model loaded stops now.
    stop_request = _stop_requested(callbacks, accelerator) if state.step < plan.steps else ""
    # The generator advances the data position when it yields: never take a step to drop it.
    steps = _remaining_steps(lengths, config, state, plan.steps, rank, world)
    try:
        if stop_request:
            checkpoint_now()
        for micro in [] if stop_request else steps:
            started = time.perf_counter()
            stats = []
            for i, indices in enumerate(micro):
                batch = data_module.make_micro_batch([examples[j] for j in indices], pad_id)
                stats.append(
                    cut_micro_step(
                        scorer,
                        batch,
                        threshold=config.threshold,
                        weight_unlike=config.weight_unlike,
                        scale=1.0 / len(micro),  # the step's gradient is the micro-batch mean
                        split_views=config.split_views,
                        max_padding=config.max_padding,
                        device=device,
                        autocast=autocast,
                        sync=sync,
                        backward=accelerator.backward,
                        last=i == len(micro) - 1,
                    )
                )
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm or math.inf)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            elapsed = time.perf_counter() - started
            record = metrics.step_metrics(accelerator, state, stats, lr, float(grad_norm), elapsed)
            state.tokens += record["tokens"]
            state.seconds += elapsed
            record["peak_memory_mb"] = round(peak_memory_mb(device), 1)
            state.last = record
            state.loss_curve.append([state.step, record["loss"]])
            due = config.eval_every and state.step % config.eval_every == 0
            if holdout and (due or state.step == plan.steps):
                numbers = evaluate()
                record["eval"] = numbers
                state.evaluations.append({"step": state.step, **numbers})
                (bar.write if bar is not None else say)(evaluation.describe(state.step, numbers))
                stop_reason = evaluation.guard(config, state, numbers, peft_model)
            if main:
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                if callbacks.on_step is not None:
                    callbacks.on_step(record)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    loss=f"{record['loss']:.4f}", tok_s=f"{record['tokens_per_s']:.0f}"
                )
            if stop_reason:
                break
            if state.step < plan.steps:
                stop_request = _stop_requested(callbacks, accelerator)
            if stop_request or (
                config.checkpoint_every and state.step % config.checkpoint_every == 0
            ):
                checkpoint_now()
            if stop_request:
                break
        if stop_request:
            event({"event": "stopped", "reason": stop_request, "step": state.step})
    finally:
        if bar is not None:
            bar.close()
        if main:
            metrics_file.close()

    if stop_request:
        message = (
            f"Stopped at step {state.step} of {plan.steps} on request ({stop_request}); "
            f"the checkpoint is in {output_dir / CHECKPOINT_DIR}. Continue with resume_from="
            "latest (--resume latest)."
        )
        say(message)
        summary = metrics.final_metrics(state, holdout, "")
        return TrainResult(str(output_dir), summary, False, message, stopped_on_request=True)
    if stop_reason:
        say(stop_reason)
        checkpoints.load_lora_state(peft_model, state.best["state"])
    summary = metrics.final_metrics(state, holdout, stop_reason)
    if main:
        checkpoints.save_final(
            output_dir, config, peft_model, tokenizer, plan, summary, data_sha256, stop_reason
        )
        say(f"Saved the adapter in {output_dir}.")
        if config.merge:
            merged_dir = output_dir / "merged"
            merged = peft_model.merge_and_unload()
            merged.save_pretrained(merged_dir)
            tokenizer.save_pretrained(merged_dir)
            say(f"Saved the merged model in {merged_dir}.")
    accelerator.wait_for_everyone()
    return TrainResult(str(output_dir), summary, bool(stop_reason), stop_reason)


def _stop_requested(callbacks: TrainCallbacks, accelerator) -> str:
    """ "" to go on, or why to stop; every process gets the same answer (one gather)."""
    asked = callbacks.should_stop() if callbacks.should_stop is not None else False
    reason = asked if isinstance(asked, str) else ("request" if asked else "")
    if accelerator.num_processes == 1:
        return reason
    # 0 = go on, 1 = asked by a callback, 2 = signal: the max over processes, so all stop
    # together when any one was asked.
    mine = 0 if not reason else 2 if reason == "signal" else 1
    agreed = int(accelerator.gather(torch.tensor([mine], device=accelerator.device)).max())
    if agreed == mine:
        return reason
    return {0: "", 1: "request", 2: "signal"}[agreed]


def _with_resolved_template(config: CUTConfig, template: str) -> CUTConfig:
    """Record the template actually used, so generation uses it again."""
    resolved = copy.copy(config)
    resolved.template = template
    return resolved
