"""Text normalisation for storage: whitespace, zero-width characters and full-width letters and digits.

Only what is unambiguous is changed: full-width Latin letters and digits become ASCII, but full-width
punctuation stays, so Chinese text keeps its ，。：（）. NFKC is for comparison keys only (catalog.records).
"""

from __future__ import annotations

import polars as pl

from catalog.records import ZERO_WIDTH

_FULL_WIDTH = [chr(c) for c in range(0xFF10, 0xFF1A)] + [chr(c) for c in range(0xFF21, 0xFF3B)]
_FULL_WIDTH += [chr(c) for c in range(0xFF41, 0xFF5B)]
_HALF_WIDTH = [chr(ord(c) - 0xFEE0) for c in _FULL_WIDTH]


def normalized_text(column: str) -> pl.Expr:
    """The stored form of a free-text column."""
    return (
        pl.col(column)
        .str.replace_all(ZERO_WIDTH, "")
        .str.replace_all("\r\n?", "\n")
        .str.replace_many(_FULL_WIDTH, _HALF_WIDTH)
        .str.replace_all("[ \t\u00a0]+", " ")  # the ideographic space U+3000 is Chinese typesetting: kept
        .str.replace_all(" *\n *", "\n")
        .str.replace_all("\n{3,}", "\n\n")
        .str.strip_chars()
    )


def comparison_key_expr(column: str) -> pl.Expr:
    """`catalog.records.comparison_key` as a Polars expression, for dedup over whole columns."""
    return (
        pl.col(column)
        .str.replace_all(ZERO_WIDTH, "")
        .str.normalize("NFKC")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.to_lowercase()
    )
