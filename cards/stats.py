"""Statistics of a release for the card: counts per task, language and split, and text lengths."""

from __future__ import annotations

import polars as pl

from catalog.layout import SPLITS
from catalog.spec import LANGS


def split_counts(records: pl.DataFrame) -> dict[tuple[str, str, str], int]:
    """(task, lang, split) → records."""
    if records.is_empty():
        return {}
    return {(t, lang, s): n for t, lang, s, n in records.group_by("task", "lang", "split").len().iter_rows()}


def task_counts(records: pl.DataFrame) -> dict[tuple[str, str], int]:
    """(task, lang) → records over all splits."""
    if records.is_empty():
        return {}
    return {(t, lang): n for t, lang, n in records.group_by("task", "lang").len().iter_rows()}


def totals(records: pl.DataFrame) -> dict[str, int]:
    """Records per split and language, and overall."""
    counts = {"records": records.height}
    for split in SPLITS:
        counts[split] = records.filter(pl.col("split") == split).height
    for lang in LANGS:
        counts[lang] = records.filter(pl.col("lang") == lang).height
    return counts


def size_category(n: int) -> str:
    """The Hub's `size_categories` bucket of a record count."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def length_summary(records: pl.DataFrame) -> pl.DataFrame:
    """Median and 90th percentile of input and output length in characters, per language."""
    if records.is_empty():
        return pl.DataFrame(schema={"lang": pl.String, "field": pl.String, "median": pl.Int64, "p90": pl.Int64})
    rows = []
    for lang in LANGS:
        part = records.filter(pl.col("lang") == lang)
        for field in ("input", "output"):
            lengths = part[field].str.len_chars()
            if lengths.is_empty():
                continue
            rows.append(
                {
                    "lang": lang,
                    "field": field,
                    "median": int(lengths.median()),
                    "p90": int(lengths.quantile(0.9, "nearest")),
                }
            )
    return pl.DataFrame(rows)
