"""Text normalisation for storage: hygiene, whitespace, zero-width characters, full-width letters and digits.

Only what is unambiguous is changed: full-width Latin letters and digits become ASCII, but full-width
punctuation stays, so Chinese text keeps its ，。：（）. NFKC is for comparison keys only (catalog.records).

Hygiene, applied to every text column (structured outputs too, whose JSON never needs these characters raw):
ANSI escape sequences, NUL and the other C0/C1 control characters (tab and newline aside), and bidirectional
embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069) are removed, and the record is kept:
they carry no content and only change how a text displays (U+202E can make a text read backwards).
"""

from __future__ import annotations

import polars as pl

from catalog.records import ZERO_WIDTH

_FULL_WIDTH = [chr(c) for c in range(0xFF10, 0xFF1A)] + [chr(c) for c in range(0xFF21, 0xFF3B)]
_FULL_WIDTH += [chr(c) for c in range(0xFF41, 0xFF5B)]
_HALF_WIDTH = [chr(ord(c) - 0xFEE0) for c in _FULL_WIDTH]


# CSI (ESC [ … final byte) and OSC (ESC ] … BEL or ESC \) sequences first, so their parameters go with them.
_ANSI = r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?"
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"


# What some step of `normalized_text` changes: a text with none of these is its own stored form, and most texts have
# none, so `stored_form` runs the steps (eight passes over the text) only on the texts this one pass finds.
_NEEDS_NORMALIZING = (
    "[" + _CONTROL[1:-1] + ZERO_WIDTH[1:-1] + "\r\t\u00a0" + "".join(_FULL_WIDTH) + "]|  | \n|\n |\n\n\n|^\\s|\\s$"
)


def stored_form(values: pl.Series, structured: pl.Series | None = None) -> pl.Series:
    """`values` as stored: `normalized_text`, or `without_controls` where `structured` is true (a JSON output), each
    run only on the texts whose screen finds something it would change; the rest are kept as they are."""
    flags = structured if structured is not None else pl.Series([False] * len(values))
    frame = pl.DataFrame({"text": values, "structured": flags})
    text, json = pl.col("text"), pl.col("structured")
    screened = frame.with_columns(
        prose=~json & text.str.contains(_NEEDS_NORMALIZING), controls=json & text.str.contains(_CONTROL)
    )
    result = values.clone()
    for flag, step in (("prose", normalized_text("text")), ("controls", without_controls("text"))):
        rows = screened.filter(flag)
        if rows.height:
            changed = rows.select(step).to_series()
            result = result.scatter(screened.select(pl.arg_where(flag)).to_series(), changed)
    return result


def without_controls(column: str) -> pl.Expr:
    """`column` with escape sequences, control and bidi-override characters removed (the hygiene above)."""
    return pl.col(column).str.replace_all(_ANSI, "").str.replace_all(_CONTROL, "")


def normalized_text(column: str) -> pl.Expr:
    """The stored form of a free-text column."""
    return (
        without_controls(column)
        .str.replace_all(ZERO_WIDTH, "")
        .str.replace_all("\r\n?", "\n")
        .str.replace_many(_FULL_WIDTH, _HALF_WIDTH)
        .str.replace_all("[ \t\u00a0]+", " ")  # the ideographic space U+3000 is Chinese typesetting: kept
        .str.replace_all(" *\n *", "\n")
        .str.replace_all("\n{3,}", "\n\n")
        .str.strip_chars()
    )
