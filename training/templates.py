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
    suffix = _response_text(tokenizer, prompt_text, response, template)
    joint = encode_prompt(tokenizer, prompt_text + suffix, template)
    if template == "alpaca" and tokenizer.eos_token_id is not None:
        joint.append(tokenizer.eos_token_id)
    n = len(prompt_ids)
    if len(joint) > n and joint[:n] == prompt_ids:
        return joint[n:]
    alone = list(tokenizer(suffix, add_special_tokens=False)["input_ids"])
    if template == "alpaca" and tokenizer.eos_token_id is not None:
        alone.append(tokenizer.eos_token_id)
    return alone


def _response_text(tokenizer, prompt_text: str, response: str, template: str) -> str:
    if template == "alpaca":
        return response
    before, after = _assistant_turn(tokenizer, tokenizer.chat_template)
    return before + response + after


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
