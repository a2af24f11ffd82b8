"""training.templates: the paper's Alpaca prompts, the chat variant, truncation."""

import pytest

from training import templates


def test_alpaca_prompts_use_the_papers_wording(plain_tokenizer):
    plain = templates.build_prompt(plain_tokenizer, "Add 2 and 3.", "Show your work.")
    judged = templates.build_prompt(plain_tokenizer, "Add 2 and 3.", "", judgment="Wrong sum.")

    assert plain == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nAdd 2 and 3.\nShow your work.\n\n"
        "### Response:\n"
    )
    assert judged == (
        "Below is an instruction that describes a task. Write a response to the instruction "
        "and the response should match the corresponding judgment.\n\n### Instruction:\n"
        "Add 2 and 3.\n\n### Judgment:\nWrong sum.\n\n### Response:\n"
    )


def test_auto_picks_chat_only_when_the_tokenizer_has_a_chat_template(tokenizer, plain_tokenizer):
    assert templates.resolve_template(tokenizer, "auto") == "chat"
    assert templates.resolve_template(plain_tokenizer, "auto") == "alpaca"
    assert templates.resolve_template(tokenizer, "alpaca") == "alpaca"
    with pytest.raises(ValueError, match="needs a tokenizer with a chat template"):
        templates.resolve_template(plain_tokenizer, "chat")


def test_the_chat_variant_puts_the_judgment_in_the_user_turn(tokenizer):
    plain = templates.build_prompt(tokenizer, "Add 2 and 3.", template="chat")
    judged = templates.build_prompt(tokenizer, "Add 2 and 3.", judgment="Wrong.", template="chat")

    assert plain == "<|im_start|>user\nAdd 2 and 3.<|im_end|>\n<|im_start|>assistant\n"
    user_turn = templates.CHAT_JUDGED_USER.format(instruction="Add 2 and 3.", judgment="Wrong.")
    assert judged == f"<|im_start|>user\n{user_turn}<|im_end|>\n<|im_start|>assistant\n"
    # The instruction comes first, so both prompts of a record start alike.
    assert judged.startswith("<|im_start|>user\nAdd 2 and 3.\n\n")


def test_a_chat_response_ends_with_the_end_of_turn_token(tokenizer):
    prompt = templates.build_prompt(tokenizer, "Say hi.", template="chat")
    prompt_ids = templates.encode_prompt(tokenizer, prompt, "chat")

    ids = templates.encode_response(tokenizer, prompt, prompt_ids, "Hi there!", "chat")

    assert tokenizer.decode(ids) == "Hi there!<|im_end|>"


def test_an_alpaca_response_ends_with_eos(plain_tokenizer):
    prompt = templates.build_prompt(plain_tokenizer, "Say hi.")
    prompt_ids = templates.encode_prompt(plain_tokenizer, prompt, "alpaca")

    ids = templates.encode_response(plain_tokenizer, prompt, prompt_ids, "Hi!", "alpaca")

    assert ids[-1] == plain_tokenizer.eos_token_id
    assert plain_tokenizer.decode(ids[:-1]) == "Hi!"


def test_left_truncation_keeps_the_response_whole():
    prompt, response = list(range(100)), list(range(1000, 1030))

    kept_prompt, kept_response = templates.fit_to_cutoff(prompt, response, 50)

    assert kept_response == response
    assert kept_prompt == prompt[-20:]  # the end of the prompt, next to the response


def test_a_response_longer_than_the_cutoff_is_cut_at_its_end():
    prompt, response = [1, 2, 3], list(range(100, 200))

    kept_prompt, kept_response = templates.fit_to_cutoff(prompt, response, 40)

    assert kept_prompt == [3] and kept_response == response[:39]


def test_short_sequences_are_left_alone():
    assert templates.fit_to_cutoff([1, 2], [3], 16) == ([1, 2], [3])
