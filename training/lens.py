"""The critique lens: which tokens of a response a critique implicates, i.e. what CUT pushes down.

For a record (instruction, input, response y, critique j) and a model, each response token
gets log p(y_t | T(x, j), y_<t) - log p(y_t | T(x), y_<t): how much more likely the model
finds it once it has read the critique. CUT's unlikelihood term flags a token when that log
ratio exceeds log λ (CUT.md §3). The lens computes it with the trainer's own code, so what it
shows is what training would do with the same weights:

- data.encode: the same templates, tokenization and left truncation at the cutoff;
- ResponseScorer / view_logprobs: the same log-prob kernel (hidden states at response
  positions, LM head in chunks), here under torch.inference_mode;
- loss.flag_inappropriate: the same decision, and λ from the same CUTConfig.

Then each token is mapped to its characters in the response (the tokenizer's offset mapping
of the very tokenization the trainer uses), and adjacent flagged tokens become spans.

    scorer = LensScorer.load()                 # embedded model; or base_model=, adapter=
    [result] = scorer.score([{"instruction": ..., "input": "", "output": ..., "judgment": ...}])
    result.flagged_spans, result.flagged_share, result.tokens

The prompt without the critique does not depend on the critique, so its log-probs are kept
for the last few responses: a preview re-run while the critique is being typed costs one
forward pass instead of two.
"""

import collections
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from training import data as data_module
from training import loss as loss_module
from training import templates
from training.config import CUTConfig
from training.logprobs import ResponseScorer, autocast_for, compute_dtype, view_logprobs

# Padded tokens per forward pass when scoring many records (records are sorted by length
# and batched up to this budget).
BATCH_TOKENS = 8192
# Responses whose critique-free log-probs are remembered (one (R,) float vector each).
CACHED_RESPONSES = 64


@dataclass
class LensResult:
    flagged_spans: list[list[int]]  # [start, end) in characters of output; adjacent merged
    flagged_share: float  # flagged tokens / tokens of the response's own text
    tokens: list[dict]  # {"start", "end", "log_ratio", "flagged"} per token of the response
    model: str  # base model (+ adapter) the ratios come from
    threshold: float  # λ: flagged when log_ratio > log(threshold)
    truncated: bool = False  # the response was longer than the cutoff; its end is not scored

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TokenRatios:
    """Every response token of one record, as the trainer sees it (end-of-turn included)."""

    example: data_module.Example
    log_ratios: Tensor  # (R,) float32, log p_N - log p_M
    flagged: Tensor  # (R,) bool, loss.flag_inappropriate


class LensScorer:
    """Scores records with one loaded model; keep it alive to score many (a worker does)."""

    def __init__(self, model, tokenizer, config: CUTConfig | None = None, *, model_name=None):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or CUTConfig()
        self.template = templates.resolve_template(tokenizer, self.config.template)
        parameter = next(model.parameters())
        self.device = parameter.device
        self.dtype = compute_dtype(self.config, self.device)
        self.autocast = autocast_for(self.device, self.dtype)
        self.scorer = ResponseScorer(
            model, chunk_size=self.config.logprob_chunk_size, dtype=self.dtype
        )
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.model_name = model_name or getattr(model.config, "name_or_path", "") or "model"
        self._plain_cache: collections.OrderedDict = collections.OrderedDict()

    @classmethod
    def load(
        cls,
        base_model: str | None = None,
        adapter: str | None = None,
        device: str | None = None,
        template: str = "auto",
        cutoff_len: int | None = None,
        *,
        dtype: str | None = None,
        log=print,
    ) -> "LensScorer":
        """Load a base model (None = the embedded one), optionally with a trained adapter.

        With an adapter, its training config gives the defaults: base model, template, λ
        and cutoff, so the lens shows what that run's training did. The adapter is merged
        into the weights. Bad paths fail before any model loads.

        dtype None: bfloat16 where the hardware computes it natively (a CUDA GPU, as the
        trainer does there; a CPU with AMX or AVX512-BF16, where it is 3-4x faster than
        float32), else float32. "float32" forces full precision.
        """
        from training import generate, models

        trained = generate.check_adapter(adapter) if adapter is not None else None
        if base_model is None and trained is not None:
            base_model = trained.base_model
        base_name = models.check_base_model(base_model)
        if cutoff_len is not None and cutoff_len < 2:
            raise ValueError(f"cutoff_len must be at least 2 tokens. Got {cutoff_len}.")
        if template not in ("auto", "chat", "alpaca"):
            raise ValueError(f"template must be auto, chat or alpaca. Got {template!r}.")
        if dtype not in (None, "bfloat16", "float32"):
            raise ValueError(f"dtype must be bfloat16 or float32. Got {dtype!r}.")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or ("bfloat16" if native_bf16(device) else "float32")
        model, tokenizer, trained_template = generate.load_for_generation(
            base_model, adapter, device=device, dtype=dtype, log=log
        )
        # Frozen, as the base model is in training: the LM head then takes the same kernel
        # as in the trainer (logprobs._ResponseLogProbs), which is also the fast one.
        model.requires_grad_(False)
        settings = {
            "template": trained_template if template == "auto" else template,
            "precision": "bf16" if dtype == "bfloat16" else "fp32",
        }
        if trained is not None:
            settings["threshold"] = trained.threshold
            settings["cutoff_len"] = trained.cutoff_len
        if cutoff_len is not None:
            settings["cutoff_len"] = cutoff_len
        name = base_name if adapter is None else f"{base_name} + {Path(adapter).resolve()}"
        return cls(model, tokenizer, CUTConfig(**settings), model_name=name)

    def clear_cache(self) -> None:
        """Forget the cached critique-free log-probs (needed only if the weights change)."""
        self._plain_cache.clear()

    # --- scoring ---------------------------------------------------------------------------

    def score(self, records: list[dict], threshold: float | None = None) -> list[LensResult]:
        """One LensResult per record (instruction, input, output, judgment), in order."""
        threshold = self.config.threshold if threshold is None else threshold
        if not threshold > 0:
            raise ValueError(f"threshold (λ) must be positive. Got {threshold}.")
        results = []
        for record, ratios in zip(records, self.ratios(records, threshold), strict=True):
            results.append(self._result(record["output"], ratios, threshold))
        return results

    def ratios(self, records: list[dict], threshold: float | None = None) -> list[TokenRatios]:
        """Log ratios and flags of every response token, as the trainer's loss sees them."""
        threshold = self.config.threshold if threshold is None else threshold
        triples = [parse_record(i, record) for i, record in enumerate(records, start=1)]
        examples = [
            data_module.encode(
                t, self.tokenizer, self.template, self.config.cutoff_len, offsets=True
            )
            for t in triples
        ]
        out: list[TokenRatios | None] = [None] * len(examples)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for group in _batches(examples, BATCH_TOKENS):
                    chunk = [examples[i] for i in group]
                    plain = self._plain_logprobs(chunk)  # (b, R)
                    judged = self._logprobs([(e.judged_ids, e.response_ids) for e in chunk])
                    mask = _mask(chunk, judged.shape[1]).to(self.device)
                    flags = loss_module.flag_inappropriate(plain, judged, mask, threshold)
                    ratio = (judged - plain).float()
                    for row, i in enumerate(group):
                        n = len(examples[i].response_ids)
                        out[i] = TokenRatios(
                            examples[i], ratio[row, :n].cpu(), flags[row, :n].cpu()
                        )
        finally:
            self.model.train(was_training)
        return out

    def _logprobs(self, rows: list[tuple[list[int], list[int]]]) -> Tensor:
        view = data_module.view_batch(rows, self.pad_id).to(self.device)
        with self.autocast():
            return view_logprobs(self.scorer, view)  # (b, R)

    def _plain_logprobs(self, chunk: list[data_module.Example]) -> Tensor:
        """Log-probs without the critique: from the cache where this response was scored."""
        keys = [(tuple(e.prompt_ids), tuple(e.response_ids)) for e in chunk]
        missing = [k for k in dict.fromkeys(keys) if k not in self._plain_cache]
        if missing:
            fresh = self._logprobs([(list(p), list(r)) for p, r in missing])
            for row, key in enumerate(missing):
                self._plain_cache[key] = fresh[row, : len(key[1])].clone()
        width = max(len(e.response_ids) for e in chunk)
        plain = torch.zeros((len(chunk), width), dtype=torch.float32, device=self.device)
        for row, key in enumerate(keys):
            self._plain_cache.move_to_end(key)
            plain[row, : len(key[1])] = self._plain_cache[key]
        while len(self._plain_cache) > CACHED_RESPONSES:
            self._plain_cache.popitem(last=False)
        return plain

    def _result(self, output: str, ratios: TokenRatios, threshold: float) -> LensResult:
        tokens = []
        for span, ratio, flagged in zip(
            ratios.example.response_offsets,
            ratios.log_ratios.tolist(),
            ratios.flagged.tolist(),
            strict=True,
        ):
            if span is None:  # end of turn / EOS: not part of the text anyone wrote
                continue
            tokens.append(
                {
                    "start": span[0],
                    "end": span[1],
                    "log_ratio": round(ratio, 4),
                    "flagged": flagged,
                }
            )
        flagged = sum(t["flagged"] for t in tokens)
        return LensResult(
            flagged_spans=merge_spans(tokens),
            flagged_share=flagged / len(tokens) if tokens else 0.0,
            tokens=tokens,
            model=self.model_name,
            threshold=threshold,
            # Cut at the cutoff: the scored tokens stop before the text does.
            truncated=bool(tokens) and tokens[-1]["end"] < len(output.rstrip()),
        )


def native_bf16(device: str | torch.device) -> bool:
    """Whether this device multiplies bfloat16 matrices in hardware."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: keep float32, which is right everywhere
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def parse_record(number: int, record: object) -> data_module.Triple:
    """A lens record as the trainer's negative record; ValueError saying which one is bad."""
    where = f"record {number}"
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object with instruction, output and judgment.")
    judgment = record.get("judgment")
    if not isinstance(judgment, str) or not judgment.strip():
        raise ValueError(f"{where}: the record has no judgment (the critique to look through).")
    return data_module._parse(where, {**record, "verdict": "negative"})


def merge_spans(tokens: list[dict]) -> list[list[int]]:
    """[start, end) spans of runs of consecutive flagged tokens (overlaps merged too: the
    byte-level pieces of one emoji share its characters)."""
    spans: list[list[int]] = []
    previous_flagged = False
    for token in tokens:
        if token["flagged"]:
            if spans and (previous_flagged or token["start"] <= spans[-1][1]):
                spans[-1][1] = max(spans[-1][1], token["end"])
            else:
                spans.append([token["start"], token["end"]])
        previous_flagged = token["flagged"]
    return spans


def _mask(chunk: list[data_module.Example], width: int) -> Tensor:
    mask = torch.zeros((len(chunk), width), dtype=torch.bool)
    for row, example in enumerate(chunk):
        mask[row, : len(example.response_ids)] = True
    return mask


def _batches(examples: list[data_module.Example], budget: int) -> list[list[int]]:
    """Indices grouped by length so that each forward pass pads little and stays in budget."""
    order = sorted(range(len(examples)), key=lambda i: -_width(examples[i]))
    groups: list[list[int]] = []
    for i in order:
        if groups and _width(examples[groups[-1][0]]) * (len(groups[-1]) + 1) <= budget:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _width(example: data_module.Example) -> int:
    return max(len(example.prompt_ids), len(example.judged_ids)) + len(example.response_ids)


# --- files -------------------------------------------------------------------------------


def read_records(path: str | Path) -> tuple[list[dict], int]:
    """The records of a JSONL (or JSON array) file that have a judgment, checked, and how
    many had none (approved responses: no critique to look through)."""
    records, skipped = [], 0
    for where, record in data_module._records(Path(path), _read_text(path)):
        if isinstance(record, dict) and record.get("judgment") in (None, ""):
            skipped += 1
            continue
        try:
            parse_record(0, record)
        except ValueError as error:
            raise ValueError(f"{where}: {str(error).partition(': ')[2]}") from None
        records.append(record)
    if not records:
        raise ValueError(f"{path} has no record with a judgment: there is nothing to look at.")
    return records, skipped


def score_file(
    scorer: LensScorer,
    records: list[dict],
    output: str | Path,
    *,
    threshold: float | None = None,
    chunk: int = 256,
) -> int:
    """Write one JSON line per record: its id (if any) and the LensResult."""
    with open(output, "w", encoding="utf-8") as handle:
        for start in range(0, len(records), chunk):
            part = records[start : start + chunk]
            for record, result in zip(part, scorer.score(part, threshold), strict=True):
                line = {"id": record.get("id"), **result.to_dict()}
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    return len(records)


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"Data file {path} does not exist.") from None
    except IsADirectoryError:
        raise ValueError(f"Data file {path} is a directory.") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error.reason}).") from None
