"""training.data: reading triples, the three views, downsampling, batching, the plan."""

import json

import pytest
import torch

from tests.training.conftest import triple, write_jsonl
from training import data
from training.config import CUTConfig


def test_it_reads_the_export_format_where_the_verdict_wins(tmp_path):
    path = write_jsonl(
        tmp_path / "t.jsonl",
        [
            triple(0, negative=True),
            # A positive judgment with a note: still positive, and the note is not used.
            {**triple(1, negative=False), "judgment": "Fine, a bit long."},
            triple(2, negative=False),
        ],
    )

    records = data.read_triples(path)

    assert [r.negative for r in records] == [True, False, False]
    assert records[0].judgment.startswith("Wrong")
    assert records[1].judgment is None
    assert records[2].where == f"{path}, line 3"


def test_it_reads_the_papers_json_array_where_null_is_positive(tmp_path):
    path = tmp_path / "paper.json"
    path.write_text(
        json.dumps(
            [
                {"id": 0, "instruction": "a", "input": "", "output": "b", "judgment": None},
                {"id": 1, "instruction": "a", "input": "x", "output": "b", "judgment": "Bad."},
                {"id": 2, "instruction": "a", "output": "b", "judgment": "Ok.", "score": 8},
            ],
            indent=2,
        )
    )

    records = data.read_triples(path)

    assert [r.negative for r in records] == [False, True, False]
    assert records[1].input == "x"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "has no records: export some judgments first"),
        ("\n\n", "has no records"),
        ('{"instruction": "a", "output": "b"}\n{"instruction": "a"\n', "line 2: not valid JSON"),
        ('{"instruction": "a", "judgment": null}\n', "line 1: the record has no output"),
        ('{"instruction": "a", "output": "  "}\n', "line 1: the record has no output"),
        ('{"output": "b"}\n', "line 1: the record has no instruction"),
        ('{"instruction": "a", "output": "b", "verdict": "negative"}\n', "needs its judgment"),
        ('{"instruction": "a", "output": "b", "verdict": "meh"}\n', "verdict must be"),
        ("[1, 2]\n", "record 1: expected a JSON object"),
        ('[{"instruction": "a",\n "output": }]', "line 2: not valid JSON"),
    ],
)
def test_bad_files_fail_naming_the_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)

    with pytest.raises(ValueError) as caught:
        data.read_triples(path)

    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def encoded(tokenizer, negative=True, **extra):
    record = data._parse("test", triple(4, negative=negative, **extra))
    return data.encode(record, tokenizer, "chat", cutoff=2048)


def test_align_n_and_misalign_views_share_the_response_tokens(tokenizer):
    example = encoded(tokenizer)
    batch = data.make_micro_batch([example], tokenizer.pad_token_id)

    (judged_prompt, judged_response) = batch.like_rows[batch.judged_rows[0]]
    (plain_prompt, plain_response) = batch.misalign_rows[0]

    assert judged_response == plain_response == example.response_ids
    assert "Judgment" in tokenizer.decode(judged_prompt)
    assert "Judgment" not in tokenizer.decode(plain_prompt)
    assert torch.equal(batch.like.targets, batch.misalign.targets)


def test_only_response_tokens_are_scored(tokenizer):
    batch = data.make_micro_batch(
        [encoded(tokenizer), encoded(tokenizer, negative=False)], tokenizer.pad_token_id
    )
    view = batch.like

    flat = view.input_ids.reshape(-1)
    # Each scored position is the token right before a response token...
    assert torch.equal(flat[view.positions + 1], view.targets)
    # ...and the scored tokens are exactly the responses: no prompt token gets a loss.
    responses = [r for _, r in batch.like_rows]
    assert view.targets.tolist() == [t for r in responses for t in r]
    assert view.mask.sum() == sum(len(r) for r in responses)
    assert view.tokens == sum(len(p) + len(r) for p, r in batch.like_rows)


def test_a_long_prompt_is_cut_from_the_left_in_both_views(tokenizer):
    record = data._parse("test", triple(1, negative=True, instruction="word " * 300))

    example = data.encode(record, tokenizer, "chat", cutoff=256)
    full = data.encode(record, tokenizer, "chat", cutoff=100_000)

    assert example.truncated
    assert example.response_ids == full.response_ids
    assert len(example.prompt_ids) + len(example.response_ids) == 256
    assert len(example.judged_ids) + len(example.response_ids) == 256
    assert example.judged_ids == full.judged_ids[-len(example.judged_ids) :]


def records(positives, negatives):
    items = [triple(i, negative=False) for i in range(positives)]
    items += [triple(100 + i, negative=True) for i in range(negatives)]
    return [data._parse(f"r{i}", r) for i, r in enumerate(items)]


def test_downsampling_keeps_a_quarter_of_the_negatives_count_chosen_by_seed():
    triples = records(40, 20)

    kept = data.downsample_positives(triples, 0.25, seed=42)
    again = data.downsample_positives(triples, 0.25, seed=42)
    other = data.downsample_positives(triples, 0.25, seed=7)

    assert sum(not t.negative for t in kept) == 5
    assert sum(t.negative for t in kept) == 20
    assert kept == again
    assert kept != other


def test_downsampling_minus_one_or_no_negatives_keeps_everything():
    assert len(data.downsample_positives(records(40, 20), -1, seed=42)) == 60
    assert len(data.downsample_positives(records(40, 0), 0.25, seed=42)) == 40


def test_the_holdout_takes_both_verdicts_and_none_from_tiny_data():
    triples = records(150, 50)

    train, holdout = data.split_holdout(triples, 0.05, min_records=100, seed=42)

    assert (sum(not t.negative for t in holdout), sum(t.negative for t in holdout)) == (8, 2)
    assert len(train) + len(holdout) == 200 and not set(map(id, train)) & set(map(id, holdout))
    assert data.split_holdout(triples[:50], 0.05, min_records=100, seed=42)[1] == []


def test_micro_batches_depend_only_on_seed_and_epoch_and_group_lengths():
    lengths = [(i * 37) % 500 + 10 for i in range(256)]

    first = data.micro_batches(lengths, 8, seed=42, epoch=0)
    again = data.micro_batches(lengths, 8, seed=42, epoch=0)
    next_epoch = data.micro_batches(lengths, 8, seed=42, epoch=1)
    ungrouped = data.micro_batches(lengths, 8, seed=42, epoch=0, group_by_length=False)

    assert first == again and first != next_epoch
    assert sorted(i for b in first for i in b) == list(range(256))

    def padding(batches):
        return sum(
            max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches
        )

    assert padding(first) < padding(ungrouped) / 5


def test_the_plan_counts_views_and_steps(triples_file, tokenizer):
    config = CUTConfig(data=str(triples_file), gradient_accumulation_steps=2, downsample=0.5)

    plan = data.plan(config, tokenizer)

    assert (plan.records, plan.positives, plan.negatives) == (12, 8, 4)
    assert (plan.align_p, plan.align_n, plan.misalign) == (2, 4, 4)  # 0.5 x 4 negatives
    assert plan.steps == 3 and plan.micro_batches == 6
    assert plan.template == "chat" and plan.tokens > 0 and plan.truncated == 0
    assert not plan.sft_only
    assert any("6 Align" not in line and "Align-P" in line for line in plan.lines())


def test_the_plan_says_when_there_is_no_negative_record(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [triple(i, negative=False) for i in range(5)])

    plan = data.plan(CUTConfig(data=str(path)))

    assert plan.sft_only and plan.align_p == 5
    assert any("plain supervised fine-tuning (SFT)" in w for w in plan.warnings)
    assert plan.tokens is None  # no tokenizer, no token count


def test_max_steps_caps_the_plan(triples_file):
    plan = data.plan(CUTConfig(data=str(triples_file), max_steps=1, gradient_accumulation_steps=1))

    assert plan.steps == 1


def test_length_groups_bound_the_padding_of_each_pass():
    rows = [([0] * n, [1] * 10) for n in (90, 40, 88, 45, 60, 91)]
    lengths = [len(p) + len(r) for p, r in rows]

    groups = data.length_groups(rows, 0.05)

    assert sorted(i for g in groups for i in g) == list(range(6))
    for group in groups:
        longest = max(lengths[i] for i in group)
        assert 1 - sum(lengths[i] for i in group) / (longest * len(group)) <= 0.05
    assert groups == [[5, 0, 2], [4], [3, 1]]  # longest first
    assert data.length_groups(rows, 1.0) == [[5, 0, 2, 4, 3, 1]]
