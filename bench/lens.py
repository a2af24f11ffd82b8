"""`python -m bench lens`: how fast the critique lens answers, on the embedded model on the CPU.

Preview latency (20 runs each) for responses of 100, 500 and 2,000 tokens, two ways:

- first preview: nothing cached, two forward passes (the prompt with and without the
  critique), as when an annotator opens a task and presses L;
- re-preview: the critique changed, the response did not, so the pass without the critique
  comes from the scorer's cache and one forward pass remains (as while the critique is
  being edited).

Then bulk throughput (judgments/s) over the negative records of the paper's first online
round (../shared/data/cut-online-iter1.json), scored in length-sorted batches as
`manage.py lens --round N` does; skipped with a message where ../shared is missing.

    python -m bench lens [--runs 20] [--lengths 100,500,2000] [--threads N] [--dtype float32]
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cut-online-iter1.json"
INSTRUCTION = "Explain how the water cycle works, step by step."
CRITIQUE = (
    "The response says evaporation happens only over the oceans and that clouds are water "
    "vapour; both are wrong. Clouds are liquid droplets, and water also evaporates from land."
)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench lens", description=__doc__)
    parser.add_argument("--base-model", help="default: the embedded SmolLM2-135M-Instruct")
    parser.add_argument("--adapter", help="adapter directory written by train")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], help="default: lens.py's")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lengths", default="100,500,2000", help="response lengths in tokens")
    parser.add_argument("--data", default=str(SHARED_DATA), help="records for the bulk run")
    parser.add_argument("--limit", type=int, help="score at most this many records in bulk")
    args = parser.parse_args(argv)

    import torch

    from training import lens

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    scorer = lens.LensScorer.load(
        args.base_model, args.adapter, device=args.device, dtype=args.dtype, log=_err
    )
    print(
        f"Lens on {scorer.model_name}, {scorer.device}, {scorer.dtype}, "
        f"{torch.get_num_threads()} threads, template {scorer.template}, "
        f"λ {scorer.config.threshold}; loaded in {time.perf_counter() - started:.1f} s."
    )
    # Latency on a shared machine is mostly other processes' load: print it with the numbers.
    print(f"Load average before: {_load()} ({os.cpu_count()} CPUs).")
    filler = _filler_text(args.data)
    print(f"\nPreview latency over {args.runs} runs (seconds):")
    print(
        f"{'response':>16}  {'first p50':>9}  {'first p95':>9}  {'again p50':>9}  {'again p95':>9}"
    )
    for length in (int(n) for n in args.lengths.split(",")):
        output = _response_of(scorer.tokenizer, filler, length)
        first, again = [], []
        scorer.score([_record(output, CRITIQUE)])  # warm-up: allocator, kernels
        for run in range(args.runs):
            scorer.clear_cache()
            first.append(_timed(scorer, _record(output, f"{CRITIQUE} ({run})")))
            again.append(_timed(scorer, _record(output, f"{CRITIQUE} Also ({run}).")))
        [result] = scorer.score([_record(output, CRITIQUE)])
        tokens = len(result.tokens)
        print(
            f"{tokens:>9} tokens  {_p(first, 50):9.3f}  {_p(first, 95):9.3f}  "
            f"{_p(again, 50):9.3f}  {_p(again, 95):9.3f}"
        )
    _bulk(scorer, Path(args.data), args.limit)
    print(f"Load average after: {_load()}.")


def _bulk(scorer, path: Path, limit: int | None) -> None:
    if not path.is_file():
        print(f"\nBulk: skipped, {path} is missing (it lives in ../shared beside the repo).")
        return
    records = [r for r in json.loads(path.read_text()) if r.get("judgment")]
    records = records[:limit] if limit else records
    scorer.clear_cache()
    started = time.perf_counter()
    results = scorer.score(records)
    seconds = time.perf_counter() - started
    tokens = sum(len(r.tokens) for r in results)
    share = statistics.median(r.flagged_share for r in results)
    print(
        f"\nBulk: {len(records)} negative records of {path.name} ({tokens} response tokens) in "
        f"{seconds:.1f} s: {len(records) / seconds:.2f} judgments/s, {tokens / seconds:.0f} "
        f"response tokens/s; median flagged share {share:.1%}."
    )


def _timed(scorer, record: dict) -> float:
    started = time.perf_counter()
    scorer.score([record])
    return time.perf_counter() - started


def _p(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _record(output: str, judgment: str) -> dict:
    return {"instruction": INSTRUCTION, "input": "", "output": output, "judgment": judgment}


def _filler_text(data: str) -> str:
    """Real responses to cut lengths from: the paper's data where present, else a fixed text."""
    path = Path(data)
    if path.is_file():
        return "\n\n".join(r["output"] for r in json.loads(path.read_text())[:200])
    sentence = (
        "Water evaporates from the oceans, rises, cools and condenses into clouds, which "
        "release it again as rain or snow that flows back to the sea through rivers. "
    )
    return sentence * 200


def _response_of(tokenizer, text: str, tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    while len(ids) < tokens:
        ids = ids + ids
    return tokenizer.decode(ids[:tokens])


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _err(line: str) -> None:
    print(line, file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
