"""Records as chat turns: the instruction and input are the user's message, the output is the assistant's reply.

Training uses TRL's conversational prompt-completion form, so the model's own chat template renders both and the loss
falls on the completion (the output and the end-of-turn token) only.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, str]
# The version of how a record becomes a prompt: change it when user_message changes, so cached answers are redone.
PROMPT_FORMAT = "user-turn-v1"


def user_message(instruction: str, input_text: str) -> list[Message]:
    content = f"{instruction}\n\n{input_text}" if input_text.strip() else instruction
    return [{"role": "user", "content": content}]


def prompt_completion(record: dict[str, Any]) -> dict[str, list[Message]]:
    return {
        "prompt": user_message(record["instruction"], record["input"]),
        "completion": [{"role": "assistant", "content": record["output"]}],
    }


def generation_prompt(tokenizer: Any, instruction: str, input_text: str) -> str:
    """The text a model continues at evaluation: the same template as in training, opened for the assistant."""
    return tokenizer.apply_chat_template(
        user_message(instruction, input_text), tokenize=False, add_generation_prompt=True
    )


def tokenize_prompt_completion(tokenizer: Any, record: dict[str, Any]) -> dict[str, list[int]]:
    """Token ids of the whole conversation and the mask of the completion (the output and end of turn).

    TRL would do the same inside `SFTTrainer`, but through `Dataset.map`, which fingerprints its arguments by
    pickling the tokenizer (a Qwen2 tokenizer keeps 150k vocabulary entries and 290k merges as Python objects): tens
    of seconds per run. Tokenizing here hands TRL a processed dataset it only masks and packs.
    """
    pair = prompt_completion(record)
    prompt_ids = _ids(tokenizer.apply_chat_template(pair["prompt"], tokenize=True, add_generation_prompt=True))
    full_ids = _ids(tokenizer.apply_chat_template(pair["prompt"] + pair["completion"], tokenize=True))
    shared = 0  # the completion starts where the two renderings part (normally: after the whole prompt)
    while shared < min(len(prompt_ids), len(full_ids)) and prompt_ids[shared] == full_ids[shared]:
        shared += 1
    return {"input_ids": full_ids, "completion_mask": [0] * shared + [1] * (len(full_ids) - shared)}


def end_of_turn_token(tokenizer: Any) -> int | None:
    """The special token the chat template closes an assistant turn with (`<|im_end|>` in ChatML), found by rendering
    one turn. A base model's EOS is often another token (`<|endoftext|>` for Qwen2-7B), and a model trained on its
    chat template ends its answers with this one, so generation must stop on both."""
    rendered = tokenize_prompt_completion(tokenizer, {"instruction": "x", "input": "", "output": "y"})
    decoder = getattr(tokenizer, "added_tokens_decoder", {})
    special = set(tokenizer.all_special_ids) | {i for i, token in decoder.items() if getattr(token, "special", False)}
    completion = [i for i, m in zip(rendered["input_ids"], rendered["completion_mask"], strict=True) if m]
    return next((i for i in completion if i in special), None)


def _ids(encoded: Any) -> list[int]:
    """apply_chat_template returns a list, or a BatchEncoding, depending on the transformers version."""
    return list(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)
