"""Agreement of blind second annotations with the reference (ANNOTATION.md, step 3): the human row of the matrix.

Each annotation is scored against the published reference with the task's own metric; a `label` task also gets
Cohen's kappa over its labels (English names, so both languages count as one label set).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import polars as pl

from catalog import Catalog
from validation.metrics import score

AGREEMENT_COLUMNS = ("task", "lang", "annotations", "agreement", "kappa")


def scored_annotations(annotations: pl.DataFrame, references: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """Every annotation whose record has a reference (`references`: id, task, lang, output), with its `score`."""
    joined = annotations.join(
        references.select(pl.col("id").alias("record"), pl.col("output").alias("reference")), on="record"
    )
    scores = [
        score(catalog.get(row["task"]), row["output"], row["reference"]) if row["task"] in catalog else None
        for row in joined.select("task", "output", "reference").iter_rows(named=True)
    ]
    return joined.with_columns(pl.Series("score", scores, dtype=pl.Float64))


def agreement_table(scored: pl.DataFrame, catalog: Catalog) -> list[dict[str, Any]]:
    """Per task and language, in catalog order: how many annotations, their mean score, and kappa for labels."""
    rows = []
    for spec in catalog:
        for lang in spec.languages:
            cell = scored.filter((pl.col("task") == spec.id) & (pl.col("lang") == lang))
            if cell.is_empty():
                continue
            kappa = None
            if spec.label_set is not None:
                pairs = [
                    (spec.canonical_label(spec.label_set, lang, r), spec.canonical_label(spec.label_set, lang, a))
                    for r, a in cell.select(pl.col("reference"), pl.col("output").str.strip_chars()).iter_rows()
                ]
                kappa = cohen_kappa(pairs)
            rows.append(
                {
                    "task": spec.id,
                    "lang": lang,
                    "annotations": cell.height,
                    "agreement": float(cell["score"].mean()),
                    "kappa": kappa,
                }
            )
    return rows


def cohen_kappa(pairs: list[tuple[Any, Any]]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when chance agreement is certain (one label only)."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(first[label] * second.get(label, 0) for label in first) / (n * n)
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)
