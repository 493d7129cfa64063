"""Read the records of a release folder back from its Parquet files, with the split each one is in, and what a
build's quarantine holds."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from catalog import Catalog
from catalog.layout import SPLITS, split_path
from catalog.records import RECORD_COLUMNS

RELEASE_SCHEMA = {**dict.fromkeys(RECORD_COLUMNS, pl.String), "split": pl.String}
# The columns of a build's quarantine (build/_quarantine/<name>.jsonl), one row per record the build dropped.
QUARANTINE_SCHEMA = {
    "reason": pl.String,
    "detail": pl.String,
    "file": pl.String,
    "line": pl.Int64,
    "id": pl.String,
    "task": pl.String,
    "lang": pl.String,
    "instruction": pl.String,
    "input": pl.String,
    "output": pl.String,
    "twin": pl.String,  # the kept record a duplicate was dropped for
    "similarity": pl.Float64,  # their exact Jaccard, for near-duplicates
}


def read_release(release: Path, catalog: Catalog) -> pl.DataFrame:
    """Every record of the release with a `split` column; a missing task file counts as no records."""
    frames = []
    for spec in catalog:
        for split in SPLITS:
            path = release / split_path(spec.id, split)
            if path.exists():
                frames.append(pl.read_parquet(path).select(RECORD_COLUMNS).with_columns(split=pl.lit(split)))
    if not frames:
        return pl.DataFrame(schema=RELEASE_SCHEMA)
    return pl.concat(frames).cast(RELEASE_SCHEMA)
