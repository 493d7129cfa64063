"""The build: seeds and the synth store → normalized, filtered, deduplicated, split Parquet in Hub layout.

Every dropped record goes to the quarantine with its reason. The release folder is swapped in only when the
whole build has succeeded, and the same inputs give byte-identical Parquet files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from catalog import Catalog
from catalog.layout import SPLITS, split_path
from catalog.records import RECORD_COLUMNS
from catalog.settings import Settings
from pipeline.hub_layout import write_release_readme
from pipeline.normalize import comparison_key_expr, normalized_text
from validation.language import language_problems
from validation.near_dup import GROUP_THRESHOLD, NEAR_DUPLICATE_THRESHOLD, clusters, near_duplicate_pairs
from validation.pii import PII_HINT, find_pii
from validation.records import RecordFile, check_frame, read_record_file, record_files

# Why a record was dropped, in the order the filters run.
REASONS: tuple[str, ...] = ("unreadable", "language", "invalid", "pii", "exact_duplicate", "near_duplicate")
QUARANTINE_DIR = "_quarantine"
PARALLEL_READ_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class BuildConfig:
    name: str = "anytasktune"
    near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD
    group_threshold: float = GROUP_THRESHOLD
    validation_share: float = 0.1
    test_share: float = 0.1  # of synthesized groups; gold seeds go to test, exemplar seeds never do


@dataclass
class BuildResult:
    release: Path
    quarantine: Path
    report: dict
    records: pl.DataFrame = field(repr=False)


class BuildError(RuntimeError):
    """The build cannot produce a release; the previous one is left as it was."""


def build(catalog: Catalog, settings: Settings, config: BuildConfig = BuildConfig()) -> BuildResult:
    """Run the whole build and swap the release in; raises BuildError (previous release untouched) on failure."""
    frame, dropped = load_inputs(catalog, settings)
    records_in = _counts(pl.concat([frame.select("task", "lang"), dropped.select("task", "lang")]))
    frame, more = filter_records(frame, config)
    dropped = pl.concat([dropped, more])
    frame = assign_splits(frame, config)
    report = build_report(catalog, records_in, dropped, frame, config)
    release = settings.build_dir / config.name
    quarantine = settings.build_dir / QUARANTINE_DIR / f"{config.name}.jsonl"
    with _exclusive(settings.build_dir / f".lock-{config.name}"):  # two builds at once would share a staging folder
        _write_atomically(release, lambda staging: _write_release(staging, frame, catalog, report, config))
        _write_atomically(quarantine, lambda staging: _write_quarantine(staging, dropped))
    return BuildResult(release, quarantine, report, frame)


def load_inputs(catalog: Catalog, settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All seed and synth records as one frame; lines that cannot be read go straight to the quarantine.

    Large stores are read a file per process: parsing JSON lines is Python work, and the store is sharded by file.
    """
    sources = [settings.seeds_dir] + ([settings.synth_dir] if settings.synth_dir.exists() else [])
    paths = record_files(sources)
    large = sum(p.stat().st_size for p in paths) > PARALLEL_READ_BYTES
    workers = min(len(paths), os.cpu_count() or 1) if large else 1
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            loaded = list(pool.map(_read_checked, paths, [catalog] * len(paths)))
    else:
        loaded = [_read_checked(path, catalog) for path in paths]
    frames, dropped = [], []
    for path, part in zip(paths, loaded, strict=True):
        bad_lines = {p.line for p in part.problems}
        frames.append(part.frame.filter(~pl.col("line").is_in(list(bad_lines))) if bad_lines else part.frame)
        task = path.stem if path.stem in catalog else None
        for line in sorted(bad_lines, key=lambda n: n or 0):
            found = [p for p in part.problems if p.line == line]
            detail = "; ".join(f"{p.field}: {p.reason}" if p.field else p.reason for p in found)
            dropped.append(
                {"reason": "unreadable", "detail": detail, "file": found[0].file, "line": line, "task": task}
            )
    frame = pl.concat(frames) if frames else pl.DataFrame()
    return frame, _quarantine_rows(pl.DataFrame(dropped, schema=_DROP_SCHEMA) if dropped else None)


def _read_checked(path: Path, catalog: Catalog) -> RecordFile:
    """One record file, normalized and checked record by record where it was read (in a worker, for large stores)."""
    loaded = read_record_file(path, catalog)
    structured = [t.id for t in catalog if t.is_structured]
    frame = loaded.frame.with_columns(
        normalized_text("instruction"),
        normalized_text("input"),
        pl.when(pl.col("task").is_in(structured)).then(pl.col("output")).otherwise(normalized_text("output")),
    )
    loaded.frame = check_records(frame, catalog)
    return loaded


def check_records(frame: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """The record-by-record filters, as one column each of the reason a record fails it (null where it passes):
    language, the record contract, personal data. Duplicates need all records at once and come later."""
    reasons = pl.DataFrame([language_problems(frame, column) for column in ("instruction", "input")])
    language = reasons.select(pl.coalesce(pl.concat_str(pl.lit(f"{c}: "), pl.col(c)) for c in reasons.columns))
    frame = frame.with_columns(language.to_series().alias("_language"))

    speaks = frame.filter(pl.col("_language").is_null())
    detail_of: dict[tuple[str, int], list[str]] = {}
    for p in check_frame(speaks, catalog, duplicates=False, languages=False):
        detail_of.setdefault((p.file, p.line), []).append(f"{p.field}: {p.reason}")
    invalid = ["; ".join(detail_of[key]) if key in detail_of else None for key in frame.select("file", "line").rows()]

    hint = frame.select((pl.col("input") + "\n" + pl.col("output")).str.contains(PII_HINT)).to_series()
    pii = [
        ", ".join(find_pii(i + "\n" + o)) or None if h else None
        for i, o, h in zip(frame["input"], frame["output"], hint, strict=True)
    ]
    return frame.with_columns(pl.Series("_invalid", invalid, pl.String), pl.Series("_pii", pii, pl.String))


_DROP_SCHEMA = {"reason": pl.String, "detail": pl.String, "file": pl.String, "line": pl.Int64, "task": pl.String}
_QUARANTINE_COLUMNS = ("reason", "detail", "file", "line", "id", "task", "lang", "instruction", "input", "output")


def _quarantine_rows(frame: pl.DataFrame | None) -> pl.DataFrame:
    schema = {c: (pl.Int64 if c == "line" else pl.String) for c in _QUARANTINE_COLUMNS}
    if frame is None or frame.is_empty():
        return pl.DataFrame(schema=schema)
    missing = [pl.lit(None, dtype).alias(c) for c, dtype in schema.items() if c not in frame.columns]
    return frame.with_columns(missing).select([pl.col(c).cast(schema[c]) for c in _QUARANTINE_COLUMNS])


def _drop(
    frame: pl.DataFrame, mask: pl.Series, reason: str, detail: pl.Series | str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split `frame` by `mask`: the kept rows, and the dropped ones as quarantine rows with reason and detail."""
    detail_series = detail if isinstance(detail, pl.Series) else pl.Series([detail] * frame.height)
    gone = frame.with_columns(reason=pl.lit(reason), detail=detail_series.alias("detail")).filter(mask)
    return frame.filter(~mask), _quarantine_rows(gone)


def filter_records(frame: pl.DataFrame, config: BuildConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drop what `check_records` found (language, contract, personal data), then exact and near duplicates; return
    the kept rows in priority order, with their split group, and the dropped ones as quarantine rows."""
    dropped: list[pl.DataFrame] = []
    if frame.is_empty():
        return frame, _quarantine_rows(None)
    # Priority decides which twin survives and which record leads a split group: seeds (gold first) before
    # synthesized records, then the order they were written in, so appending to the store never reshuffles.
    frame = frame.sort(pl.col("source") != "seed", pl.col("role") != "gold", "file", "line", maintain_order=True)

    for reason, column in (("language", "_language"), ("invalid", "_invalid"), ("pii", "_pii")):
        detail = frame[column]
        frame, gone = _drop(frame.drop(column), detail.is_not_null(), reason, detail)
        dropped.append(gone)

    first = frame.select(pl.col("id").is_first_distinct()).to_series()
    twin_of = frame.select(
        pl.format("same input as {}:{}", pl.col("file").first(), pl.col("line").first()).over("id")
    ).to_series()
    frame, gone = _drop(frame, ~first, "exact_duplicate", twin_of)
    dropped.append(gone)

    frame = frame.with_columns(comparison_key_expr("input").alias("_key"))
    pairs = near_duplicate_pairs(frame, "_key", config.group_threshold)
    close = pairs.filter(pl.col("similarity") >= config.near_duplicate_threshold)
    lead = clusters(frame.height, close)
    is_lead = pl.Series(lead == np.arange(frame.height))
    lead_where = frame.select(
        pl.format("near-duplicate of {}:{}", pl.col("file").gather(lead), pl.col("line").gather(lead))
    ).to_series()
    kept_rows = np.flatnonzero(is_lead.to_numpy()).tolist()
    frame, gone = _drop(frame, ~is_lead, "near_duplicate", lead_where)
    dropped.append(gone)

    # Split groups: what is left, joined by the looser threshold, led by its highest-priority member.
    remap = {old: new for new, old in enumerate(kept_rows)}
    loose = pairs.filter(pl.col("left").is_in(kept_rows) & pl.col("right").is_in(kept_rows)).select(
        pl.col("left").replace_strict(remap, return_dtype=pl.UInt32),
        pl.col("right").replace_strict(remap, return_dtype=pl.UInt32),
    )
    group_lead = clusters(frame.height, loose)
    frame = frame.with_columns(
        pl.Series("group", frame["id"].to_numpy()[group_lead] if frame.height else [], dtype=pl.String)
    ).drop("_key")
    return frame, pl.concat(dropped)


def assign_splits(frame: pl.DataFrame, config: BuildConfig) -> pl.DataFrame:
    """Deterministic, leakage-safe split by group: a group with an exemplar seed is train/validation, a group with a
    gold seed (and no exemplar) is test, and synthesized groups fall by the hash of their lead's id."""
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, pl.String).alias("split"))
    by_group = frame.group_by("group").agg(
        has_exemplar=(pl.col("role") == "exemplar").any(), has_gold=(pl.col("role") == "gold").any()
    )
    position = {g: _unit_interval(g) for g in by_group["group"]}
    splits = {}
    for group, has_exemplar, has_gold in by_group.iter_rows():
        u = position[group]
        if has_exemplar:
            splits[group] = "validation" if u < config.validation_share else "train"
        elif has_gold or u < config.test_share:
            splits[group] = "test"
        elif u < config.test_share + config.validation_share:
            splits[group] = "validation"
        else:
            splits[group] = "train"
    frame = frame.with_columns(pl.col("group").replace_strict(splits, return_dtype=pl.String).alias("split"))
    # A split with no rows breaks `load_dataset` for its config: where a task and language has no validation
    # record, its train group with the lowest hash position moves there (a deterministic choice).
    for _, part in frame.group_by("task", "lang", maintain_order=True):
        if (part["split"] == "validation").any():
            continue
        candidates = part.filter(pl.col("split") == "train")["group"].unique().to_list()
        if len(candidates) > 1:
            splits[min(candidates, key=position.__getitem__)] = "validation"
    return frame.with_columns(pl.col("group").replace_strict(splits, return_dtype=pl.String).alias("split"))


def _unit_interval(key: str) -> float:
    """A stable position in [0, 1) from a key: the same group lands in the same split in every build."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def _counts(frame: pl.DataFrame) -> dict[tuple[str, str], int]:
    if frame.is_empty():
        return {}
    return {(task, lang): n for task, lang, n in frame.group_by("task", "lang").len().iter_rows()}


def build_report(
    catalog: Catalog, records_in: dict, dropped: pl.DataFrame, frame: pl.DataFrame, config: BuildConfig
) -> dict:
    """Records in, dropped per reason, out and per split, for every task and language (JSON-ready)."""
    drops = {}
    for task, lang, reason, n in dropped.group_by("task", "lang", "reason").len().iter_rows():
        drops[(task, lang, reason)] = n
    splits = {}
    if not frame.is_empty():
        for task, lang, split, n in frame.group_by("task", "lang", "split").len().iter_rows():
            splits[(task, lang, split)] = n
    rows = []
    for spec in catalog:
        for lang in ("en", "zh"):
            row = {"task": spec.id, "lang": lang, "in": records_in.get((spec.id, lang), 0)}
            row.update({reason: drops.get((spec.id, lang, reason), 0) for reason in REASONS})
            row["out"] = sum(splits.get((spec.id, lang, s), 0) for s in SPLITS)
            row.update({s: splits.get((spec.id, lang, s), 0) for s in SPLITS})
            rows.append(row)
    unattributed = dropped.filter(pl.col("task").is_null() | pl.col("lang").is_null())
    totals = {key: sum(r[key] for r in rows) for key in ("in", *REASONS, "out", *SPLITS)}
    totals["in"] += unattributed.height
    totals["unreadable"] += unattributed.height
    thresholds = {key: value for key, value in asdict(config).items() if key != "name"}
    return {"rows": rows, "totals": totals, "thresholds": thresholds}


def _write_release(staging: Path, frame: pl.DataFrame, catalog: Catalog, report: dict, config: BuildConfig) -> None:
    staging.mkdir(parents=True)
    for spec in catalog:
        for split in SPLITS:
            part = (
                frame.filter((pl.col("task") == spec.id) & (pl.col("split") == split))
                if not frame.is_empty()
                else frame
            )
            rows = (
                part.sort("lang", "id").select(RECORD_COLUMNS)
                if not part.is_empty()
                else pl.DataFrame(schema=dict.fromkeys(RECORD_COLUMNS, pl.String))
            )
            path = staging / split_path(spec.id, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            rows.write_parquet(path, compression="zstd", compression_level=9, statistics=True, row_group_size=100_000)
    (staging / "build_report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    write_release_readme(staging, catalog, config.name)


def _write_quarantine(staging: Path, dropped: pl.DataFrame) -> None:
    staging.parent.mkdir(parents=True, exist_ok=True)
    with staging.open("w", encoding="utf-8") as out:
        for row in dropped.sort("reason", "file", "line", nulls_last=True).iter_rows(named=True):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Write into a staging path beside `target`, then swap it in; on any failure `target` stays as it was."""
    staging = target.with_name(f".staging-{target.name}")
    backup = target.with_name(f".previous-{target.name}")
    for leftover in (staging, backup):
        _remove(leftover)
    try:
        write(staging)
    except BaseException:
        _remove(staging)
        raise
    if target.exists():
        target.rename(backup)
    staging.rename(target)
    _remove(backup)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
