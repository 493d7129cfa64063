"""The record contract: published columns, stable ids and the canonical form of structured outputs."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from catalog.spec import TaskSpec

# Columns of a published record, in order. `provenance` is a compact JSON object (template hash, sampling
# parameters, exemplar ids, ...): a string keeps the Parquet schema the same whatever the generator recorded.
RECORD_COLUMNS: tuple[str, ...] = (
    "id",
    "task",
    "domain",
    "lang",
    "instruction",
    "input",
    "output",
    "source",
    "generator",
    "provenance",
)
SOURCES: tuple[str, ...] = ("seed", "synth")
SEED_ROLES: tuple[str, ...] = ("exemplar", "gold")
HUMAN_GENERATOR = "human"
ID_LENGTH = 16

ZERO_WIDTH = "[\u200b\u200c\u200d\u2060\ufeff]"  # zero-width spaces and joiners, and the BOM
_ZERO_WIDTH = re.compile(ZERO_WIDTH)


def comparison_key(text: str) -> str:
    """A form of `text` for comparing, never for storing: NFKC, no zero-width characters, lower case, single spaces."""
    if not text.isascii():  # ASCII has no zero-width character and is its own NFKC form
        text = unicodedata.normalize("NFKC", _ZERO_WIDTH.sub("", text))
    return " ".join(text.split()).lower()  # split() and re's \s agree on what whitespace is (str.isspace)


def record_id(task: str, lang: str, input_text: str) -> str:
    """Stable id from task, language and normalized input: the same input keeps its id across builds."""
    digest = hashlib.sha256(f"{task}\x1f{lang}\x1f{comparison_key(input_text)}".encode()).hexdigest()
    return digest[:ID_LENGTH]


_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # built once: json.dumps builds one a call


def compact_json(value: Any) -> str:
    """How structured outputs are stored: compact, UTF-8, not ASCII-escaped, keys in their given order."""
    return _COMPACT.encode(value)


def output_string(spec: TaskSpec, value: Any) -> str:
    """The stored form of an output a model gave: compact JSON for structured formats (a JSON string is unwrapped
    first), the text itself otherwise."""
    if spec.is_structured:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return value
        return compact_json(value)
    return value.strip() if isinstance(value, str) else compact_json(value)
