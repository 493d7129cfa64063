"""The build: seeds and the synth store → normalized, filtered, deduplicated, split Parquet in Hub layout.

The build is a list of named steps. Each per-record step is one vectorised check that gives the reason a record
fails it (null where it passes); duplicates and split groups need all records at once and come after. Every dropped
record goes to the quarantine with its step, the field and the reason. A build writes its own run folder and is
published with one atomic pointer switch (`pipeline.runs`), and the same inputs give byte-identical Parquet files.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
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
from catalog.spec import DEFAULT_MAX_CHARS, LANGS
from pipeline.hub_layout import write_release_readme
from pipeline.normalize import normalized_text, without_controls
from pipeline.runs import Run, new_run, publish, quarantine_path, recover, release_path
from validation.keys import dedup_key_expr
from validation.language import language_problems
from validation.near_dup import (
    GROUP_THRESHOLD,
    NEAR_DUPLICATE_THRESHOLD,
    VERIFY_MARGIN,
    Params,
    candidate_pairs,
    components,
    exact_jaccard,
    keep_first_of_twins,
    lsh_recall,
)
from validation.outputs import OutputError, output_texts
from validation.pii import pii_problems
from validation.records import RecordFile, check_frame, is_trusted, read_record_file, record_files

# The per-record steps, in the order they run: a record failing several is quarantined under the first.
RECORD_STEPS: tuple[str, ...] = ("too_long", "language", "invalid", "pii")
# Why a record was dropped, in build order.
REASONS: tuple[str, ...] = ("unreadable", *RECORD_STEPS, "exact_duplicate", "near_duplicate", "gold_leak")
# Stores larger than this are read a file per worker process (the variable lets tests force workers on small data).
PARALLEL_READ_BYTES = int(os.environ.get("ANYTASKTUNE_PARALLEL_READ_BYTES", 64 * 1024 * 1024))


@dataclass(frozen=True)
class BuildConfig:
    name: str = "anytasktune"
    near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD
    group_threshold: float = GROUP_THRESHOLD
    validation_share: float = 0.1
    test_share: float = 0.1  # of groups without a seed; gold seeds go to test, exemplar seeds never do


@dataclass
class BuildResult:
    release: Path
    quarantine: Path
    report: dict
    records: pl.DataFrame = field(repr=False)
    seconds: dict[str, float] = field(default_factory=dict)


class BuildError(RuntimeError):
    """The build cannot produce a release; the previous one is left as it was."""


class _Clock:
    """Seconds per step, for the command's output (not the report: the report is part of a reproducible release)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] = round(now - self._last, 2)
        self._last = now


def build(catalog: Catalog, settings: Settings, config: BuildConfig = BuildConfig()) -> BuildResult:
    """Run the whole build and publish it; on any failure the previous release stays current, untouched."""
    build_dir = settings.build_dir
    with _exclusive(build_dir / f".lock-{config.name}"):  # two builds of one name would race for the pointer
        recover(build_dir, config.name)
        clock = _Clock()
        frame, dropped, overridden = load_inputs(catalog, settings)
        clock.lap("read and check")
        records_in = _counts(pl.concat([frame.select("task", "lang"), dropped.select("task", "lang")]))
        frame, more, steps = filter_records(frame, config, clock)
        dropped = pl.concat([dropped, more])
        frame, leaks = assign_splits(frame, config)
        dropped = pl.concat([dropped, leaks])
        clock.lap("split")
        report = build_report(catalog, records_in, dropped, frame, config)
        read = sum(records_in.values())
        if read != frame.height + dropped.height:  # the promise that nothing disappears, checked on every build
            raise BuildError(f"{read} records read but {frame.height} kept and {dropped.height} quarantined")
        report["steps"] = steps
        report["overridden_claims"] = len(overridden)
        run = new_run(build_dir, config.name)
        _write_release(run, frame, catalog, report, config)
        _write_quarantine(run.quarantine, dropped)
        clock.lap("write")
        publish(build_dir, config.name, run)
    release = release_path(build_dir, config.name)
    return BuildResult(release, quarantine_path(build_dir, config.name), report, frame, clock.seconds)


def load_inputs(catalog: Catalog, settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame, list]:
    """All seed and synth records as one frame, checked record by record; lines that cannot be read go straight
    to the quarantine. Also returns the claims overridden at the trust boundary (synth lines saying they are seeds).

    Large stores are read a file per process: parsing JSON lines is Python work, and the store is sharded by file.
    """
    sources = [settings.seeds_dir] + ([settings.synth_dir] if settings.synth_dir.exists() else [])
    paths = record_files(sources)
    trusted = [is_trusted(path, settings.seeds_dir) for path in paths]
    large = sum(p.stat().st_size for p in paths) > PARALLEL_READ_BYTES
    workers = min(len(paths), os.cpu_count() or 1) if large else 1
    if workers > 1:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_die_with_parent) as pool:
            loaded = list(pool.map(_read_checked, paths, [catalog] * len(paths), trusted))
    else:
        loaded = [_read_checked(path, catalog, trust) for path, trust in zip(paths, trusted, strict=True)]
    frames, dropped, overridden = [], [], []
    for path, part in zip(paths, loaded, strict=True):
        overridden.extend(part.overridden)
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
    return frame, _quarantine_rows(pl.DataFrame(dropped, schema=_DROP_SCHEMA) if dropped else None), overridden


def _die_with_parent() -> None:
    """In a worker: be killed when the build process dies, even by SIGKILL (Linux `prctl(PR_SET_PDEATHSIG)`)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown is all there is
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def _read_checked(path: Path, catalog: Catalog, trusted: bool) -> RecordFile:
    """One record file, normalized and checked record by record where it was read (in a worker, for large stores)."""
    loaded = read_record_file(path, catalog, trusted=trusted)
    structured = [t.id for t in catalog if t.is_structured]
    frame = loaded.frame.with_columns(
        normalized_text("instruction"),
        normalized_text("input"),
        pl.when(pl.col("task").is_in(structured))
        .then(without_controls("output"))
        .otherwise(normalized_text("output"))
        .alias("output"),
    )
    loaded.frame = check_records(frame, catalog)
    return loaded


def check_records(frame: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """The per-record steps, as one column each (`_too_long`, `_language`, `_invalid`, `_pii`) holding the reason
    a record fails that step, or null where it passes."""
    limit = pl.col("task").replace_strict({t.id: t.max_chars for t in catalog}, default=DEFAULT_MAX_CHARS)
    too_long = pl.coalesce(
        pl.when((length := pl.col(column).str.len_chars()) > limit).then(
            pl.format("{}: {} characters, over the task's limit of {}", pl.lit(column), length, limit)
        )
        for column in ("input", "output")
    )
    frame = frame.with_columns(too_long.alias("_too_long"), _output_text(frame, catalog).alias("_output_text"))
    # The instruction is checked by the contract (one of the task's own), so language looks at what was written.
    checked = {"input": "input", "output": "_output_text"}
    language = pl.DataFrame([language_problems(frame, column).alias(name) for name, column in checked.items()])
    language = language.select(pl.coalesce(pl.concat_str(pl.lit(f"{name}: "), pl.col(name)) for name in checked))
    frame = frame.with_columns(language.to_series().alias("_language")).drop("_output_text")

    speaks = frame.filter(pl.col("_language").is_null() & pl.col("_too_long").is_null())
    detail_of: dict[tuple[str, int], list[str]] = {}
    for p in check_frame(speaks, catalog, duplicates=False, languages=False):
        detail_of.setdefault((p.file, p.line), []).append(f"{p.field}: {p.reason}")
    invalid = ["; ".join(detail_of[key]) if key in detail_of else None for key in frame.select("file", "line").rows()]
    return frame.with_columns(
        pl.Series("_invalid", invalid, pl.String), pii_problems(frame, ("input", "output")).alias("_pii")
    )


def _output_text(frame: pl.DataFrame, catalog: Catalog) -> pl.Series:
    """The natural-language part of each output, for the language check: free text as it is, list items joined,
    nothing for labels and JSON fields (closed sets and short phrases say too little about the language)."""
    text_tasks = [t.id for t in catalog if t.output.format == "text"]
    items_tasks = {t.id for t in catalog if t.output.format == "items"}
    joined: list[str | None] = [None] * frame.height
    if items_tasks:
        for index, (task, output) in enumerate(frame.select("task", "output").iter_rows()):
            if task in items_tasks:
                try:
                    joined[index] = "\n".join(output_texts(catalog.get(task), output))
                except OutputError:
                    joined[index] = None  # the contract step reports the broken output
    items = pl.Series("_items", joined, pl.String)
    return frame.select(
        pl.when(pl.col("task").is_in(text_tasks)).then(pl.col("output")).otherwise(items).fill_null("")
    ).to_series()


_DROP_SCHEMA = {"reason": pl.String, "detail": pl.String, "file": pl.String, "line": pl.Int64, "task": pl.String}
_QUARANTINE_SCHEMA = {
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


def _quarantine_rows(frame: pl.DataFrame | None) -> pl.DataFrame:
    if frame is None or frame.is_empty():
        return pl.DataFrame(schema=_QUARANTINE_SCHEMA)
    missing = [pl.lit(None, dtype).alias(c) for c, dtype in _QUARANTINE_SCHEMA.items() if c not in frame.columns]
    return frame.with_columns(missing).select([pl.col(c).cast(t) for c, t in _QUARANTINE_SCHEMA.items()])


def _drop(frame: pl.DataFrame, mask: pl.Series, reason: str, **columns: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split `frame` by `mask`: the kept rows, and the dropped ones as quarantine rows with reason and detail.

    A null in the mask counts as false: filtering on null would drop the row from both sides, silently.
    """
    mask = mask.fill_null(False)
    gone = frame.with_columns(pl.lit(reason).alias("reason"), *(v.alias(k) for k, v in columns.items())).filter(mask)
    return frame.filter(~mask), _quarantine_rows(gone)


def _step(steps: list[dict], name: str, before: int, after: int) -> None:
    steps.append({"step": name, "in": before, "out": after})


def filter_records(
    frame: pl.DataFrame, config: BuildConfig, clock: _Clock | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, list[dict]]:
    """Drop what `check_records` found, then exact and near duplicates; return the kept rows in priority order
    with their split group, the dropped ones as quarantine rows, and each step's records in and out."""
    clock = clock or _Clock()
    dropped: list[pl.DataFrame] = []
    steps: list[dict] = []
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, pl.String).alias("split_group")), _quarantine_rows(None), steps
    # Priority decides which twin survives and which record leads a split group: seeds (gold first) before
    # synthesized records, then the order they were written in, so appending to the store never reshuffles.
    frame = frame.sort(pl.col("source") != "seed", pl.col("role") != "gold", "file", "line", maintain_order=True)

    for reason in RECORD_STEPS:
        column = f"_{reason}"
        before = frame.height
        detail = frame[column]
        frame, gone = _drop(frame.drop(column), detail.is_not_null(), reason, detail=detail)
        dropped.append(gone)
        _step(steps, reason, before, frame.height)
    clock.lap("per-record steps")

    before = frame.height
    first = frame.select(pl.col("id").is_first_distinct()).to_series()
    lead = frame.select(
        pl.format("same input as {}:{} (id {})", pl.col("file").first(), pl.col("line").first(), pl.col("id").first())
        .over("id")
        .alias("detail"),
        pl.col("id").alias("twin"),
    )
    frame, gone = _drop(frame, ~first, "exact_duplicate", detail=lead["detail"], twin=lead["twin"])
    dropped.append(gone)
    _step(steps, "exact_duplicate", before, frame.height)
    clock.lap("exact duplicates")

    before = frame.height
    frame, gone, pairs = _drop_near_duplicates(frame, config)
    dropped.append(gone)
    _step(steps, "near_duplicate", before, frame.height)
    clock.lap("near duplicates")
    frame = frame.with_columns(_split_groups(frame, pairs, config).alias("split_group")).drop("_key")
    clock.lap("split groups")
    return frame, pl.concat(dropped), steps


def _drop_near_duplicates(frame: pl.DataFrame, config: BuildConfig) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Drop a record only for a kept same-task twin at exact Jaccard ≥ the threshold (no chains). Returns the kept
    rows, the dropped ones, and the verified pairs at ≥ the group threshold among the kept rows (re-indexed)."""
    frame = frame.with_columns(dedup_key_expr("input").alias("_key"))
    if frame.is_empty():
        return frame, _quarantine_rows(None), pl.DataFrame(schema={"left": pl.UInt32, "right": pl.UInt32})
    candidates = candidate_pairs(frame, "_key", config.group_threshold - VERIFY_MARGIN)
    similarity = exact_jaccard(
        frame["_key"], frame["lang"], candidates["left"].to_numpy(), candidates["right"].to_numpy()
    )
    pairs = candidates.with_columns(similarity=pl.Series(similarity)).filter(
        pl.col("similarity") >= config.group_threshold
    )
    twins = pairs.filter(pl.col("same_task") & (pl.col("similarity") >= config.near_duplicate_threshold))
    kept, twin, twin_similarity = keep_first_of_twins(frame.height, twins)
    twin_rows = np.where(kept, 0, twin)
    twin_frame = frame.select(
        pl.col("file").gather(twin_rows), pl.col("line").gather(twin_rows), pl.col("id").gather(twin_rows)
    )
    similarity_series = pl.Series(twin_similarity).round(3)
    detail = pl.DataFrame([twin_frame["file"], twin_frame["line"], twin_frame["id"], similarity_series]).select(
        pl.format("near-duplicate of {}:{} (id {}), Jaccard {}", *[pl.nth(i) for i in range(4)])
    )
    frame = frame.with_columns(pl.Series("_kept", kept))
    gone_mask = ~frame["_kept"]
    kept_frame, gone = _drop(
        frame,
        gone_mask,
        "near_duplicate",
        detail=detail.to_series(),
        twin=twin_frame["id"],
        similarity=similarity_series,
    )
    # Re-index the pairs onto the kept rows: the groups are formed among what is published.
    new_index = np.cumsum(kept) - 1
    among_kept = pairs.filter(pl.Series(kept[pairs["left"].to_numpy()] & kept[pairs["right"].to_numpy()]))
    among_kept = among_kept.with_columns(
        pl.Series("left", new_index[among_kept["left"].to_numpy()], pl.UInt32),
        pl.Series("right", new_index[among_kept["right"].to_numpy()], pl.UInt32),
    )
    return kept_frame.drop("_kept"), gone, among_kept


def _split_groups(frame: pl.DataFrame, pairs: pl.DataFrame, config: BuildConfig) -> pl.Series:
    """Each record's split group: connected components over near-twin pairs (≥ the group threshold, any task of one
    language) and over the `group` field (translations), named by the id of the group's highest-priority record."""
    left, right = [pairs["left"].to_numpy()], [pairs["right"].to_numpy()]
    declared = (
        frame.select(pl.col("group"), pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"))
        .filter(pl.col("group").is_not_null())
        .with_columns(pl.col("row").first().over("group").alias("first"))
    )
    left.append(declared["first"].to_numpy())
    right.append(declared["row"].to_numpy())
    label = components(frame.height, np.concatenate(left), np.concatenate(right))
    return pl.Series("split_group", frame["id"].to_numpy()[label] if frame.height else [], dtype=pl.String)


def assign_splits(frame: pl.DataFrame, config: BuildConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Deterministic, leakage-safe split by group: a group with a gold seed is test, and any exemplar seed in it is
    quarantined as a gold leak (exemplars are shown to the synthesizer and belong in train); a group with an
    exemplar is train/validation; other groups fall by the hash of their lead's id, 80/10/10."""
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, pl.String).alias("split")), _quarantine_rows(None)
    by_group = frame.group_by("split_group").agg(
        has_exemplar=(pl.col("role") == "exemplar").any(),
        gold=pl.col("id").filter(pl.col("role") == "gold").first(),
    )
    gold_of = {g: gold for g, gold in by_group.select("split_group", "gold").iter_rows() if gold is not None}
    leak = (pl.col("role") == "exemplar") & pl.col("split_group").is_in(list(gold_of))
    gold_where = frame.filter(pl.col("role") == "gold").select("id", pl.format("{}:{}", "file", "line").alias("at"))
    where = dict(gold_where.iter_rows())
    twin = frame.select(pl.col("split_group").replace_strict(gold_of, default=None, return_dtype=pl.String)).to_series()
    detail = pl.Series([f"in the split group of gold record {where.get(g, g)} (id {g})" if g else None for g in twin])
    frame, leaks = _drop(frame, frame.select(leak).to_series(), "gold_leak", detail=detail, twin=twin)

    position = {g: _unit_interval(g) for g in by_group["split_group"]}
    splits = {}
    for group, has_exemplar, gold in by_group.iter_rows():
        u = position[group]
        if gold is not None or (not has_exemplar and u < config.test_share):
            splits[group] = "test"
        elif has_exemplar:
            splits[group] = "validation" if u < config.validation_share else "train"
        elif u < config.test_share + config.validation_share:
            splits[group] = "validation"
        else:
            splits[group] = "train"
    # A split with no rows breaks `load_dataset` for its config: where a task and language has no validation
    # record, its train group with the lowest hash position moves there (a deterministic choice).
    assigned = frame.with_columns(pl.col("split_group").replace_strict(splits, return_dtype=pl.String).alias("split"))
    for _, part in assigned.group_by("task", "lang", maintain_order=True):
        if (part["split"] == "validation").any():
            continue
        candidates = part.filter(pl.col("split") == "train")["split_group"].unique().to_list()
        if len(candidates) > 1:
            splits[min(candidates, key=position.__getitem__)] = "validation"
    frame = frame.with_columns(pl.col("split_group").replace_strict(splits, return_dtype=pl.String).alias("split"))
    return frame, leaks


def _unit_interval(key: str) -> float:
    """A stable position in [0, 1) from a key: the same group lands in the same split in every build."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def _counts(frame: pl.DataFrame) -> dict[tuple[str | None, str | None], int]:
    if frame.is_empty():
        return {}
    return {(task, lang): n for task, lang, n in frame.group_by("task", "lang").len().iter_rows()}


def build_report(
    catalog: Catalog, records_in: dict, dropped: pl.DataFrame, frame: pl.DataFrame, config: BuildConfig
) -> dict:
    """Records in, dropped per reason, out and per split, for every task and language (JSON-ready). Records whose
    task or language is not in the catalog (unreadable lines, `lang: fr`) are counted in a row of their own."""
    known = {(spec.id, lang) for spec in catalog for lang in LANGS}
    drops: dict[tuple, int] = {}
    for task, lang, reason, n in dropped.group_by("task", "lang", "reason").len().iter_rows():
        key = (task, lang) if (task, lang) in known else (None, None)
        drops[(*key, reason)] = drops.get((*key, reason), 0) + n
    splits: dict[tuple, int] = {}
    if not frame.is_empty():
        for task, lang, split, n in frame.group_by("task", "lang", "split").len().iter_rows():
            splits[(task, lang, split)] = n
    other_in = sum(n for key, n in records_in.items() if key not in known)
    rows = []
    cells = [(spec.id, lang) for spec in catalog for lang in LANGS] + ([(None, None)] if other_in else [])
    for task, lang in cells:
        count = other_in if task is None else records_in.get((task, lang), 0)
        row = {"task": task or "(unknown task or language)", "lang": lang or "", "in": count}
        row.update({reason: drops.get((task, lang, reason), 0) for reason in REASONS})
        row["out"] = sum(splits.get((task, lang, s), 0) for s in SPLITS)
        row.update({s: splits.get((task, lang, s), 0) for s in SPLITS})
        rows.append(row)
    totals = {key: sum(r[key] for r in rows) for key in ("in", *REASONS, "out", *SPLITS)}
    thresholds = {key: value for key, value in asdict(config).items() if key != "name"}
    params = Params()
    thresholds.update(
        num_perm=params.num_perm,
        bands=params.bands,
        lsh_recall_at_group_threshold=round(lsh_recall(config.group_threshold), 4),
        lsh_recall_at_near_duplicate_threshold=round(lsh_recall(config.near_duplicate_threshold), 4),
    )
    largest = frame.group_by("split_group").len()["len"].max() if not frame.is_empty() else 0
    return {"rows": rows, "totals": totals, "thresholds": thresholds, "largest_split_group": largest}


def _write_release(run: Run, frame: pl.DataFrame, catalog: Catalog, report: dict, config: BuildConfig) -> None:
    staging = run.release
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


def _write_quarantine(path: Path, dropped: pl.DataFrame) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in dropped.sort("reason", "file", "line", nulls_last=True).iter_rows(named=True):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
