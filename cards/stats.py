"""Statistics of a release for the card: counts per task, language and split, and text lengths."""

from __future__ import annotations

from collections import Counter

import polars as pl

from catalog import Catalog
from catalog.layout import SPLITS
from catalog.records import RECORD_COLUMNS
from catalog.spec import LANGS
from validation.outputs import OutputError, output_labels


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


def column_summary(records: pl.DataFrame) -> pl.DataFrame:
    """Per published column: nulls, empty strings, distinct values, and length in characters (min, median, max)."""
    rows = []
    for column in RECORD_COLUMNS:
        values = records[column] if column in records.columns else pl.Series(column, [], pl.String)
        lengths = values.drop_nulls().str.len_chars()
        rows.append(
            {
                "column": column,
                "nulls": values.null_count(),
                "empty": int((lengths == 0).sum()) if len(lengths) else 0,
                "distinct": values.n_unique() if len(values) else 0,
                "min": int(lengths.min()) if len(lengths) else None,
                "median": int(lengths.median()) if len(lengths) else None,
                "max": int(lengths.max()) if len(lengths) else None,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"min": pl.Int64, "median": pl.Int64, "max": pl.Int64})


def label_counts(catalog: Catalog, records: pl.DataFrame) -> dict[str, Counter[str]]:
    """Per task with closed sets: how often each label (its English text, both languages together) is an output."""
    counts: dict[str, Counter[str]] = {}
    for spec in catalog:
        if not spec.closed_sets:
            continue
        found: Counter[str] = Counter()
        part = records.filter(pl.col("task") == spec.id).select("lang", "output")
        for lang, output in part.iter_rows():
            try:
                found.update(output_labels(spec, lang, output))
            except OutputError:
                continue
        counts[spec.id] = found
    return counts
