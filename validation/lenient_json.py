"""Read what a model wrote as JSON the way a lenient grader would: inside code fences, after chatter, before trailing
text. Anything that still does not parse is None, and scores 0."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)(?:```|$)", re.DOTALL)
_DECODER = json.JSONDecoder()


def strip_fences(text: str) -> str:
    """The content of the first fenced block when there is one (an unclosed fence runs to the end), else the text."""
    match = _FENCE.search(text)
    return match.group(1).strip() if match else text.strip()


def parse_json_lenient(text: str, expected: type | tuple[type, ...]) -> Any | None:
    """The first JSON value of type `expected` found in `text`, ignoring fences and any text around it."""
    body = strip_fences(text)
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
