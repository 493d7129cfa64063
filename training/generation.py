"""Greedy generation from a local model in batches, padded on the left so every prompt ends where decoding starts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from training.formatting import end_of_turn_token, generation_prompt


def stop_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The chat template's end of turn, the tokenizer's EOS and whatever the model's generation config stops on."""
    configured = model.generation_config.eos_token_id
    ids = configured if isinstance(configured, list) else [configured]
    return sorted({i for i in [*ids, tokenizer.eos_token_id, end_of_turn_token(tokenizer)] if i is not None})


def _batches(order: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


def generate_greedy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[tuple[str, str]],
    batch_size: int = 8,
    max_new_tokens: int = 512,
) -> list[str]:
    """The model's reply to each (instruction, input) pair, in input order. Prompts are batched longest first, so a
    batch holds prompts of similar length and little padding."""
    texts = [generation_prompt(tokenizer, instruction, input_text) for instruction, input_text in prompts]
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    replies = [""] * len(texts)
    tokenizer.padding_side = "left"
    stops = stop_token_ids(model, tokenizer)
    device = next(model.parameters()).device
    for batch in _batches(order, batch_size):
        encoded = tokenizer([texts[i] for i in batch], return_tensors="pt", padding=True, add_special_tokens=False)
        encoded = encoded.to(device)
        with torch.inference_mode():
            generated = model.generate(
                **encoded,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                max_new_tokens=max_new_tokens,
                eos_token_id=stops,
                pad_token_id=tokenizer.pad_token_id,
            )
        new_tokens = generated[:, encoded["input_ids"].shape[1] :]
        for index, reply in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
            replies[index] = reply.strip()
    return replies


def local_predictor(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, batch_size: int = 8, max_new_tokens: int = 512
):
    """A function from (instruction, input) pairs to the local model's greedy replies, for `evaluation.evaluate`."""

    def predict(pairs: Sequence[tuple[str, str]]) -> list[str]:
        return generate_greedy(model, tokenizer, pairs, batch_size, max_new_tokens)

    return predict
