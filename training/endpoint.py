"""Predictions from any OpenAI-compatible chat endpoint (a hosted model, or a vLLM server holding LoRA adapters):
the same prompts as local evaluation, greedy (temperature 0), several requests in flight."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from openai import OpenAI, OpenAIError

from training.formatting import user_message


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
):
    """A function from (instruction, input) pairs to the endpoint's replies, in input order. Each request may take
    `timeout_s` (the SDK's default is 600 s a try) and is retried at most `max_retries` times."""
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=max_retries, timeout=timeout_s)

    def ask(pair: tuple[str, str]) -> str:
        try:
            response = client.chat.completions.create(
                model=model, messages=user_message(*pair), temperature=0, max_tokens=max_tokens
            )
        except OpenAIError as err:
            raise EndpointError(f"{base_url} (model {model}): {err}") from None
        content = response.choices[0].message.content if response.choices else None
        return (content or "").strip()

    def predict(pairs: Sequence[tuple[str, str]]) -> list[str]:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(ask, pairs))

    return predict
