"""Prompt templates: the paper's Alpaca prompts and the same two prompts as chat turns.

A record gives two prompts (CUT.md §2): T(x) without the judgment (Align-P, Misalign and
inference) and T(x, j) with it (Align-N). "alpaca" uses the paper's wording exactly. "chat"
puts the same content in one user turn rendered by the tokenizer's own chat template; the
judgment goes after the instruction in the fixed wording of CHAT_JUDGED_USER, so both
prompts of a record start alike. "auto" picks chat when the tokenizer has a chat template.

Prompt tokens never get a loss; only the response tokens do (train_on_inputs = False).
"""

import functools

ALPACA_PROMPT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)
ALPACA_JUDGED_PROMPT = (
    "Below is an instruction that describes a task. Write a response to the instruction and "
    "the response should match the corresponding judgment.\n\n### Instruction:\n"
    "{instruction}\n\n### Judgment:\n{judgment}\n\n### Response:\n"
)
# The user turn of the chat variant. Without a judgment it is the instruction alone.
CHAT_USER = "{instruction}"
CHAT_JUDGED_USER = (
    "{instruction}\n\nWrite a response to the instruction above. The response should match "
    "the following judgment of it.\n\n### Judgment:\n{judgment}"
)


def resolve_template(tokenizer, template: str = "auto") -> str:
    """Turn "auto" into "chat" or "alpaca" for this tokenizer; check the others."""
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if template == "auto":
        return "chat" if has_chat else "alpaca"
    if template == "chat" and not has_chat:
        raise ValueError(
            "template 'chat' needs a tokenizer with a chat template, and this one has none. "
            "Use template=alpaca (or auto)."
        )
    if template not in ("chat", "alpaca"):
        raise ValueError(f"template must be auto, chat or alpaca. Got {template!r}.")
    return template


def full_instruction(instruction: str, input: str = "") -> str:
    """The paper joins a record's input to its instruction with a newline."""
    return f"{instruction}\n{input}" if input else instruction


def build_prompt(
    tokenizer,
    instruction: str,
    input: str = "",
    judgment: str | None = None,
    template: str = "alpaca",
) -> str:
    """The prompt text T(x) (judgment None) or T(x, j); generation uses T(x)."""
    template = resolve_template(tokenizer, template)
    x = full_instruction(instruction, input)
    if template == "alpaca":
        if judgment is None:
            return ALPACA_PROMPT.format(instruction=x)
        return ALPACA_JUDGED_PROMPT.format(instruction=x, judgment=judgment)
    user = (
        CHAT_USER.format(instruction=x)
        if judgment is None
        else CHAT_JUDGED_USER.format(instruction=x, judgment=judgment)
    )
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
    )


def encode_prompt(tokenizer, text: str, template: str) -> list[int]:
    """Token ids of a prompt built by build_prompt, the same way for training and generation.

    Alpaca text gets the tokenizer's special tokens (a BOS for Llama tokenizers); a
    rendered chat template already contains whatever special tokens it wants.
    """
    return list(tokenizer(text, add_special_tokens=(template == "alpaca"))["input_ids"])


def encode_response(
    tokenizer, prompt_text: str, prompt_ids: list[int], response: str, template: str
) -> list[int]:
    """Token ids of a response, ended as the model should end it at inference.

    Alpaca ends with the EOS token; chat ends as the chat template closes an assistant turn
    (e.g. "<|im_end|>"). The response is tokenized together with its prompt and cut at the
    prompt's length, so its first token is the one the model produces after the prompt;
    if the joint tokenization does not start with the prompt's tokens, it is tokenized alone.
    """
    return _encode_response(tokenizer, prompt_text, prompt_ids, response, template, False)[0]


def encode_response_with_offsets(
    tokenizer, prompt_text: str, prompt_ids: list[int], response: str, template: str
) -> tuple[list[int], list[tuple[int, int] | None]]:
    """encode_response's ids, and where each token lies in `response` ([start, end) in
    characters), from the tokenizer's offset mapping of the very same tokenization.

    A token that covers none of the response's own characters (the chat template's
    end-of-turn, the EOS) gets None; one that reaches past the response is clipped to it.
    Needs a fast (Rust) tokenizer.
    """
    return _encode_response(tokenizer, prompt_text, prompt_ids, response, template, True)


def _encode_response(
    tokenizer, prompt_text: str, prompt_ids: list[int], response: str, template: str, offsets
) -> tuple[list[int], list[tuple[int, int] | None] | None]:
    before, after = _around_response(tokenizer, template)
    suffix = before + response + after
    eos = (
        [tokenizer.eos_token_id]
        if template == "alpaca" and tokenizer.eos_token_id is not None
        else []
    )
    joint, spans = _tokenize(tokenizer, prompt_text + suffix, template == "alpaca", offsets)
    n = len(prompt_ids)
    if len(joint) + len(eos) > n and joint[:n] == prompt_ids:
        ids, spans, start = joint[n:], spans[n:] if offsets else None, len(prompt_text)
    else:
        ids, spans = _tokenize(tokenizer, suffix, False, offsets)
        start = 0
    ids = ids + eos
    if not offsets:
        return ids, None
    start += len(before)  # where the response's own characters begin in the tokenized text
    end = start + len(response)
    mapped = []
    for s, e in [*spans, (0, 0)] if eos else spans:
        s, e = max(s, start), min(e, end)
        mapped.append((s - start, e - start) if s < e else None)
    return ids, mapped


def _tokenize(
    tokenizer, text: str, special: bool, offsets: bool
) -> tuple[list[int], list[tuple[int, int]] | None]:
    if not offsets:
        return list(tokenizer(text, add_special_tokens=special)["input_ids"]), None
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            "Token offsets need a fast tokenizer (tokenizer.json); this model's tokenizer is "
            "a slow one."
        )
    encoded = tokenizer(text, add_special_tokens=special, return_offsets_mapping=True)
    return list(encoded["input_ids"]), [tuple(pair) for pair in encoded["offset_mapping"]]


def _around_response(tokenizer, template: str) -> tuple[str, str]:
    """What the template writes before and after the response text itself."""
    if template == "alpaca":
        return "", ""
    return _assistant_turn(tokenizer, tokenizer.chat_template)


_SENTINEL = "\x01response\x01"


@functools.lru_cache(maxsize=8)
def _assistant_turn(tokenizer, chat_template: str) -> tuple[str, str]:
    """What this chat template writes around an assistant reply after the generation prompt.

    Renders one exchange with a placeholder reply and keeps what follows the generation
    prompt. Cached per tokenizer and template text (rendering Jinja per record is slow).
    """
    messages = [{"role": "user", "content": "x"}]
    head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    whole = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": _SENTINEL}], tokenize=False
    )
    eos = tokenizer.eos_token or ""
    tail = whole[len(head) :] if whole.startswith(head) else ""
    if _SENTINEL not in tail:
        return "", eos
    before, _, after = tail.partition(_SENTINEL)
    if eos and eos in after:
        # "<|im_end|>\n": stop at the end-of-turn token; what follows it is never generated.
        after = after[: after.index(eos) + len(eos)]
    if not after.strip():
        after = eos  # a template that does not close the turn: end with EOS
    return before, after


def fit_to_cutoff(
    prompt_ids: list[int], response_ids: list[int], cutoff: int
) -> tuple[list[int], list[int]]:
    """Drop prompt tokens from the left so prompt + response fit in cutoff tokens.

    The response stays whole, as in the official code. Only a response longer than the
    cutoff itself is cut, at its end, keeping one prompt token to predict its first token.
    """
    if len(prompt_ids) + len(response_ids) <= cutoff:
        return prompt_ids, response_ids
    response_ids = response_ids[: cutoff - 1]
    return prompt_ids[-(cutoff - len(response_ids)) :], response_ids
