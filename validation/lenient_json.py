"""Read what a model wrote the way a lenient grader would: past its reasoning, inside code fences, after chatter,
before trailing text. Anything that still does not parse is None, and scores 0.

Reasoning models write a draft first (`<think>…</think>`, also `<thinking>` or `<reasoning>`); the answer is what
follows it. A closing tag without its opening one (a chat template that opens the block in the prompt) ends the
draft too; a block that never closes is all draft, so nothing was answered.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)
_REASONING_TAGS = ("think", "thinking", "reasoning")
_CLOSED_BLOCK = re.compile(rf"<({'|'.join(_REASONING_TAGS)})>.*?</\1>", re.DOTALL | re.IGNORECASE)
_OPEN_BLOCK = re.compile(rf"<(?:{'|'.join(_REASONING_TAGS)})>.*", re.DOTALL | re.IGNORECASE)
_UNOPENED_CLOSE = re.compile(rf"^.*?</(?:{'|'.join(_REASONING_TAGS)})>", re.DOTALL | re.IGNORECASE)
_DECODER = json.JSONDecoder()


def strip_reasoning(text: str) -> str:
    """The text without its reasoning blocks (see the module docstring)."""
    text = _CLOSED_BLOCK.sub("", text)
    text = _UNOPENED_CLOSE.sub("", text)
    return _OPEN_BLOCK.sub("", text)


def fenced_blocks(text: str) -> list[str]:
    """The content of every fenced block, in order (an unclosed fence runs to the end)."""
    return [match.group(1).strip() for match in _FENCE.finditer(text)]


def strip_fences(text: str) -> str:
    """A free-text answer: past any reasoning, the first fenced block with content when there is one, else all."""
    answer = strip_reasoning(text)
    blocks = [block for block in fenced_blocks(answer) if block]
    return blocks[0] if blocks else answer.strip()


def parse_json_lenient(text: str, expected: type | tuple[type, ...]) -> Any | None:
    """The first JSON value of type `expected`: in each fenced block in turn, then in the whole answer (past any
    reasoning), ignoring any text around it."""
    answer = strip_reasoning(text)
    for body in (*fenced_blocks(answer), answer):
        value = _first_value(body, expected)
        if value is not None:
            return value
    return None


def _first_value(body: str, expected: type | tuple[type, ...]) -> Any | None:
    openers = {dict: "{", list: "["}
    wanted = expected if isinstance(expected, tuple) else (expected,)
    starts = sorted(i for i, ch in enumerate(body) if ch in {openers[t] for t in wanted if t in openers})
    for start in starts:
        try:
            value, _ = _DECODER.raw_decode(body, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, wanted):
            return value
    return None
