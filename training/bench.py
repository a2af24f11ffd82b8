"""`python -m training bench`: what a CUT step costs next to SFT and the official computation.

On the same synthetic micro-batch and the same randomly initialised model (a preset shape,
LoRA r16 on the MLP as in CUT.md §5) it times:

- sft       one view per record (T(x) + response) in one padded batch, response-only
            log-probs: the cost floor the ratios are taken against;
- sft-grouped  the same with our length grouping (max_padding), to show what of our gain
            comes from padding alone;
- cut       our step: training.cut_step.cut_micro_step, exactly what the trainer runs
            (Align views backward, then Misalign views for the negatives only, each cut
            into sub-batches of similar length);
- cut-joint the same loss with all views in one padded batch (split_views=False);
- official  a plain restatement of the official computation (CUT.md §6): a doubled batch
            whose second half holds the Misalign view of a negative record or an all-padding
            row for a positive one, full-vocabulary float32 softmax at every position.

Every variant runs in its own subprocess, so peak memory is its own: GPU memory allocated
on CUDA, the whole process's resident memory on a CPU. MFU = 4 * N * tokens/s / peak FLOP/s
(N parameters, LoRA-frozen base: forward 2N plus input-gradient 2N per token; tokens = real,
non-padding tokens of the variant). Each variant also reports its loss on the batch with
dropout off, which must agree across cut, cut-joint and official (same math).
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time

import torch

from training import cut_step, logprobs, trainer
from training import data as data_module
from training.config import CUTConfig

PRESETS = {
    # A few seconds a step on a laptop CPU.
    "tiny": {
        "hidden_size": 128,
        "intermediate_size": 512,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 8192,
        "tie_word_embeddings": True,
    },
    # The embedded default's shape (SmolLM2-135M).
    "smollm2-135m": {
        "hidden_size": 576,
        "intermediate_size": 1536,
        "num_hidden_layers": 30,
        "num_attention_heads": 9,
        "num_key_value_heads": 3,
        "vocab_size": 49152,
        "tie_word_embeddings": True,
    },
    # Llama-3.2-1B's shape: the GPU target.
    "llama-3.2-1b": {
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 16,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
        "tie_word_embeddings": True,
    },
}
VARIANTS = ("sft", "sft-grouped", "cut", "cut-joint", "official")
# Scaled-down defaults for a CPU: the full GPU shape would take minutes per step.
GPU_DEFAULTS = {
    "preset": "llama-3.2-1b",
    "records": 8,
    "prompt": 200,
    "judgment": 60,
    "response": 400,
    "repeats": 5,
    "warmup": 2,
    "rounds": 1,
}
CPU_DEFAULTS = {
    "preset": "tiny",
    "records": 8,
    "prompt": 50,
    "judgment": 15,
    "response": 100,
    "repeats": 3,
    "warmup": 1,
    "rounds": 3,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), help="model shape")
    parser.add_argument("--records", type=int, help="records in the micro-batch")
    parser.add_argument("--prompt-tokens", type=int, help="mean prompt length")
    parser.add_argument("--judgment-tokens", type=int, help="mean judgment length")
    parser.add_argument("--response-tokens", type=int, help="mean response length")
    parser.add_argument("--negative-fraction", type=float, default=0.75)
    parser.add_argument("--repeats", type=int, help="timed steps per variant (GPU 5, CPU 3)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (GPU 2, CPU 1)")
    parser.add_argument("--chunk-size", type=int, default=CUTConfig.logprob_chunk_size)
    parser.add_argument("--max-padding", type=float, default=CUTConfig.max_padding)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="H100 bf16 dense")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's choice)")
    parser.add_argument("--rounds", type=int, help="runs of every variant (GPU 1, CPU 3)")
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # child process: run one


def main(args: argparse.Namespace) -> None:
    defaults = GPU_DEFAULTS if args.device.startswith("cuda") else CPU_DEFAULTS
    args.preset = args.preset or defaults["preset"]
    args.records = args.records or defaults["records"]
    args.prompt_tokens = args.prompt_tokens or defaults["prompt"]
    args.judgment_tokens = args.judgment_tokens or defaults["judgment"]
    args.response_tokens = args.response_tokens or defaults["response"]
    args.repeats = args.repeats or defaults["repeats"]
    args.warmup = args.warmup if args.warmup is not None else defaults["warmup"]
    args.rounds = args.rounds or defaults["rounds"]
    if args.variant:
        print(json.dumps(run_variant(args, args.variant)))
        return
    variants = args.variants.split(",")
    for variant in variants:
        if variant not in VARIANTS:
            raise SystemExit(f"Unknown variant {variant!r}; pick from {', '.join(VARIANTS)}.")
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    # Rounds interleave the variants, so load from other processes on a shared machine
    # falls on all of them alike; each variant keeps its fastest run.
    for _ in range(args.rounds):
        for variant in variants:
            runs[variant].append(_run_child(args, variant))
    results = {}
    for variant, done in runs.items():
        good = [r for r in done if "error" not in r]
        if not good:
            results[variant] = done[-1]
            continue
        results[variant] = min(good, key=lambda r: r["seconds"])
        results[variant]["peak_memory_mb"] = max(r["peak_memory_mb"] for r in good)
        results[variant]["finite"] = all(r["finite"] for r in good)
    print(table(args, results))


def _run_child(args: argparse.Namespace, variant: str) -> dict:
    command = [sys.executable, "-m", "training", "bench", *_child_args(args)]
    done = subprocess.run([*command, f"--variant={variant}"], capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": " / ".join(tail)}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_args(args: argparse.Namespace) -> list[str]:
    options = {
        "preset": args.preset,
        "records": args.records,
        "prompt-tokens": args.prompt_tokens,
        "judgment-tokens": args.judgment_tokens,
        "response-tokens": args.response_tokens,
        "negative-fraction": args.negative_fraction,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "chunk-size": args.chunk_size,
        "max-padding": args.max_padding,
        "peak-tflops": args.peak_tflops,
        "device": args.device,
        "seed": args.seed,
    }
    if args.threads:
        options["threads"] = args.threads
    flags = [f"--{k}={v}" for k, v in options.items()]
    return flags + (["--gradient-checkpointing"] if args.gradient_checkpointing else [])


# --- the synthetic batch and model -------------------------------------------------------


def synthetic_examples(args: argparse.Namespace, vocab_size: int) -> list[data_module.Example]:
    """Records of about the requested lengths (+-25 %), the requested share negative."""
    rng = random.Random(args.seed)

    def tokens(mean: int) -> list[int]:
        n = max(1, round(mean * rng.uniform(0.75, 1.25)))
        return [rng.randrange(3, vocab_size) for _ in range(n)]

    negatives = round(args.records * args.negative_fraction)
    examples = []
    for i in range(args.records):
        prompt, response = tokens(args.prompt_tokens), tokens(args.response_tokens)
        negative = i < negatives
        # T(x, j): the judgment sits between the instruction and the response header.
        judged = prompt[:-8] + tokens(args.judgment_tokens) + prompt[-8:] if negative else None
        examples.append(data_module.Example(negative, prompt, judged, response))
    rng.shuffle(examples)
    return examples


def build_model(args: argparse.Namespace, device: torch.device, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(args.seed)
    config = LlamaConfig(**PRESETS[args.preset], max_position_embeddings=4096)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    model.config.use_cache = False
    peft_model = trainer.attach_lora(model, CUTConfig())
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return peft_model


def parameter_count(model) -> int:
    """Parameters that cost FLOPs per token: all but an untied input embedding."""
    lm = logprobs.causal_lm(model)
    embed = lm.get_input_embeddings().weight
    head = lm.get_output_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    return total if embed.data_ptr() == head.data_ptr() else total - embed.numel()


# --- the variants ------------------------------------------------------------------------


def run_variant(args: argparse.Namespace, variant: str) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    autocast = logprobs.autocast_for(device, dtype)
    model = build_model(args, device, dtype)
    examples = synthetic_examples(args, PRESETS[args.preset]["vocab_size"])
    if variant.startswith("sft"):
        # One view per record: the response after T(x), whatever the verdict.
        examples = [
            data_module.Example(False, e.prompt_ids, None, e.response_ids) for e in examples
        ]
    batch = data_module.make_micro_batch(examples, pad_id=0)
    config = CUTConfig()
    options = {"threshold": config.threshold, "weight_unlike": config.weight_unlike}
    scorer = logprobs.ResponseScorer(model, chunk_size=args.chunk_size, dtype=dtype)

    def step(backward=torch.Tensor.backward) -> tuple[float, int]:
        if variant == "official":
            return official_step(model, examples, autocast, device, backward=backward, **options)
        stats = cut_step.cut_micro_step(
            scorer,
            batch,
            split_views=variant != "cut-joint",
            max_padding=1.0 if variant == "sft" else args.max_padding,
            device=device,
            autocast=autocast,
            backward=backward,
            **options,
        )
        return stats.loss, stats.tokens

    model.eval()  # the loss to compare, without dropout
    with torch.no_grad():
        loss, tokens = step(backward=lambda _: None)
    model.train()
    optimizer = trainer.make_optimizer(model, config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    times, finite = [], True
    for i in range(args.warmup + args.repeats):
        if i == args.warmup and device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _synchronize(device)
        started = time.perf_counter()
        step()
        _synchronize(device)
        elapsed = time.perf_counter() - started
        finite &= all(bool(torch.isfinite(p.grad).all()) for p in trainable if p.grad is not None)
        _synchronize(device)
        started = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _synchronize(device)
        elapsed += time.perf_counter() - started
        if i >= args.warmup:
            times.append(elapsed)
    # The best step: on a shared machine, others' load only ever adds time.
    seconds = min(times)
    n_params = parameter_count(model)
    return {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "peak_memory_mb": trainer.peak_memory_mb(device),
        "mfu": 4 * n_params * tokens / seconds / (args.peak_tflops * 1e12),
        "loss": loss,
        "finite": finite,
        "parameters": n_params,
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def official_step(
    model,
    examples: list[data_module.Example],
    autocast,
    device: torch.device,
    *,
    threshold: float,
    weight_unlike: float,
    backward=torch.Tensor.backward,
) -> tuple[float, int]:
    """The official computation restated plainly (not their code): see the module docstring.

    Rows are padded to one length (a multiple of 8, as their collator does); labels are -100
    on prompts and padding. Returns (loss, real tokens processed).
    """
    first = [((e.judged_ids if e.negative else e.prompt_ids), e.response_ids) for e in examples]
    second = [(e.prompt_ids, e.response_ids) if e.negative else None for e in examples]
    width = max(len(p) + len(r) for p, r in first + [s for s in second if s])
    width = math.ceil(width / 8) * 8
    rows = len(examples)
    input_ids = torch.zeros((2 * rows, width), dtype=torch.long)
    attention = torch.zeros((2 * rows, width), dtype=torch.long)
    labels = torch.full((2 * rows, width), -100, dtype=torch.long)
    for row, pair in enumerate(first + second):
        if pair is None:
            continue  # a dummy all-padding row for a positive record
        prompt, response = pair
        n = len(prompt) + len(response)
        input_ids[row, :n] = torch.tensor(prompt + response)
        attention[row, :n] = 1
        labels[row, len(prompt) : n] = torch.tensor(response)
    input_ids, attention, labels = (t.to(device) for t in (input_ids, attention, labels))
    with autocast():
        logits = model(input_ids=input_ids, attention_mask=attention).logits  # (2B, T, V)
    probs = torch.softmax(logits.float(), dim=-1)  # full-vocabulary float32, every position
    shift_labels = labels[:, 1:]  # (2B, T-1)
    valid = shift_labels != -100
    picked = probs[:, :-1].gather(-1, shift_labels.clamp(min=0)[..., None]).squeeze(-1)
    like, misalign = picked[:rows], picked[rows:]
    l_mle = -torch.log(like[valid[:rows]]).mean()
    negative = torch.tensor([e.negative for e in examples], device=device)
    loss = l_mle
    if negative.any():
        # Response tokens in row order: the same count per record in both views.
        p_judged = like[negative][valid[:rows][negative]]
        p_misalign = misalign[negative][valid[rows:][negative]]
        flagged = (p_judged / p_misalign).detach() > threshold
        one_minus = torch.where(flagged, 1 - p_misalign, p_misalign)
        one_minus = one_minus + (one_minus == 0) * 1e-5
        terms = torch.log(one_minus) * torch.where(flagged, weight_unlike, 1.0)
        loss = (l_mle - terms.mean()) / 2
    backward(loss)
    return float(loss.detach()), int(attention.sum())


# --- the report --------------------------------------------------------------------------


def table(args: argparse.Namespace, results: dict) -> str:
    device = torch.device(args.device)
    memory = "GPU MiB" if device.type == "cuda" else "RSS MiB"
    where = _device_name(device, args.threads or torch.get_num_threads())
    header = (
        f"preset {args.preset} on {where}; micro-batch {args.records} records "
        f"(~{args.prompt_tokens} prompt / {args.judgment_tokens} judgment / "
        f"{args.response_tokens} response tokens, {args.negative_fraction:.0%} negative); "
        f"{'bf16' if device.type == 'cuda' else 'fp32'}; best of {args.rounds} x {args.repeats} "
        "steps; "
        f"MFU against {args.peak_tflops:g} TFLOP/s"
    )
    columns = f"{'step':<12}{'s/step':>9}{'tokens/s':>11}{memory:>10}{'MFU':>7}"
    columns += f"{'xSFT t':>8}{'xoff t':>8}{'xSFT mem':>9}{'loss':>10}  finite"
    lines = [header, columns]
    sft, official = results.get("sft", {}), results.get("official", {})
    for name, r in results.items():
        if "error" in r:
            lines.append(f"{name:<12}failed: {r['error']}")
            continue

        def ratio(base: dict, key: str, r=r) -> str:
            return f"{r[key] / base[key]:.2f}" if base.get(key) else "-"

        lines.append(
            f"{name:<12}{r['seconds']:>9.3f}{r['tokens_per_s']:>11.0f}{r['peak_memory_mb']:>10.0f}"
            f"{r['mfu']:>7.1%}{ratio(sft, 'seconds'):>8}{ratio(official, 'seconds'):>8}"
            f"{ratio(sft, 'peak_memory_mb'):>9}{r['loss']:>10.5f}"
            f"  {'yes' if r['finite'] else 'NO'}"
        )
    return "\n".join(lines)


def _device_name(device: torch.device, threads: int) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({os.cpu_count()} cores, {threads} threads)"
