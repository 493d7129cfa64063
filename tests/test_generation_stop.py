"""Generation stops at the chat template's end of turn even when the model's EOS is another token, as with a base
model (Qwen/Qwen2-7B: EOS `<|endoftext|>`) whose adapter learned to end its answers with `<|im_end|>`."""

from __future__ import annotations

from typing import Any

import torch

from tests.tiny_model import ENDOFTEXT, IM_END, IM_START, build_qwen2_tokenizer, build_tiny_qwen2
from training.formatting import end_of_turn_token
from training.generation import generate_greedy, stop_token_ids


def base_model_pair() -> tuple[Any, Any]:
    """The real Qwen2 vocabulary with a base model's EOS, and a tiny Qwen2 whose generation config stops on it."""
    tokenizer = build_qwen2_tokenizer()
    tokenizer.eos_token = ENDOFTEXT
    model = build_tiny_qwen2(tokenizer)
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    return tokenizer, model


def test_the_end_of_turn_token_is_read_from_the_chat_template() -> None:
    tokenizer, model = base_model_pair()
    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    assert end_of_turn_token(tokenizer) == im_end
    assert set(stop_token_ids(model, tokenizer)) == {im_end, tokenizer.convert_tokens_to_ids(ENDOFTEXT)}


def test_a_reply_ends_at_im_end_instead_of_running_into_the_next_turn() -> None:
    tokenizer, model = base_model_pair()
    # The model, scripted: it answers "Balance inquiry", closes its turn, and would go on to write a user turn.
    script = [
        *tokenizer.encode("Balance inquiry", add_special_tokens=False),
        tokenizer.convert_tokens_to_ids(IM_END),
        *tokenizer.encode("\n", add_special_tokens=False),
        tokenizer.convert_tokens_to_ids(IM_START),
        *tokenizer.encode("user\nAnd my savings account?", add_special_tokens=False),
    ]
    step = {"n": 0}

    def scripted(_module: Any, _inputs: Any, output: Any) -> Any:
        logits = torch.full_like(output.logits, -1e4)
        logits[:, -1, script[min(step["n"], len(script) - 1)]] = 1e4
        step["n"] += 1
        output.logits = logits
        return output

    model.register_forward_hook(scripted)
    replies = generate_greedy(model, tokenizer, [("Classify the intent.", "What's my balance?")], max_new_tokens=40)
    assert replies == ["Balance inquiry"]
    assert step["n"] == len(tokenizer.encode("Balance inquiry", add_special_tokens=False)) + 1
