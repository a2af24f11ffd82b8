"""Judgment triples -> encoded records -> micro-batches of CUT views.

Input is the JSONL export of DESIGN.md, one object a line:
    {"id", "instruction", "input", "output", "judgment": str|null, "verdict", ...}
The paper's JSON array files (`cut-online-iter1.json`) are read too. A record is negative
when its `verdict` says so; without a verdict, when it has a judgment (null = positive), and
a `score` of 7 or more makes it positive, as in the official code.

Each record gives the views of CUT.md §2: a positive record one Align-P view (prompt T(x)),
a negative record an Align-N view (T(x, j)) and a Misalign view (T(x)) that share the same
response tokens.
"""

import hashlib
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from training import templates
from training.config import CUTConfig

# Records kept apart for validation are picked with this offset from the seed, so the split
# does not change when the downsampling seed logic does.
_HOLDOUT_SALT = 1_000_003


@dataclass(frozen=True)
class Triple:
    id: object  # whatever the file had (int, str or None)
    instruction: str
    input: str
    output: str
    judgment: str | None  # the critique of a negative record; None for positives
    negative: bool
    where: str  # "FILE, line N" for error messages


def read_triples(path: str | Path) -> list[Triple]:
    """Read and check every record; ValueError naming the line (or record) on bad input."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"Data file {path} does not exist.") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error.reason}).") from None
    triples = [_parse(where, record) for where, record in _records(path, text)]
    if not triples:
        raise ValueError(f"{path} has no records: export some judgments first.")
    return triples


def _records(path: Path, text: str) -> Iterator[tuple[str, object]]:
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path}, line {error.lineno}: not valid JSON ({error.msg})."
            ) from None
        for number, item in enumerate(items, start=1):
            yield f"{path}, record {number}", item
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
        yield f"{path}, line {number}", item


def _parse(where: str, record: object) -> Triple:
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object with instruction and output.")
    instruction = record.get("instruction")
    output = record.get("output")
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError(f"{where}: the record has no instruction.")
    if not isinstance(output, str) or not output.strip():
        raise ValueError(f"{where}: the record has no output (the response to learn from).")
    input_text = record.get("input") or ""
    if not isinstance(input_text, str):
        raise ValueError(f"{where}: input must be text.")
    judgment = record.get("judgment")
    if judgment is not None and not isinstance(judgment, str):
        raise ValueError(f"{where}: judgment must be text or null.")
    verdict = record.get("verdict")
    if verdict is not None:
        if verdict not in ("positive", "negative"):
            raise ValueError(
                f"{where}: verdict must be 'positive' or 'negative'. Got {verdict!r}."
            )
        negative = verdict == "negative"
    else:
        score = record.get("score")
        negative = judgment is not None and not (
            isinstance(score, int | float) and not isinstance(score, bool) and score >= 7
        )
    if negative and (judgment is None or not judgment.strip()):
        raise ValueError(
            f"{where}: a negative record needs its judgment (the critique) to train with."
        )
    return Triple(
        id=record.get("id"),
        instruction=instruction,
        input=input_text,
        output=output,
        judgment=judgment if negative else None,
        negative=negative,
        where=where,
    )


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- selecting records -------------------------------------------------------------------


def split_holdout(
    triples: list[Triple], fraction: float, min_records: int, seed: int
) -> tuple[list[Triple], list[Triple]]:
    """(train, holdout): the same fraction of positives and of negatives, picked by seed.

    Data smaller than min_records gets no holdout: a handful of records would be a noisy
    validation set and a real loss for training.
    """
    if fraction <= 0 or len(triples) < min_records:
        return list(triples), []
    rng = random.Random(seed + _HOLDOUT_SALT)
    held: set[int] = set()
    for negative in (False, True):
        indices = [i for i, t in enumerate(triples) if t.negative == negative]
        count = round(len(indices) * fraction)
        if len(indices) >= 2:
            count = max(count, 1)
        held.update(rng.sample(indices, min(count, len(indices) - 1)) if indices else [])
    train = [t for i, t in enumerate(triples) if i not in held]
    holdout = [t for i, t in enumerate(triples) if i in held]
    return train, holdout


def downsample_positives(triples: list[Triple], ratio: float, seed: int) -> list[Triple]:
    """Keep at most int(ratio x negatives) positives, chosen by seed; ratio -1 keeps all.

    As in the official code. With no negative record at all there is nothing to balance
    against (the run is plain SFT), so every positive is kept.
    """
    negatives = sum(t.negative for t in triples)
    positives = [i for i, t in enumerate(triples) if not t.negative]
    keep = int(negatives * ratio)
    if ratio == -1 or negatives == 0 or keep >= len(positives):
        return list(triples)
    kept = set(random.Random(seed).sample(positives, keep))
    return [t for i, t in enumerate(triples) if t.negative or i in kept]


# --- encoding ----------------------------------------------------------------------------


@dataclass
class Example:
    """One record's token ids; the views are built from these at batching time."""

    negative: bool
    prompt_ids: list[int]  # T(x), already cut from the left to fit the cutoff
    judged_ids: list[int] | None  # T(x, j) for a negative record, cut the same way
    response_ids: list[int]  # the same tokens in every view of the record
    truncated: bool = False
    # [start, end) of each response token in the record's output, None for tokens outside
    # it (end of turn, EOS); filled only when encoded with offsets (the lens)
    response_offsets: list[tuple[int, int] | None] | None = None

    @property
    def tokens(self) -> int:
        """Tokens over all of the record's views (what a step has to process)."""
        total = len(self.prompt_ids) + len(self.response_ids)
        if self.judged_ids is not None:
            total += len(self.judged_ids) + len(self.response_ids)
        return total


def encode(
    triple: Triple, tokenizer, template: str, cutoff: int, *, offsets: bool = False
) -> Example:
    """A record's token ids as every view uses them (templates, then left truncation).

    offsets=True also maps each response token to its characters in triple.output (the
    lens); the ids are the same either way.
    """
    plain_text = templates.build_prompt(
        tokenizer, triple.instruction, triple.input, None, template
    )
    plain = templates.encode_prompt(tokenizer, plain_text, template)
    spans = None
    if offsets:
        response, spans = templates.encode_response_with_offsets(
            tokenizer, plain_text, plain, triple.output, template
        )
    else:
        response = templates.encode_response(tokenizer, plain_text, plain, triple.output, template)
    prompt, cut_response = templates.fit_to_cutoff(plain, response, cutoff)
    truncated = len(prompt) < len(plain) or len(cut_response) < len(response)
    judged = None
    if triple.negative:
        judged_text = templates.build_prompt(
            tokenizer, triple.instruction, triple.input, triple.judgment, template
        )
        judged_full = templates.encode_prompt(tokenizer, judged_text, template)
        # The response is cut (if at all) by its own length only, so both views keep
        # identical response tokens.
        judged, _ = templates.fit_to_cutoff(judged_full, response, cutoff)
        truncated = truncated or len(judged) < len(judged_full)
    if spans is not None:
        spans = spans[: len(cut_response)]
    return Example(triple.negative, prompt, judged, cut_response, truncated, spans)


# --- batching ----------------------------------------------------------------------------


def micro_batches(
    lengths: Sequence[int],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    group_by_length: bool = True,
) -> list[list[int]]:
    """The epoch's micro-batches as lists of record indices; a function of (seed, epoch).

    With length grouping, records are shuffled, cut into windows of 64 micro-batches,
    sorted by length inside each window and chunked, so a micro-batch holds records of
    similar length (little padding); the micro-batch order is then shuffled again.
    """
    rng = random.Random(seed * 7919 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if batch_size == 1:
        return [[i] for i in order]
    if group_by_length:
        window = batch_size * 64
        grouped: list[int] = []
        for start in range(0, len(order), window):
            chunk = order[start : start + window]
            grouped.extend(sorted(chunk, key=lambda i: lengths[i], reverse=True))
        order = grouped
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        rng.shuffle(batches)
    return batches


def length_groups(
    rows: Sequence[tuple[list[int], list[int]]], max_padding: float
) -> list[list[int]]:
    """Cut rows into groups of similar length, longest first, for separate padded passes.

    A group grows while at most `max_padding` of its padded tokens would be padding;
    max_padding >= 1 keeps every row in one group. Fewer padded tokens means less compute
    (every position of a padded batch is computed) at the price of more, smaller passes.
    """
    lengths = [len(p) + len(r) for p, r in rows]
    order = sorted(range(len(rows)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups:
            group = groups[-1]
            real = sum(lengths[j] for j in group) + lengths[i]
            padded = lengths[group[0]] * (len(group) + 1)
            if max_padding >= 1 or 1 - real / padded <= max_padding:
                group.append(i)
                continue
        groups.append([i])
    return groups


@dataclass
class ViewBatch:
    """Right-padded sequences of one kind of view and where their response tokens are."""

    input_ids: Tensor  # (B, T)
    attention_mask: Tensor  # (B, T) 1 on real tokens
    positions: Tensor  # (N,) flat index into B*T of the hidden state predicting each token
    targets: Tensor  # (N,) the response tokens, row by row
    mask: Tensor  # (B, R) bool, True where row b has its r-th response token
    tokens: int  # real (non-padding) tokens

    def to(self, device: torch.device | str) -> "ViewBatch":
        return ViewBatch(
            self.input_ids.to(device, non_blocking=True),
            self.attention_mask.to(device, non_blocking=True),
            self.positions.to(device, non_blocking=True),
            self.targets.to(device, non_blocking=True),
            self.mask.to(device, non_blocking=True),
            self.tokens,
        )


def view_batch(
    rows: Sequence[tuple[list[int], list[int]]], pad_id: int, pad_to_multiple_of: int = 1
) -> ViewBatch:
    """Pad (prompt_ids, response_ids) rows on the right and index their response tokens."""
    width = max(len(p) + len(r) for p, r in rows)
    width = math.ceil(width / pad_to_multiple_of) * pad_to_multiple_of
    longest = max(len(r) for _, r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.bool)
    positions, targets = [], []
    for b, (prompt, response) in enumerate(rows):
        n = len(prompt) + len(response)
        input_ids[b, :n] = torch.tensor(prompt + response, dtype=torch.long)
        attention_mask[b, :n] = 1
        mask[b, : len(response)] = True
        # The hidden state at position i predicts token i + 1.
        start = b * width + len(prompt) - 1
        positions.extend(range(start, start + len(response)))
        targets.extend(response)
    return ViewBatch(
        input_ids,
        attention_mask,
        torch.tensor(positions, dtype=torch.long),
        torch.tensor(targets, dtype=torch.long),
        mask,
        int(attention_mask.sum()),
    )


@dataclass
class MicroBatch:
    """The views of a few records: what one forward/backward pass of CUT consumes."""

    like_rows: list[tuple[list[int], list[int]]]  # Align-P and Align-N views
    misalign_rows: list[tuple[list[int], list[int]]]  # Misalign views of the negatives
    judged_rows: list[int]  # for each Misalign row, its Align-N row in like_rows
    records: int
    negatives: int
    pad_id: int
    pad_to_multiple_of: int = 1
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def like(self) -> ViewBatch:
        if "like" not in self._cache:
            self._cache["like"] = view_batch(self.like_rows, self.pad_id, self.pad_to_multiple_of)
        return self._cache["like"]

    @property
    def misalign(self) -> ViewBatch | None:
        if not self.misalign_rows:
            return None
        if "misalign" not in self._cache:
            self._cache["misalign"] = view_batch(
                self.misalign_rows, self.pad_id, self.pad_to_multiple_of
            )
        return self._cache["misalign"]

    @property
    def tokens(self) -> int:
        rows = self.like_rows + self.misalign_rows
        return sum(len(p) + len(r) for p, r in rows)


def make_micro_batch(
    examples: Sequence[Example], pad_id: int, pad_to_multiple_of: int = 1
) -> MicroBatch:
    like_rows, misalign_rows, judged_rows = [], [], []
    for example in examples:
        if example.negative:
            judged_rows.append(len(like_rows))
            like_rows.append((example.judged_ids, example.response_ids))
            misalign_rows.append((example.prompt_ids, example.response_ids))
        else:
            like_rows.append((example.prompt_ids, example.response_ids))
    return MicroBatch(
        like_rows,
        misalign_rows,
        judged_rows,
        records=len(examples),
        negatives=len(misalign_rows),
        pad_id=pad_id,
        pad_to_multiple_of=pad_to_multiple_of,
    )


# --- the plan of a run -------------------------------------------------------------------


def _count(n: int, one: str, many: str | None = None) -> str:
    """ "1 optimizer step", "2 optimizer steps"."""
    return f"{n} {one if n == 1 else many or one + 's'}"


@dataclass
class Plan:
    """What a run will do, computed without a model (for --dry-run and the run log)."""

    data: str
    records: int  # in the file
    positives: int
    negatives: int
    holdout_positives: int
    holdout_negatives: int
    align_p: int  # training positives kept after downsampling
    align_n: int  # training negatives (each also gives a Misalign view)
    micro_batches: int  # per epoch and process
    steps: int  # optimizer steps of the whole run
    template: str | None  # resolved template (None without a tokenizer)
    tokens: int | None  # tokens over all training views of one epoch (None without tokenizer)
    truncated: int | None  # training records cut to fit cutoff_len
    sft_only: bool  # no negative record: plain supervised fine-tuning
    warnings: list[str] = field(default_factory=list)

    @property
    def misalign(self) -> int:
        return self.align_n

    def lines(self) -> list[str]:
        held = self.holdout_positives + self.holdout_negatives
        lines = [
            f"Data: {self.data}: {self.records} records "
            f"({self.positives} positive, {self.negatives} negative).",
            (
                f"Holdout: {held} records ({self.holdout_positives} positive, "
                f"{self.holdout_negatives} negative)."
                if held
                else "Holdout: none (too few records)."
            ),
            f"Training views: {self.align_p} Align-P (after downsampling), {self.align_n} "
            f"Align-N, {self.align_n} Misalign.",
            f"Steps: {_count(self.steps, 'optimizer step')} "
            f"({_count(self.micro_batches, 'micro-batch', 'micro-batches')} an epoch).",
        ]
        if self.template is not None:
            lines.append(
                f"Template: {self.template}; {self.tokens} tokens an epoch, "
                f"{self.truncated} records cut to fit the cutoff."
            )
        return lines + [f"Warning: {w}" for w in self.warnings]


@dataclass
class Prepared:
    """Everything the trainer needs from the data, and the plan describing it."""

    plan: Plan
    train: list[Triple]
    holdout: list[Triple]
    train_examples: list[Example] | None  # None when prepared without a tokenizer


def prepare(config: CUTConfig, tokenizer=None, *, world_size: int = 1) -> Prepared:
    if not config.data:
        raise ValueError("No data: set `data` to a JSONL file of judgment triples.")
    triples = read_triples(config.data)
    train, holdout = split_holdout(
        triples, config.holdout_fraction, config.holdout_min_records, config.seed
    )
    train = downsample_positives(train, config.downsample, config.seed)
    negatives = sum(t.negative for t in triples)
    warnings = []
    if negatives == 0:
        warnings.append(
            "no negative record: this is plain supervised fine-tuning (SFT) on approved "
            "responses, not CUT (there is nothing to learn what to avoid from)."
        )
    per_epoch = math.ceil(len(train) / config.micro_batch_size)
    per_process = math.ceil(per_epoch / world_size)
    steps = math.ceil(per_process / config.gradient_accumulation_steps) * config.num_epochs
    if config.max_steps:
        steps = min(steps, config.max_steps)
    if config.warmup_steps > steps:
        warnings.append(
            f"warm-up ({config.warmup_steps} steps) is longer than the run ({steps} steps): "
            "the learning rate never reaches its peak (as in the paper's own runs)."
        )
    template = tokens = truncated = examples = None
    if tokenizer is not None:
        template = templates.resolve_template(tokenizer, config.template)
        examples = [encode(t, tokenizer, template, config.cutoff_len) for t in train]
        tokens = sum(e.tokens for e in examples)
        truncated = sum(e.truncated for e in examples)
    plan = Plan(
        data=str(config.data),
        records=len(triples),
        positives=len(triples) - negatives,
        negatives=negatives,
        holdout_positives=sum(not t.negative for t in holdout),
        holdout_negatives=sum(t.negative for t in holdout),
        align_p=sum(not t.negative for t in train),
        align_n=sum(t.negative for t in train),
        micro_batches=per_epoch,
        steps=steps,
        template=template,
        tokens=tokens,
        truncated=truncated,
        sft_only=negatives == 0,
        warnings=warnings,
    )
    return Prepared(plan, train, holdout, examples)


def plan(config: CUTConfig, tokenizer=None) -> Plan:
    """The run's plan: counts after holdout and downsampling, tokens, steps (no model)."""
    return prepare(config, tokenizer).plan
