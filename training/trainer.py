"""The CUT training loop: LoRA on a stock causal LM, a plain readable loop (no HF Trainer).

One optimizer step = `gradient_accumulation_steps` micro-batches. Per micro-batch
(cut_micro_step) the Align views (Align-P for positives, Align-N for negatives) are scored
and back-propagated, then, for negative records only, the Misalign views. Log-probabilities
are taken only at response positions: the decoder's hidden states are gathered there and the
LM head is applied in chunks with a float32 log-sum-exp (response_logprobs), so no
full-vocabulary float32 tensor of the batch ever exists. The loss is training.loss.

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
import random
import resource
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from training import data as data_module
from training import loss as loss_module
from training.callbacks import TrainCallbacks
from training.config import CONFIG_FILENAME, CUTConfig

RUN_FILENAME = "run.json"  # data sha256, counts, metrics and the stop reason, beside the adapter
# One JSON object per optimizer step ({"step": N, ...}), and event lines ({"event": "plan"
# | "stopped", ...}) that readers of the step lines skip (iter_metrics does).
METRICS_FILENAME = "metrics.jsonl"
STATE_FILENAME = "trainer_state.pt"  # optimizer, scheduler, data position, RNG, in checkpoints
CHECKPOINT_DIR = "checkpoints"


@dataclass
class TrainResult:
    output_dir: str
    metrics: dict  # final loss, l_mle, l_ul, flagged, validation, loss_curve, steps, ...
    stopped_early: bool = False  # the collapse guard stopped it (the adapter was saved)
    stop_reason: str = ""  # why it stopped early or on request, in a sentence
    # Stopped by TrainCallbacks.should_stop or a signal: a checkpoint was saved and no final
    # adapter; resume_from="latest" continues the run.
    stopped_on_request: bool = False


# --- log-probabilities at response positions ---------------------------------------------


class _ResponseLogProbs(torch.autograd.Function):
    """log p(target | hidden) = hidden . W[target] - logsumexp(hidden @ W.T), chunk by chunk.

    Each row's log-prob depends only on its own hidden state, so its gradient with respect
    to that hidden state, W.T (onehot - softmax), can be computed in the forward pass while
    the chunk's logits exist, and kept (N x H, the size of the input). Backward is then one
    multiply: no logits are stored or recomputed. The LM head weight must be frozen.
    """

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor, chunk_size: int) -> Tensor:
        needs_grad = ctx.needs_input_grad[0]
        out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)  # (N,)
        grads = torch.empty_like(hidden) if needs_grad else None  # (N, H)
        for start in range(0, hidden.shape[0], chunk_size):
            end = start + chunk_size
            logits = (hidden[start:end] @ weight.T).float()  # (n, V)
            lse = torch.logsumexp(logits, dim=-1)  # (n,)
            target = targets[start:end, None]  # (n, 1)
            out[start:end] = logits.gather(1, target).squeeze(1) - lse
            if needs_grad:
                # d log p / d logits = onehot(target) - softmax(logits), in place of the logits
                probs = logits.sub_(lse[:, None]).exp_().neg_()
                probs.scatter_add_(1, target, torch.ones_like(target, dtype=probs.dtype))
                grads[start:end] = probs.to(weight.dtype) @ weight  # (n, H)
        ctx.save_for_backward(grads)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (grads,) = ctx.saved_tensors
        return grad_out[:, None].to(grads.dtype) * grads, None, None, None


def response_logprobs(
    hidden: Tensor, lm_head: nn.Module, targets: Tensor, *, chunk_size: int, dtype: torch.dtype
) -> Tensor:
    """float32 log p of each target from its hidden state; hidden (N, H), targets (N,) -> (N,).

    A plain frozen linear head goes through _ResponseLogProbs. Any other head (one with a
    bias, or with a LoRA adapter on it) is applied chunk by chunk under activation
    checkpointing, which also bounds the logits to one chunk.
    """
    with torch.autocast(device_type=hidden.device.type, enabled=False):
        weight = getattr(lm_head, "weight", None)
        plain = (
            type(lm_head) is nn.Linear
            and lm_head.bias is None
            and weight is not None
            and not weight.requires_grad
        )
        if plain:
            return _ResponseLogProbs.apply(hidden.to(dtype), weight.to(dtype), targets, chunk_size)
        pieces = []
        for start in range(0, hidden.shape[0], chunk_size):
            chunk = (hidden[start : start + chunk_size], targets[start : start + chunk_size])
            pieces.append(
                torch.utils.checkpoint.checkpoint(
                    _module_logprobs, lm_head, dtype, *chunk, use_reentrant=False
                )
            )
        return torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)


def _module_logprobs(lm_head: nn.Module, dtype: torch.dtype, hidden: Tensor, targets: Tensor):
    with torch.autocast(
        device_type=hidden.device.type, dtype=dtype, enabled=dtype != torch.float32
    ):
        logits = lm_head(hidden.to(dtype)).float()  # (n, V)
    return logits.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)


def causal_lm(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (LoRA layers are injected in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class ResponseScorer(nn.Module):
    """forward(view) -> (N,) float32 log-probs of the view's response tokens.

    Runs the decoder stack (not the full causal LM, which would apply the LM head at every
    position), gathers the hidden states that predict response tokens, and scores them with
    response_logprobs. Wrapped by DDP on several GPUs, so gradients sync through forward.
    """

    def __init__(self, model: nn.Module, *, chunk_size: int, dtype: torch.dtype):
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size
        self.dtype = dtype

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, positions: Tensor, targets: Tensor
    ):
        lm = causal_lm(self.model)
        hidden = lm.get_decoder()(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state  # (B, T, H)
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)  # (N, H)
        return response_logprobs(
            picked,
            lm.get_output_embeddings(),
            targets,
            chunk_size=self.chunk_size,
            dtype=self.dtype,
        )


def view_logprobs(scorer: nn.Module, view: data_module.ViewBatch) -> Tensor:
    """(B, R) float32 log-probs of a view batch's response tokens; 0 where mask is False."""
    flat = scorer(view.input_ids, view.attention_mask, view.positions, view.targets)  # (N,)
    # positions were laid out row by row, which is the row-major order of mask's True cells
    return flat.new_zeros(view.mask.shape).masked_scatter(view.mask, flat)


# --- one micro-batch ---------------------------------------------------------------------


@dataclass
class MicroStats:
    loss: float
    l_mle: float
    l_ul: float | None  # None when the micro-batch had no negative record
    flagged_tokens: int
    misalign_tokens: int
    tokens: int  # real tokens processed (all views)


def cut_micro_step(
    scorer: nn.Module,
    batch: data_module.MicroBatch,
    *,
    threshold: float,
    weight_unlike: float,
    scale: float = 1.0,
    split_views: bool = True,
    device: torch.device | str = "cpu",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    sync: Callable[[bool], contextlib.AbstractContextManager] | None = None,
    backward: Callable[[Tensor], None] = Tensor.backward,
    last: bool = True,
    max_padding: float = 1.0,
) -> MicroStats:
    """Forward and backward of one micro-batch of CUT, gradients scaled by `scale`.

    split_views=True back-propagates the Align views first, then the Misalign views, so
    only one set of activations is alive at a time (peak memory of an SFT step). Each kind
    is further cut into sub-batches of similar length (data.length_groups, at most
    `max_padding` of a pass's tokens are padding; 1 = one pass per kind). The gradient is
    that of loss.cut_loss: the loss is a weighted sum of token means (loss.part_weights)
    and the detection uses only detached Align-N log-probs.
    split_views=False runs all views in one padded batch through loss.cut_loss.
    `sync(True)` wraps the pass that must all-reduce gradients (the last of an optimizer
    step, `last`); other passes run under `sync(False)` (DDP no_sync).
    """
    sync = sync or (lambda _: contextlib.nullcontext())
    has_negative = bool(batch.misalign_rows)
    options = {"threshold": threshold, "weight_unlike": weight_unlike}
    # Token counts come from the rows (host side): reading device tensors would make the
    # host wait for the GPU between passes. Values are read once, at the end.
    counts = {
        "like": sum(len(r) for _, r in batch.like_rows),
        "misalign": sum(len(r) for _, r in batch.misalign_rows),
    }
    if not split_views and has_negative:
        view = data_module.view_batch(
            batch.like_rows + batch.misalign_rows, batch.pad_id, batch.pad_to_multiple_of
        ).to(device)
        n_like = len(batch.like_rows)
        with sync(last):
            with autocast():
                logps = view_logprobs(scorer, view)  # (B1 + B2, R)
            like, misalign = logps[:n_like], logps[n_like:]
            judged = like.detach()[batch.judged_rows]
            out = loss_module.cut_loss(
                like, view.mask[:n_like], misalign, judged, view.mask[n_like:], **options
            )
            backward(out.loss * scale)
        loss, l_mle, l_ul, fraction = torch.stack([t.detach() for t in out]).tolist()
        flagged = round(fraction * counts["misalign"])
        return MicroStats(loss, l_mle, l_ul, flagged, counts["misalign"], view.tokens)

    # Align views first: the Misalign passes need their detached log-probs (the detection).
    w_mle, w_ul = loss_module.part_weights(has_negative)
    passes = [("like", g) for g in data_module.length_groups(batch.like_rows, max_padding)]
    passes += [
        ("misalign", g) for g in data_module.length_groups(batch.misalign_rows, max_padding)
    ]
    misalign_of = {like_row: k for k, like_row in enumerate(batch.judged_rows)}
    judged: list[Tensor | None] = [None] * len(batch.misalign_rows)
    totals = {"like": [], "misalign": [], "flagged": []}  # detached scalars
    tokens = 0
    for n, (kind, group) in enumerate(passes):
        rows = batch.like_rows if kind == "like" else batch.misalign_rows
        view = data_module.view_batch(
            [rows[i] for i in group], batch.pad_id, batch.pad_to_multiple_of
        ).to(device)
        tokens += view.tokens
        # A token mean over the micro-batch = each pass's token mean weighted by its share.
        pass_tokens = sum(len(rows[i][1]) for i in group)
        share = pass_tokens / counts[kind]
        with sync(last and n == len(passes) - 1):
            with autocast():
                logps = view_logprobs(scorer, view)  # (b, R)
            if kind == "like":
                part = loss_module.likelihood_term(logps, view.mask) * share
                weight = w_mle
                for row, i in enumerate(group):
                    if i in misalign_of:
                        judged[misalign_of[i]] = logps[row].detach()
            else:
                # The same response tokens scored in the matching Align-N rows.
                judged_logps = torch.zeros_like(logps)  # (b, R)
                for row, i in enumerate(group):
                    length = len(rows[i][1])
                    judged_logps[row, :length] = judged[i][:length]
                l_ul, fraction = loss_module.unlikelihood_term(
                    logps, judged_logps, view.mask, **options
                )
                part = l_ul * share
                weight = w_ul
                totals["flagged"].append(fraction * pass_tokens)
            backward(part * (weight * scale))
        totals[kind].append(part.detach())
    sums = [torch.stack(v).sum() if v else torch.zeros(()) for v in totals.values()]
    l_mle, l_ul, flagged = (float(v) for v in torch.stack([t.cpu() for t in sums]).tolist())
    return MicroStats(
        w_mle * l_mle + w_ul * l_ul,
        l_mle,
        l_ul if has_negative else None,
        round(flagged),
        counts["misalign"],
        tokens,
    )


# --- model, optimizer, schedule ----------------------------------------------------------


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


def compute_dtype(config: CUTConfig, device: torch.device) -> torch.dtype:
    if config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return torch.float32


def autocast_for(device: torch.device, dtype: torch.dtype) -> Callable:
    if dtype == torch.float32:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated, or the process's peak resident memory on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- validation on the holdout -----------------------------------------------------------


@torch.no_grad()
def score_holdout(
    scorer: nn.Module,
    examples: list[data_module.Example],
    *,
    threshold: float,
    batch_size: int,
    device: torch.device,
    autocast: Callable,
) -> dict:
    """Mean token log-prob of approved and of criticised responses with the inference prompt
    (no judgment), and the share of criticised tokens CUT would flag."""
    sums = {"approved": [0.0, 0], "criticised": [0.0, 0]}
    flagged = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        view = data_module.view_batch(
            [(e.prompt_ids, e.response_ids) for e in chunk], pad_id=0
        ).to(device)
        with autocast():
            logps = view_logprobs(scorer, view)  # (B, R)
        row_sums = torch.where(view.mask, logps, torch.zeros_like(logps)).sum(dim=1).tolist()
        for example, row_sum in zip(chunk, row_sums, strict=True):
            bucket = sums["criticised" if example.negative else "approved"]
            bucket[0] += row_sum
            bucket[1] += len(example.response_ids)
        negatives = [(row, e) for row, e in enumerate(chunk) if e.negative]
        if negatives:
            judged_view = data_module.view_batch(
                [(e.judged_ids, e.response_ids) for _, e in negatives], pad_id=0
            ).to(device)
            with autocast():
                judged = view_logprobs(scorer, judged_view)
            # Same response tokens; this chunk's widest response may be an approved one.
            misalign = logps[[row for row, _ in negatives]][:, : judged.shape[1]]
            flags = loss_module.flag_inappropriate(misalign, judged, judged_view.mask, threshold)
            flagged += int(flags.sum())
    result = {}
    for name, (total, count) in sums.items():
        result[f"{name}_logp"] = total / count if count else None
    count = sums["criticised"][1]
    result["flagged"] = flagged / count if count else None
    return result


def compare_to_base(current: dict, base: dict) -> dict:
    """The holdout numbers against the base model's; gain = approved_delta - criticised_delta."""

    def delta(name: str) -> float | None:
        if current[name] is None or base[name] is None:
            return None
        return current[name] - base[name]

    approved, criticised = delta("approved_logp"), delta("criticised_logp")
    gain = approved - criticised if approved is not None and criticised is not None else None
    return {
        **current,
        "approved_delta": approved,
        "criticised_delta": criticised,
        "gain": gain,
    }


# --- checkpoints -------------------------------------------------------------------------


def lora_state(model: nn.Module) -> dict[str, Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model).items()}


def load_lora_state(model: nn.Module, state: dict[str, Tensor]) -> None:
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(model, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"The checkpoint's adapter does not fit this model ({unexpected[0]}...).")


def find_checkpoint(output_dir: Path, resume_from: str) -> Path | None:
    if not resume_from:
        return None
    if resume_from == "latest":
        found = sorted((output_dir / CHECKPOINT_DIR).glob("step-*"))
        complete = [p for p in found if (p / STATE_FILENAME).is_file()]
        if not complete:
            raise ValueError(f"resume_from=latest, but {output_dir / CHECKPOINT_DIR} has none.")
        return complete[-1]
    path = Path(resume_from).expanduser()
    if not (path / STATE_FILENAME).is_file():
        raise ValueError(f"{path} is not a checkpoint of this trainer (no {STATE_FILENAME}).")
    return path


# --- the loop ----------------------------------------------------------------------------


@dataclass
class _Progress:
    """Everything besides weights and optimizer that a checkpoint must restore."""

    step: int = 0
    epoch: int = 0
    next_chunk: int = 0  # first optimizer step (within the epoch) not yet done
    tokens: int = 0
    seconds: float = 0.0
    loss_curve: list = field(default_factory=list)
    evaluations: list = field(default_factory=list)
    best: dict | None = None  # {"step", "gain", "state"} of the best adapter so far
    last: dict = field(default_factory=dict)  # the last step's metrics


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
    lengths: list[int], config: CUTConfig, state: _Progress, total: int, rank: int, world: int
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

    state = _Progress()
    checkpoint = find_checkpoint(output_dir, config.resume_from)
    if checkpoint is not None:
        state = _resume(
            checkpoint,
            peft_model,
            optimizer,
            scheduler,
            data_sha256,
            device,
            accelerator.process_index,
        )
        say(f"Resumed from {checkpoint} at step {state.step}.")

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
            base_eval = score_holdout(plain_scorer, holdout, **eval_options)
        say(
            f"Base model on the holdout: approved {_fmt(base_eval['approved_logp'])}, "
            f"criticised {_fmt(base_eval['criticised_logp'])} nats per token."
        )
        if state.best is None:
            state.best = {"step": 0, "gain": 0.0, "state": lora_state(peft_model)}

    def evaluate() -> dict:
        plain_scorer.eval()
        numbers = compare_to_base(score_holdout(plain_scorer, holdout, **eval_options), base_eval)
        plain_scorer.train()
        return numbers

    lengths = [e.tokens for e in examples]
    rank, world = accelerator.process_index, accelerator.num_processes
    if main:
        output_dir.mkdir(parents=True, exist_ok=True)
        metrics_file = _open_metrics(output_dir, state.step)

    def event(record: dict) -> None:
        if main:
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
            if callbacks.on_event is not None:
                callbacks.on_event(record)

    event(_plan_event(plan, state.step))
    bar = None
    if progress and main:
        from tqdm.auto import tqdm

        bar = tqdm(total=plan.steps, initial=state.step, desc="CUT", unit="step")
    stop_reason = ""
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    plain_scorer.train()

    def sync(should: bool):
        return contextlib.nullcontext() if should else accelerator.no_sync(scorer)

    def save_checkpoint() -> None:
        rng = _gather_rng_states(accelerator)  # every process's dropout stream
        if main:
            _save_checkpoint(
                output_dir, config, peft_model, optimizer, scheduler, state, rng, data_sha256
            )
        accelerator.wait_for_everyone()

    # Asked before the first step too, so a run cancelled while its model loaded stops now.
    stop_request = _stop_requested(callbacks, accelerator) if state.step < plan.steps else ""
    # The generator advances the data position when it yields: never take a step to drop it.
    steps = _remaining_steps(lengths, config, state, plan.steps, rank, world)
    try:
        if stop_request:
            save_checkpoint()
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
            record = _step_metrics(accelerator, state, stats, lr, float(grad_norm), elapsed)
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
                (bar.write if bar is not None else say)(_describe_eval(state.step, numbers))
                stop_reason = _guard(config, state, numbers, peft_model)
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
                save_checkpoint()
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
        metrics = _final_metrics(state, holdout, "")
        return TrainResult(str(output_dir), metrics, False, message, stopped_on_request=True)
    if stop_reason:
        say(stop_reason)
        load_lora_state(peft_model, state.best["state"])
    metrics = _final_metrics(state, holdout, stop_reason)
    if main:
        _save_final(
            output_dir, config, peft_model, tokenizer, plan, metrics, data_sha256, stop_reason
        )
        say(f"Saved the adapter in {output_dir}.")
        if config.merge:
            merged_dir = output_dir / "merged"
            merged = peft_model.merge_and_unload()
            merged.save_pretrained(merged_dir)
            tokenizer.save_pretrained(merged_dir)
            say(f"Saved the merged model in {merged_dir}.")
    accelerator.wait_for_everyone()
    return TrainResult(str(output_dir), metrics, bool(stop_reason), stop_reason)


def _open_metrics(output_dir: Path, step: int):
    """metrics.jsonl for appending, without lines past `step` (left by an interrupted run).

    Event lines without a step (an earlier "plan") are kept: the file tells the run's story.
    """
    path = output_dir / METRICS_FILENAME
    kept = []
    if step and path.exists():
        kept = [
            line
            for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
    path.write_text("".join(line + "\n" for line in kept))
    return open(path, "a")  # noqa: SIM115 (closed in train's finally)


def _plan_event(plan: data_module.Plan, step: int) -> dict:
    """The first line a run writes: what it will do (a supervisor's progress total)."""
    return {
        "event": "plan",
        "steps": plan.steps,  # optimizer steps of the whole run
        "records": plan.records,
        "align_p": plan.align_p,
        "align_n": plan.align_n,
        "tokens": plan.tokens,  # over all training views of one epoch
        "holdout": plan.holdout_positives + plan.holdout_negatives,
        "template": plan.template,
        "truncated": plan.truncated,
        "start_step": step,  # > 0 when resumed from a checkpoint
    }


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


def _step_metrics(
    accelerator,
    state: _Progress,
    stats: list[MicroStats],
    lr: float,
    grad_norm: float,
    seconds: float,
) -> dict:
    """The step's numbers over every process's micro-batches (sums all-reduced once)."""
    uls = [s.l_ul for s in stats if s.l_ul is not None]
    sums = [
        sum(s.loss for s in stats),
        sum(s.l_mle for s in stats),
        len(stats),
        sum(uls),
        len(uls),
        sum(s.flagged_tokens for s in stats),
        sum(s.misalign_tokens for s in stats),
        sum(s.tokens for s in stats),
    ]
    if accelerator.num_processes > 1:
        total = torch.tensor(sums, dtype=torch.float64, device=accelerator.device)
        sums = accelerator.reduce(total, reduction="sum").tolist()
    loss, l_mle, count, ul, ul_count, flagged, misalign_tokens, tokens = sums
    return {
        "step": state.step,
        "epoch": state.epoch,
        "loss": loss / count,
        "l_mle": l_mle / count,
        "l_ul": ul / ul_count if ul_count else None,
        "flagged": flagged / misalign_tokens if misalign_tokens else None,
        "lr": lr,
        "grad_norm": grad_norm,
        "tokens": int(tokens),
        "tokens_per_s": tokens / seconds if seconds > 0 else 0.0,
        "seconds": seconds,
    }


def _guard(config: CUTConfig, state: _Progress, numbers: dict, peft_model: nn.Module) -> str:
    """Track the best adapter; return why to stop when approved responses collapse."""
    approved, gain = numbers["approved_delta"], numbers["gain"]
    if config.collapse_guard and approved is not None and approved < -config.collapse_margin:
        best = state.best
        return (
            f"Stopped early at step {state.step}: approved holdout responses fell "
            f"{-approved:.3f} nats per token below the base model, more than collapse_margin "
            f"({config.collapse_margin}); unlikelihood is pushing down good text too. Kept the "
            f"adapter of step {best['step']} (gain {best['gain']:.3f}). Try a smaller "
            "weight_unlike or learning_rate, or fewer epochs."
        )
    score = gain if gain is not None else approved
    if score is not None and (state.best is None or score > state.best["gain"]):
        state.best = {"step": state.step, "gain": score, "state": lora_state(peft_model)}
    return ""


def _final_metrics(state: _Progress, holdout: list, stop_reason: str) -> dict:
    last = state.last
    validation = None
    if state.evaluations:
        validation = dict(state.evaluations[-1])
        if stop_reason:
            validation["best_step"] = state.best["step"]
    return {
        "loss": last.get("loss"),
        "l_mle": last.get("l_mle"),
        "l_ul": last.get("l_ul"),
        "flagged": last.get("flagged"),
        "steps": state.step,
        "tokens": state.tokens,
        "seconds": round(state.seconds, 3),
        "tokens_per_s": state.tokens / state.seconds if state.seconds else 0.0,
        "holdout_records": len(holdout),
        "validation": validation,
        "evaluations": state.evaluations,
        "loss_curve": state.loss_curve,
    }


def _save_final(
    output_dir: Path,
    config: CUTConfig,
    peft_model: nn.Module,
    tokenizer,
    plan: data_module.Plan,
    metrics: dict,
    data_sha256: str,
    stop_reason: str,
) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    config.save(output_dir / CONFIG_FILENAME)
    run = {
        "data": str(config.data),
        "data_sha256": data_sha256,
        "base_model": config.base_model,
        "template": config.template,
        "plan": {k: v for k, v in vars(plan).items() if k != "warnings"},
        "warnings": plan.warnings,
        "metrics": metrics,
        "stopped_early": bool(stop_reason),
        "stop_reason": stop_reason,
    }
    (output_dir / RUN_FILENAME).write_text(json.dumps(run, indent=2) + "\n")


def _save_checkpoint(
    output_dir: Path,
    config: CUTConfig,
    peft_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    state: _Progress,
    rng: list[dict],
    data_sha256: str,
) -> Path:
    root = output_dir / CHECKPOINT_DIR
    target = root / f"step-{state.step:07d}"
    scratch = root / f".step-{state.step:07d}.tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    peft_model.save_pretrained(scratch)  # a checkpoint is also a usable adapter
    config.save(scratch / CONFIG_FILENAME)
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "progress": dict(vars(state)),
            "rng": rng,  # one entry per process
            "data_sha256": data_sha256,
        },
        scratch / STATE_FILENAME,
    )
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)  # a checkpoint directory is complete or absent
    kept = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in kept[: -config.checkpoints_kept]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _resume(
    checkpoint: Path,
    peft_model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    data_sha256: str,
    device: torch.device,
    rank: int,
) -> _Progress:
    from peft.utils import load_peft_weights

    saved = torch.load(checkpoint / STATE_FILENAME, map_location="cpu", weights_only=False)
    if saved["data_sha256"] != data_sha256:
        raise ValueError(
            f"The data changed since checkpoint {checkpoint} (sha256 differs); resume with the "
            "same data file, or start a new run."
        )
    load_lora_state(peft_model, load_peft_weights(str(checkpoint), device=str(device)))
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    states = saved["rng"]
    rng = states[rank] if rank < len(states) else states[0]  # more processes than before
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["cuda"], device)
    random.setstate(rng["python"])
    return _Progress(**saved["progress"])


def _gather_rng_states(accelerator) -> list[dict]:
    """The random states of every process (a collective call: all processes make it)."""
    state = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(accelerator.device)
        if accelerator.device.type == "cuda"
        else None,
        "python": random.getstate(),
    }
    if accelerator.num_processes == 1:
        return [state]
    from accelerate.utils import gather_object

    return gather_object([state])


def _fmt(value: float | None, sign: str = "") -> str:
    return "n/a" if value is None else f"{value:{sign}.4f}"


def _describe_eval(step: int, numbers: dict) -> str:
    flagged = "n/a" if numbers["flagged"] is None else f"{numbers['flagged']:.1%}"
    return (
        f"Step {step} holdout, against the base model: approved "
        f"{_fmt(numbers['approved_delta'], '+')}, criticised "
        f"{_fmt(numbers['criticised_delta'], '+')} nats per token, gain "
        f"{_fmt(numbers['gain'], '+')}; {flagged} of criticised tokens flagged."
    )


def iter_metrics(output_dir: str | Path) -> Iterator[dict]:
    """The per-step metrics a run wrote, one dict per line (event lines skipped)."""
    for record in iter_metrics_lines(output_dir):
        if "event" not in record:
            yield record


def iter_metrics_lines(output_dir: str | Path) -> Iterator[dict]:
    """Every line of metrics.jsonl: step metrics and events ({"event": "plan"|"stopped"})."""
    with open(Path(output_dir) / METRICS_FILENAME) as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
