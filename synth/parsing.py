"""Reading a raw chat completion: its message, and the JSON in it, tolerantly.

Separate from generation on purpose: it works on the raw body the cache holds, so a fix here re-reads old answers
without calling the model. Servers without structured output wrap JSON in prose or code fences, leave trailing
commas, or are cut off at `max_tokens`; whatever complete items can be read are kept, and what is lost is named.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)\s*```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Message:
    """What a completion says, and about itself: finish reason, refusal, usage, ids."""

    content: str | None
    finish_reason: str | None
    refusal: str | None
    model: str | None
    completion_id: str | None
    created: int | None
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Items:
    """The array under `key` in an answer: the items that could be read, and why the rest could not (if any)."""

    items: list[Any] = field(default_factory=list)
    problem: str | None = None  # refusal | invalid_json | truncated | wrong_shape
    detail: str = ""


def read_message(body: dict[str, Any]) -> Message:
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    usage = body.get("usage") or {}
    return Message(
        content=message.get("content"),
        finish_reason=choice.get("finish_reason"),
        refusal=message.get("refusal"),
        model=body.get("model"),
        completion_id=body.get("id"),
        created=body.get("created"),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
    )


def read_items(message: Message, key: str) -> Items:
    """The list under `key` (or the answer itself when it is a bare list), repaired where that is safe."""
    if message.refusal:
        return Items(problem="refusal", detail=message.refusal[:300])
    if message.finish_reason == "content_filter":
        return Items(problem="refusal", detail="the endpoint's content filter stopped the answer")
    text = (message.content or "").strip()
    if not text:
        if message.finish_reason == "length":  # some servers return nothing of an answer cut off at max_tokens
            return Items(problem="truncated", detail="empty answer, cut off at max_tokens")
        return Items(problem="invalid_json", detail="empty answer")
    value = whole_json(text)
    if value is not None:
        items = _list_in(value, key)
        if items is None:
            return Items(problem="wrong_shape", detail=f"no list under {key!r} in the answer")
        return Items(items)  # complete JSON, even if finish_reason says "length": nothing was lost
    salvaged = _salvage(text, key)
    if message.finish_reason == "length":
        return Items(salvaged, "truncated", f"cut off at max_tokens after {len(salvaged)} complete item(s)")
    return Items(salvaged, "invalid_json", f"not valid JSON; {len(salvaged)} complete item(s) recovered")


def whole_json(text: str) -> Any | None:
    """The JSON value an answer holds, read as a careful reader would: the text itself, inside a code fence, without
    trailing commas, or after prose; None when none of those parses."""
    candidates = [text, *(m.group(1) for m in _FENCE.finditer(text))]
    for candidate in candidates:
        for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
            try:
                return json.loads(attempt)
            except json.JSONDecodeError:
                pass
            start = min((i for i in (attempt.find("{"), attempt.find("[")) if i >= 0), default=-1)
            if start > 0:  # prose before the JSON
                try:
                    return _DECODER.raw_decode(attempt, start)[0]
                except json.JSONDecodeError:
                    pass
    return None


def _list_in(value: Any, key: str) -> list[Any] | None:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if isinstance(value.get(key), list):
            return value[key]
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1:  # the model named the key differently
            return lists[0]
    return None


def _salvage(text: str, key: str) -> list[Any]:
    """The complete items at the start of a broken or cut-off array: decode them one at a time until one fails."""
    anchor = text.find(f'"{key}"')
    start = text.find("[", anchor if anchor >= 0 else 0)
    if start < 0:
        return []
    items: list[Any] = []
    position = start + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return items
        try:
            item, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError:
            return items
        items.append(item)
