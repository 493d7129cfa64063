"""`stored_form` runs the normalization steps only where a screen finds something to change: on generated texts
full of what the steps change (and of what they keep), it gives what the steps give on every text."""

from __future__ import annotations

import random

import polars as pl

from pipeline.normalize import normalized_text, stored_form, without_controls

# What the steps act on, what they must leave alone, and plain text, drawn often enough that most texts hold none
# of the first kind (the case the screen skips) and many hold several.
_ACTED_ON = [
    "\x00", "\x07", "\x0b", "\x1b[31m", "\x1b]0;title\x07", "\x1bc", "\x7f", "\x85", "\x9f", "\u202e", "\u2066",
    "\u200b", "\u200d", "\u2060", "\ufeff", "\r\n", "\r", "\t", "\u00a0", "  ", " \n", "\n ", "\n\n\n", "０", "９",
    "Ａ", "Ｚ", "ａ", "ｚ", " ", "\n", "\u3000", "\u2028",
]  # fmt: skip
_KEPT = ["，", "。", "（", "）", "％", "：", "é", "中文", "\n\n", "-", "＠", "\U0001f600"]
_PLAIN = ["refund", "order", "净利润", "the", "2024", "a", ".", "!"]


def _text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 14)):
        pool = rng.choices((_ACTED_ON, _KEPT, _PLAIN), weights=(1, 2, 12))[0]
        parts.append(rng.choice(pool))
        if rng.random() < 0.6:
            parts.append(" ")
    return "".join(parts).strip(" ") if rng.random() < 0.7 else "".join(parts)


def test_stored_form_equals_the_full_steps_on_every_text() -> None:
    rng = random.Random(11)
    texts = [_text(rng) for _ in range(40_000)] + [None, ""]
    structured = pl.Series([rng.random() < 0.3 for _ in texts])
    values = pl.Series("output", texts, dtype=pl.String)
    expected = pl.DataFrame({"output": values, "structured": structured}).select(
        pl.when("structured").then(without_controls("output")).otherwise(normalized_text("output"))
    )["output"]
    got = stored_form(values, structured)
    assert got.name == "output"
    assert got.to_list() == expected.to_list()
    skipped = sum(1 for t, g in zip(texts, got.to_list(), strict=True) if t == g)
    assert 0.2 * len(texts) < skipped < 0.95 * len(texts)  # both paths were exercised
    plain = stored_form(values)
    assert plain.to_list() == pl.DataFrame({"output": values}).select(normalized_text("output"))["output"].to_list()
