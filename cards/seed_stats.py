"""Per task and language: how many seeds, how long their outputs, how their labels spread."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl

from catalog import Catalog
from validation.outputs import OutputError, output_labels
from validation.records import read_record_file


def seed_stats(catalog: Catalog, seeds_dir: Path) -> pl.DataFrame:
    """One row per task and language, in catalog order; tasks without a seed file show zero records."""
    rows = []
    for spec in catalog:
        path = seeds_dir / f"{spec.id}.jsonl"
        frame = read_record_file(path, catalog).frame if path.exists() else None
        for lang in spec.languages:
            part = frame.filter(pl.col("lang") == lang) if frame is not None else pl.DataFrame()
            lengths = part["output"].str.len_chars() if part.height else pl.Series([], dtype=pl.UInt32)
            labels: Counter[str] = Counter()
            for output in part["output"] if part.height else []:
                try:
                    labels.update(output_labels(spec, lang, output))
                except OutputError:
                    continue
            set_size = sum(len(spec.closed_sets[name]) for name in spec.label_sets_of(None)) or None
            rows.append(
                {
                    "task": spec.id,
                    "code": spec.code,
                    "lang": lang,
                    "records": part.height,
                    "gold": int((part["role"] == "gold").sum()) if part.height else 0,
                    "exemplars": int((part["role"] == "exemplar").sum()) if part.height else 0,
                    "output_chars_mean": round(float(lengths.mean()), 1) if part.height else None,
                    "output_chars_max": int(lengths.max()) if part.height else None,
                    "distinct_labels": len(labels) if spec.closed_sets else None,
                    "label_set_size": set_size,
                    "top_labels": ", ".join(f"{k} {v}" for k, v in labels.most_common(4)) if labels else "",
                }
            )
    return pl.DataFrame(rows)
