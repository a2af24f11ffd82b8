"""training.bench: its official-style step computes our loss, and the table comes out."""

import argparse

import pytest
import torch

from training import bench, cut_step, logprobs
from training import data as data_module

pytestmark = pytest.mark.usefixtures("one_thread")


def bench_args(**changes) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args([])
    settings = {
        "preset": "tiny",
        "records": 4,
        "prompt_tokens": 12,
        "judgment_tokens": 5,
        "response_tokens": 10,
        "device": "cpu",
    }
    for name, value in {**settings, **changes}.items():
        setattr(args, name, value)
    return args


def grads_of(model) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def test_the_official_restatement_gives_our_loss_and_gradients():
    args = bench_args()
    model = bench.build_model(args, torch.device("cpu"), torch.float32).eval()  # no dropout
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    examples = bench.synthetic_examples(args, bench.PRESETS["tiny"]["vocab_size"])
    batch = data_module.make_micro_batch(examples, pad_id=0)
    scorer = logprobs.ResponseScorer(model, chunk_size=16, dtype=torch.float32)
    options = {"threshold": 1.001, "weight_unlike": 1.0}

    ours = cut_step.cut_micro_step(scorer, batch, max_padding=0.05, **options)
    ours_grads = grads_of(model)
    official_loss, _ = bench.official_step(
        model,
        examples,
        bench.logprobs.autocast_for(torch.device("cpu"), torch.float32),
        "cpu",
        **options,
    )
    official_grads = grads_of(model)

    assert sum(e.negative for e in examples) == 3
    assert 0 < ours.flagged_tokens < ours.misalign_tokens
    assert ours.loss == pytest.approx(official_loss, rel=1e-5)
    for name, grad in official_grads.items():
        assert torch.allclose(ours_grads[name], grad, atol=1e-6, rtol=1e-4), name


def test_synthetic_records_have_the_requested_shape():
    args = bench_args(records=8, prompt_tokens=200, judgment_tokens=60, response_tokens=400)

    examples = bench.synthetic_examples(args, 1000)

    assert sum(e.negative for e in examples) == 6
    for e in examples:
        assert 150 <= len(e.prompt_ids) <= 250 and 300 <= len(e.response_ids) <= 500
        if e.negative:
            assert 45 <= len(e.judged_ids) - len(e.prompt_ids) <= 75


@pytest.mark.slow
def test_the_bench_prints_one_row_per_variant(capsys):
    args = bench_args(
        variants="sft,cut,official", repeats=1, warmup=0, rounds=1, threads=1, variant=None
    )

    bench.main(args)

    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].startswith("preset tiny on CPU")
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"sft", "cut", "official"}
    assert rows["sft"][5] == "1.00" and rows["official"][6] == "1.00"
    assert all(row[-1] == "yes" for row in rows.values())
    # cut and official compute the same loss on the same batch and weights
    assert float(rows["cut"][-2]) == pytest.approx(float(rows["official"][-2]), rel=1e-4)
