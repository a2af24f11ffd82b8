"""training.lens: the critique lens on tiny models with real fast tokenizers, on the CPU."""

import json
import math

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from tests.training.conftest import SPECIAL_TOKENS, make_model, make_tokenizer, wrap_tokenizer
from training import cut_step, data, lens, trainer
from training import loss as loss_module
from training.__main__ import main
from training.config import CUTConfig

pytestmark = pytest.mark.usefixtures("one_thread")

TEXTS = {
    "emoji": "Great answer 👍🏽! But the 🇫🇷 flag is wrong 😅.",
    "cjk": "東京は日本の首都です。人口は約1400万人。",
    "combining": "Cafe\u0301 and nai\u0308ve: re\u0301sume\u0301 spelled with combining accents.",
    "crlf": "First line.\r\nSecond line with an error.\r\n\r\nThird line.\r\n",
    "mixed": "Line one 😀\r\n第二行 e\u0301\r\nend",
}


def bpe_tokenizer(*, chat: bool = True) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained here on the test texts, so tokens span several characters
    (and a few split one character's bytes between them)."""
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer_ = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(list(TEXTS.values()) * 3 + ["Name a prime number."] * 3, trainer_)
    return wrap_tokenizer(core, chat=chat)


def record(output: str, judgment: str = "The flag and the numbers are wrong.") -> dict:
    return {"instruction": "Answer briefly.", "input": "", "output": output, "judgment": judgment}


def with_adapter(tokenizer, *, targets=("gate_proj", "up_proj", "down_proj")):
    model = trainer.attach_lora(
        make_model(tokenizer), CUTConfig(lora_dropout=0.0, lora_target_modules=list(targets))
    )
    with torch.no_grad():  # LoRA B starts at 0; make the adapter matter
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    return model


# --- the same flags as the trainer -----------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "cutoff"),
    [("chat", 2048), ("alpaca", 2048), ("chat", 60)],  # 60: the prompt is cut from the left
)
def test_the_lens_flags_exactly_the_tokens_the_trainers_unlikelihood_term_flags(
    template, cutoff, monkeypatch
):
    tokenizer = make_tokenizer(chat=template == "chat")
    model = with_adapter(tokenizer)
    item = record("Paris is the capital of Germany, since 1871.", "Paris is in France.")
    config = CUTConfig(template=template, cutoff_len=cutoff, lora_dropout=0.0)
    scorer = lens.LensScorer(model, tokenizer, config)
    # λ between two middle ratios (not on one), so both flagged and unflagged tokens occur
    [probe] = scorer.ratios([item], threshold=1.0)
    ordered = sorted(set(probe.log_ratios.tolist()))
    middle = len(ordered) // 2
    threshold = math.exp((ordered[middle - 1] + ordered[middle]) / 2)

    [ours] = scorer.ratios([item], threshold=threshold)
    flagged_by_trainer = []
    real_flag = loss_module.flag_inappropriate

    def spy(*args, **kwargs):
        flags = real_flag(*args, **kwargs)
        flagged_by_trainer.append(flags.clone())
        return flags

    monkeypatch.setattr(loss_module, "flag_inappropriate", spy)
    example = data.encode(lens.parse_record(1, item), tokenizer, template, cutoff)
    batch = data.make_micro_batch([example], tokenizer.pad_token_id)
    cut_step.cut_micro_step(scorer.scorer, batch, threshold=threshold, weight_unlike=1.0)

    [theirs] = flagged_by_trainer
    assert example.response_ids == ours.example.response_ids
    if cutoff < 2048:
        assert len(example.prompt_ids) + len(example.response_ids) == cutoff
    assert 0 < int(ours.flagged.sum()) < len(example.response_ids)
    assert ours.flagged.tolist() == theirs[0].tolist()
    [result] = scorer.score([item], threshold=threshold)
    shown = [t["flagged"] for t in result.tokens]
    offsets = ours.example.response_offsets
    assert shown == [
        f for f, span in zip(ours.flagged.tolist(), offsets, strict=True) if span is not None
    ]


def test_the_default_threshold_is_the_configs_lambda():
    tokenizer = make_tokenizer()
    scorer = lens.LensScorer(make_model(tokenizer), tokenizer, CUTConfig(threshold=1.7))

    [result] = scorer.score([record("Some answer.")])

    assert result.threshold == 1.7
    for token in result.tokens:
        if abs(token["log_ratio"] - math.log(1.7)) > 1e-4:  # clear of the rounding
            assert token["flagged"] == (token["log_ratio"] > math.log(1.7))


# --- offsets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["chat", "alpaca"])
@pytest.mark.parametrize("name", sorted(TEXTS))
def test_tokens_map_to_the_characters_of_the_response(template, name):
    text = TEXTS[name]
    tokenizer = bpe_tokenizer(chat=template == "chat")
    scorer = lens.LensScorer(
        make_model(tokenizer), tokenizer, CUTConfig(template=template), model_name="tiny"
    )

    [result] = scorer.score([record(text)], threshold=1e-9)  # everything flagged

    tokens = result.tokens
    assert tokens[0]["start"] == 0 and tokens[-1]["end"] == len(text)
    for before, after in zip(tokens, tokens[1:], strict=False):
        # contiguous; pieces of one character (an emoji's bytes) share its span
        assert (
            after["start"] == before["end"]
            or (after["start"] == before["start"] and after["end"] == before["end"])
            or before["start"] <= after["start"] < before["end"]
        )
    example = data.encode(
        lens.parse_record(1, record(text)), tokenizer, template, 2048, offsets=True
    )
    in_text = [
        (tid, span)
        for tid, span in zip(example.response_ids, example.response_offsets, strict=True)
        if span
    ]
    assert len(in_text) == len(tokens)
    for token_id, (start, end) in in_text:
        piece = tokenizer.decode([token_id])
        if "\ufffd" not in piece:  # a whole character or more: the text must be the same
            assert text[start:end] == piece
    assert "".join(text[s:e] for s, e in _distinct(in_text)) == text
    assert result.flagged_spans == [[0, len(text)]] and result.flagged_share == 1.0
    assert len(example.response_ids) > len(tokens)  # the end of turn / EOS is not shown


def _distinct(in_text):
    seen = []
    for _, span in in_text:
        if not seen or span[0] >= seen[-1][1]:
            seen.append(span)
    return seen


def test_an_emoji_split_between_tokens_is_one_span():
    tokenizer = make_tokenizer()  # one token per byte: 👍 is four tokens
    tokens = [
        {"start": 0, "end": 2, "flagged": False},
        {"start": 2, "end": 3, "flagged": True},
        {"start": 2, "end": 3, "flagged": False},
        {"start": 3, "end": 5, "flagged": False},
        {"start": 5, "end": 7, "flagged": True},
        {"start": 7, "end": 8, "flagged": True},
        {"start": 9, "end": 10, "flagged": True},
    ]
    assert lens.merge_spans(tokens) == [[2, 3], [5, 10]]
    scorer = lens.LensScorer(make_model(tokenizer), tokenizer)
    [result] = scorer.score([record("ok 👍")], threshold=1e-9)
    assert [(t["start"], t["end"]) for t in result.tokens] == [(0, 1), (1, 2), (2, 3)] + [
        (3, 4)
    ] * 4


# --- the API ---------------------------------------------------------------------------------


def test_results_come_back_in_order_batched_by_length_and_serialise(monkeypatch):
    tokenizer = make_tokenizer()
    scorer = lens.LensScorer(make_model(tokenizer), tokenizer, model_name="tiny")
    items = [record("short."), record("a much longer response " * 8), record("mid length one")]
    alone = [scorer.score([item])[0] for item in items]
    monkeypatch.setattr(lens, "BATCH_TOKENS", 100_000)
    scorer.clear_cache()

    together = scorer.score(items)

    for one, many, item in zip(alone, together, items, strict=True):
        assert many.tokens[-1]["end"] == len(item["output"])
        assert [t["flagged"] for t in one.tokens] == [t["flagged"] for t in many.tokens]
        for a, b in zip(one.tokens, many.tokens, strict=True):
            assert a["log_ratio"] == pytest.approx(b["log_ratio"], abs=1e-3)
    payload = json.loads(json.dumps(together[0].to_dict()))
    assert set(payload) >= {"flagged_spans", "flagged_share", "tokens", "model", "threshold"}
    assert payload["model"] == "tiny"


def test_a_second_preview_of_the_same_response_reuses_the_pass_without_critique(monkeypatch):
    tokenizer = make_tokenizer()
    scorer = lens.LensScorer(make_model(tokenizer), tokenizer)
    first = scorer.score([record("The answer is 42.", "Wrong number.")])[0]
    passes = []
    real = scorer._logprobs
    monkeypatch.setattr(scorer, "_logprobs", lambda rows: passes.append(rows) or real(rows))

    again = scorer.score([record("The answer is 42.", "Wrong number.")])[0]
    edited = scorer.score([record("The answer is 42.", "The number should be 41.")])[0]

    assert len(passes) == 2  # one pass each: the critique's
    assert again == first
    assert edited.tokens != first.tokens


def test_a_record_without_a_critique_is_refused_with_its_number():
    tokenizer = make_tokenizer()
    scorer = lens.LensScorer(make_model(tokenizer), tokenizer)

    with pytest.raises(ValueError, match="record 2: the record has no judgment"):
        scorer.score([record("fine"), {**record("fine"), "judgment": "  "}])
    with pytest.raises(ValueError, match="record 1: the record has no output"):
        scorer.score([record("")])


def test_a_long_response_is_scored_up_to_the_cutoff_and_says_so():
    tokenizer = make_tokenizer()
    scorer = lens.LensScorer(make_model(tokenizer), tokenizer, CUTConfig(cutoff_len=30))

    [result] = scorer.score([record("x" * 100)])

    assert result.truncated
    assert len(result.tokens) == 29 and result.tokens[-1]["end"] == 29


def test_training_and_the_model_mode_are_left_as_they_were():
    tokenizer = make_tokenizer()
    model = with_adapter(tokenizer)
    model.train()
    lens.LensScorer(model, tokenizer).score([record("text")])
    assert model.training


# --- loading and the command ------------------------------------------------------------------


@pytest.fixture
def judged_file(tmp_path):
    records = [
        {"id": 1, **record("Berlin is the capital of France.", "It is Paris.")},
        {"id": 2, **record("All good here.", None)},
        {"id": 3, **record("東京 😅\r\nTwo lines.", "Say which city.")},
    ]
    path = tmp_path / "judged.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


def test_the_command_writes_one_line_per_judged_record(judged_file, model_dir, tmp_path, capsys):
    out = tmp_path / "lens.jsonl"

    code = main(
        [
            "lens",
            f"--data={judged_file}",
            f"--base-model={model_dir}",
            f"--output={out}",
            "--threshold=1.05",
            "--dtype=float32",
        ]
    )

    assert code == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == [1, 3]
    for line in lines:
        assert line["threshold"] == 1.05 and line["model"] == str(model_dir)
        assert {"flagged_spans", "flagged_share", "tokens"} <= set(line)
        assert {"start", "end", "log_ratio", "flagged"} == set(line["tokens"][0])
    assert lines[1]["tokens"][-1]["end"] == len("東京 😅\r\nTwo lines.")
    assert "1 records without a judgment skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("--data=/nowhere/x.jsonl", "Data file /nowhere/x.jsonl does not exist"),
        ("--output=/nowhere/out.jsonl", "directory /nowhere does not exist"),
        ("--base-model=/nowhere/model", "Base model '/nowhere/model' does not exist"),
        ("--adapter=/nowhere/adapter", "Adapter directory /nowhere/adapter does not exist"),
        ("--threshold=0", "must be positive"),
    ],
)
def test_bad_paths_fail_before_the_model_loads(
    judged_file, tmp_path, monkeypatch, capsys, argument, message
):
    from training import models

    monkeypatch.setattr(models, "load_model_and_tokenizer", pytest.fail)
    args = {"--data": str(judged_file), "--output": str(tmp_path / "out.jsonl")}
    key, _, value = argument.partition("=")
    args[key] = value

    code = main(["lens", *(f"{k}={v}" for k, v in args.items())])

    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_loading_with_an_adapter_takes_its_lambda_template_and_name(
    triples_file, model_dir, tmp_path
):
    out = tmp_path / "adapter"
    assert (
        main(
            [
                "train",
                f"--data={triples_file}",
                f"--base-model={model_dir}",
                f"--output={out}",
                "--max-steps=1",
                "--no-progress",
                "--threshold=1.3",
                "--template=alpaca",
                "--cutoff_len=512",
            ]
        )
        == 0
    )

    scorer = lens.LensScorer.load(adapter=str(out), log=lambda _: None, dtype="float32")

    assert scorer.config.threshold == 1.3 and scorer.template == "alpaca"
    assert scorer.config.cutoff_len == 512
    # frozen like the base model in training, so the LM head takes the trainer's kernel
    assert not any(p.requires_grad for p in scorer.model.parameters())
    assert scorer.model_name == f"{model_dir} + {out}"
    [result] = scorer.score([record("An answer.")])
    assert result.threshold == 1.3 and result.model == scorer.model_name


def test_offsets_hold_with_the_embedded_smollm2_tokenizer():
    """The tokenizer the lens actually runs with by default (a GPT-2 style byte-level BPE
    with a chat template), where it is installed."""
    from training import models

    try:
        tokenizer = models.load_tokenizer(None)
    except ValueError as error:
        pytest.skip(str(error))
    for text in TEXTS.values():
        for template in ("chat", "alpaca"):
            example = data.encode(
                lens.parse_record(1, record(text)), tokenizer, template, 2048, offsets=True
            )
            spans = [span for span in example.response_offsets if span]
            assert spans[0][0] == 0 and spans[-1][1] == len(text)
            for token_id, span in zip(example.response_ids, example.response_offsets, strict=True):
                piece = tokenizer.decode([token_id])
                if span and "\ufffd" not in piece:
                    assert text[span[0] : span[1]] == piece


@pytest.mark.slow
def test_the_embedded_model_scores_a_critique_by_default():
    try:
        scorer = lens.LensScorer.load(log=lambda _: None)
    except ValueError as error:  # the embedded model's wheel is not installed here
        pytest.skip(str(error))
    output = (
        "The capital of Australia is Sydney, its largest city. 🇦🇺\r\nIt has 26 million people."
    )
    item = record(output, "Wrong: the capital is Canberra, not Sydney.")

    [result] = scorer.score([item])

    assert scorer.model_name == "embedded:SmolLM2-135M-Instruct"
    assert result.threshold == 1.1 and result.model == scorer.model_name
    assert result.tokens[0]["start"] == 0 and result.tokens[-1]["end"] == len(output)
    assert 0 <= result.flagged_share <= 1
    for start, end in result.flagged_spans:
        assert 0 <= start < end <= len(output)
