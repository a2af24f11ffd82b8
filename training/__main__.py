"""`python -m training train|generate|bench ...`: the library without Django, for GPU boxes.

    python -m training train --data triples.jsonl --base-model DIR --output OUT \
        [--max-steps N] [--resume latest|DIR] [--dry-run] [--threshold=1.2 ...]
    python -m training generate --adapter OUT --data prompts.jsonl --output responses.jsonl
    python -m training lens --data judged.jsonl --output lens.jsonl [--adapter OUT] ...
    python -m training bench [--preset llama-3.2-1b] [--records 8] ...

SIGTERM or SIGINT stops `train` after the optimizer step it is in: it saves a checkpoint,
appends {"event": "stopped", ...} to metrics.jsonl and exits with status 75; `--resume latest`
continues it (training/callbacks.py).

Several GPUs (data parallel): `accelerate launch -m training train ...` or
`torchrun --nproc-per-node N -m training train ...`. Any CUTConfig field can be set with
--name=value (see training/config.py); errors say which key and what to change.
"""

import argparse
import os
import sys
from pathlib import Path

from training.callbacks import STOPPED_EXIT_CODE, StopSignals, TrainCallbacks
from training.config import CUTConfig, apply_overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training", description=__doc__.split("\n")[0], allow_abbrev=False
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a LoRA adapter with CUT", allow_abbrev=False)
    train.add_argument("--data", required=True, help="JSONL (or JSON array) of judgment triples")
    train.add_argument("--base-model", help="local model dir or hub id (default: embedded)")
    train.add_argument("--output", help="output directory (default: runs/cut)")
    train.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    train.add_argument("--resume", help="checkpoint directory, or 'latest'")
    train.add_argument("--dry-run", action="store_true", help="print the plan, load no model")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    generate = commands.add_parser(
        "generate", help="answer prompts with a base model/adapter", allow_abbrev=False
    )
    generate.add_argument("--data", required=True, help="JSONL of {instruction, input?}")
    generate.add_argument("--output", required=True, help="JSONL to write")
    generate.add_argument("--base-model", help="local model dir or hub id")
    generate.add_argument("--adapter", help="adapter directory written by train")
    generate.add_argument("--max-new-tokens", type=int, default=256)
    generate.add_argument("--batch-size", type=int, default=8)
    generate.add_argument("--sample", action="store_true", help="sample instead of greedy")
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument("--limit", type=int, help="answer only the first N records")

    lens = commands.add_parser(
        "lens", help="the tokens each critique flags (what CUT pushes down)", allow_abbrev=False
    )
    lens.add_argument("--data", required=True, help="JSONL (or JSON array) of judged records")
    lens.add_argument("--output", required=True, help="JSONL to write, one line a record")
    lens.add_argument("--base-model", help="local model dir or hub id (default: embedded)")
    lens.add_argument("--adapter", help="adapter directory written by train")
    lens.add_argument("--threshold", type=float, help="λ (default: the adapter's, or 1.1)")
    lens.add_argument("--template", default="auto", choices=["auto", "chat", "alpaca"])
    lens.add_argument("--cutoff-len", type=int, help="longest sequence in tokens")
    lens.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: the GPU if any)")
    lens.add_argument("--dtype", choices=["bfloat16", "float32"], help="default: see lens.py")

    bench = commands.add_parser(
        "bench", help="time SFT, our CUT step and the official one", allow_abbrev=False
    )
    from training import bench as bench_module

    bench_module.add_arguments(bench)

    args, extra = parser.parse_known_args(argv)
    try:
        if args.command == "train":
            # Installed before anything heavy loads: a signal while the model loads stops the
            # run before its first step instead of killing it.
            with StopSignals() as signals:
                return run_train(args, extra, signals)
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command == "generate":
            return run_generate(args)
        if args.command == "lens":
            return run_lens(args)
        bench_module.main(args)
        return 0
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run_train(
    args: argparse.Namespace, overrides: list[str], signals: StopSignals | None = None
) -> int:
    from training import data, trainer

    for item in overrides:
        if not item.startswith("--") or "=" not in item:
            raise ValueError(f"Unexpected argument {item!r}; overrides look like --name=value.")
    named = {"data": args.data}
    if args.base_model:
        named["base_model"] = args.base_model
    if args.output:
        named["output_dir"] = args.output
    if args.max_steps is not None:
        named["max_steps"] = args.max_steps
    if args.resume:
        named["resume_from"] = args.resume
    config = apply_overrides(CUTConfig(), overrides)
    config = apply_overrides(config, named)
    if args.dry_run:
        for line in data.plan(config).lines():
            print(line)
        return 0
    if config.base_model is not None:
        from training import models

        models.check_base_model(config.base_model)  # fail before anything heavy loads
    callbacks = TrainCallbacks(should_stop=signals.should_stop if signals else None)
    result = trainer.train(config, progress=not args.no_progress, callbacks=callbacks)
    if result.stopped_on_request:
        return STOPPED_EXIT_CODE  # the trainer said where the checkpoint is
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun / accelerate launch, one process reports
    numbers = {k: result.metrics[k] for k in ("steps", "loss", "l_mle", "l_ul", "flagged")}
    print(f"Done: {numbers}")
    if result.metrics["validation"]:
        print(f"Validation: {result.metrics['validation']}")
    if result.stopped_early:
        print(result.stop_reason)
    return 0


def run_generate(args: argparse.Namespace) -> int:
    from training import generate

    count = generate.generate_file(
        args.data,
        args.output,
        base_model=args.base_model,
        adapter_dir=args.adapter,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        do_sample=args.sample,
        seed=args.seed,
        limit=args.limit,
    )
    print(f"Wrote {count} responses to {args.output}.")
    return 0


def run_lens(args: argparse.Namespace) -> int:
    from training import lens

    records, skipped = lens.read_records(args.data)  # bad data fails before the model loads
    output = Path(args.output)
    if not output.parent.is_dir():
        raise ValueError(f"Cannot write {output}: directory {output.parent} does not exist.")
    if args.threshold is not None and not args.threshold > 0:
        raise ValueError(f"--threshold (λ) must be positive. Got {args.threshold}.")
    scorer = lens.LensScorer.load(
        args.base_model,
        args.adapter,
        device=args.device,
        template=args.template,
        cutoff_len=args.cutoff_len,
        dtype=args.dtype,
        log=lambda line: print(line, file=sys.stderr),
    )
    count = lens.score_file(scorer, records, output, threshold=args.threshold)
    note = f" ({skipped} records without a judgment skipped)" if skipped else ""
    print(f"Wrote the lens of {count} records to {output} with {scorer.model_name}{note}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
