"""Predictions from any OpenAI-compatible chat endpoint (a hosted model, or a vLLM server holding LoRA adapters):
the same prompts as local evaluation, greedy (temperature 0), several requests in flight."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openai import OpenAI, OpenAIError

from training.formatting import end_of_turn_token, user_message


class EndpointError(RuntimeError):
    """The endpoint failed on a request after the client's retries; the message names the endpoint and the error."""


def endpoint_predictor(
    base_url: str,
    model: str,
    api_key: str,
    max_tokens: int = 512,
    concurrency: int = 8,
    max_retries: int = 2,
    timeout_s: float = 120.0,
    stop: Sequence[str] = (),
) -> Callable[[Sequence[tuple[str, str]]], list[str]]:
    """A function from (instruction, input) pairs to the endpoint's replies, in input order (see endpoint_chat)."""
    chat = endpoint_chat(base_url, model, api_key, max_tokens, concurrency, max_retries, timeout_s, stop)

    def predict(pairs: Sequence[tuple[str, str]]) -> list[str]:
        return chat([user_message(*pair) for pair in pairs])

    return predict


def endpoint_chat(
    base_url: str,
    model: str,
    api_key: str,
    max_tokens: int = 512,
    concurrency: int = 8,
    max_retries: int = 2,
    timeout_s: float = 120.0,
    stop: Sequence[str] = (),
) -> Callable[[Sequence[list[dict[str, str]]]], list[str]]:
    """A function from conversations (chat messages) to the endpoint's greedy replies, in input order, `concurrency`
    requests in flight. Each request may take `timeout_s` (the SDK's default is 600 s a try) and is retried at most
    `max_retries` times; `stop` strings are sent as the request's `stop` (at most four, as the API allows)."""
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=timeout_s)
    extra = {"stop": list(stop)[:4]} if stop else {}

    def ask(messages: list[dict[str, str]]) -> str:
        try:
            response = client.chat.completions.create(
                model=model, messages=messages, temperature=0, max_tokens=max_tokens, **extra
            )
        except OpenAIError as err:
            raise EndpointError(f"{base_url} (model {model}): {err}") from None
        content = response.choices[0].message.content if response.choices else None
        return (content or "").strip()

    def chat(conversations: Sequence[list[dict[str, str]]]) -> list[str]:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(ask, conversations))

    return chat


def stop_strings(model: str) -> list[str]:
    """The end-of-turn and EOS tokens of `model`'s tokenizer as text, when `model` is a local folder holding one.

    A server that renders the chat template itself usually stops on these already; sending them makes sure, as a base
    model's EOS (`<|endoftext|>`) is not the end of turn (`<|im_end|>`) an adapter learned. Empty for a served name.
    """
    if not Path(model).is_dir():
        return []
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError):
        return []
    ids = {end_of_turn_token(tokenizer), tokenizer.eos_token_id} - {None}
    return sorted(tokenizer.convert_ids_to_tokens(sorted(ids)))
