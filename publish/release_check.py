"""Check a built release folder before it is published: layout, Parquet columns, and every record's contract."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from catalog import Catalog
from catalog.errors import Problem, display_path
from catalog.layout import BUILD_REPORT_FILE, SPLITS, split_path
from catalog.records import RECORD_COLUMNS
from validation.records import check_frame

REQUIRED_FILES = ("README.md", BUILD_REPORT_FILE)


def check_release(release: Path, catalog: Catalog) -> list[Problem]:
    """Every problem of the release folder; an empty list means it may be published.

    A record's problem names the Parquet file and its row (counted from 1) as the line.
    """
    if not release.is_dir():
        return [Problem(display_path(release), None, None, "no release folder here: run `make datasets` first")]
    problems = [
        Problem(display_path(release / name), None, None, "missing: rebuild with `make datasets`")
        for name in REQUIRED_FILES
        if not (release / name).exists()
    ]
    frames = []
    for spec in catalog:
        for split in SPLITS:
            path = release / split_path(spec.id, split)
            name = display_path(path)
            if not path.exists():
                problems.append(Problem(name, None, None, "missing Parquet file of a config"))
                continue
            try:
                frame = pl.read_parquet(path)
            except Exception as err:  # any unreadable file is reported, whatever the Parquet reader raised
                problems.append(Problem(name, None, None, f"not readable as Parquet: {err}"))
                continue
            if tuple(frame.columns) != RECORD_COLUMNS:
                problems.append(Problem(name, None, None, f"columns {frame.columns} are not {list(RECORD_COLUMNS)}"))
                continue
            wrong = frame.filter(pl.col("task") != spec.id).height
            if wrong:
                problems.append(Problem(name, None, "task", f"{wrong} record(s) of another task in this file"))
            frames.append(
                frame.cast(dict.fromkeys(RECORD_COLUMNS, pl.String)).with_columns(
                    role=pl.lit(None, pl.String),
                    file=pl.lit(name),
                    line=pl.int_range(1, frame.height + 1, dtype=pl.Int64),
                )
            )
    if frames:
        problems.extend(check_frame(pl.concat(frames), catalog))
    return problems
