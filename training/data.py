"""The records a run trains or evaluates on: a release folder, or a Hub dataset repo at a revision, narrowed to a
selection of tasks (ids, codes, domains or `all`) and languages, optionally mixed with a general instruction set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from catalog import Catalog, TaskSpec
from catalog.layout import split_path

ALPACA_COLUMNS: tuple[str, ...] = ("instruction", "input", "output")
RECORD_FIELDS: tuple[str, ...] = ("id", "task", "lang", *ALPACA_COLUMNS)
GENERAL_TASK = "general"


class DataError(ValueError):
    """The data a run asked for cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ReleaseSource:
    """Where a release lives: a local folder in Hub layout, or a Hub dataset repo id with an optional revision."""

    location: str
    revision: str | None = None

    def is_local(self) -> bool:
        return Path(self.location).is_dir()


def resolve_release(source: ReleaseSource, specs: list[TaskSpec]) -> Path:
    """A local folder holding the release; a Hub repo is fetched (only the selected tasks' files) into the HF cache."""
    if source.is_local():
        if source.revision is not None:
            raise DataError(f"{source.location}: a local release folder has no revisions; drop --revision")
        return Path(source.location)
    if "/" not in source.location:
        raise DataError(f"{source.location}: neither a release folder nor a Hub dataset repo id (owner/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = ["README.md", *(f"data/{spec.id}/*" for spec in specs)]
    try:
        folder = snapshot_download(
            source.location, repo_type="dataset", revision=source.revision, allow_patterns=patterns
        )
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        at = f"@{source.revision}" if source.revision else ""
        raise DataError(f"{source.location}{at}: cannot fetch the release from the Hub: {err}") from None
    return Path(folder)


def load_split(release: Path, specs: list[TaskSpec], split: str, langs: tuple[str, ...] = ("en", "zh")) -> pl.DataFrame:
    """One split of the selected tasks, in catalog order, with the columns a run needs."""
    frames = []
    for spec in specs:
        path = release / split_path(spec.id, split)
        if not path.exists():
            raise DataError(f"{path}: missing; the release has no {split} split for task {spec.id!r}")
        try:
            frame = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as err:
            raise DataError(f"{path}: not a readable Parquet file: {err}") from None
        missing = [c for c in RECORD_FIELDS if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
        frames.append(frame.select(RECORD_FIELDS).filter(pl.col("lang").is_in(list(langs))))
    if not frames:
        raise DataError("no task selected")
    return pl.concat(frames)


def select_tasks(catalog: Catalog, keys: list[str]) -> list[TaskSpec]:
    """Tasks by id, code, domain or `all`, with an error that lists what is known when a key is not."""
    try:
        return catalog.select(keys)
    except KeyError as err:
        known = ", ".join(catalog.domains)
        raise DataError(f"{err.args[0]}; domains: {known}; or 'all'") from None


def load_general(path: Path) -> pl.DataFrame:
    """A general instruction set in Alpaca form (JSON, JSONL or Parquet with instruction, input, output)."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif path.suffix == ".jsonl":
            rows = []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise DataError(f"{path}:{number}: not valid JSON: {err.msg}") from None
            frame = pl.DataFrame(rows)
        else:
            frame = pl.DataFrame(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, pl.exceptions.PolarsError) as err:
        raise DataError(f"{path}: not a readable instruction set: {err}") from None
    if "input" not in frame.columns:
        frame = frame.with_columns(pl.lit("").alias("input"))
    missing = [c for c in ALPACA_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing field(s) {', '.join(missing)} (Alpaca form: instruction, input, output)")
    lang = pl.col("lang").fill_null("").cast(pl.String) if "lang" in frame.columns else pl.lit("")
    return frame.select(
        pl.format("general-{}", pl.int_range(pl.len())).alias("id"),
        pl.lit(GENERAL_TASK).alias("task"),
        lang.alias("lang"),
        *(pl.col(c).fill_null("").cast(pl.String) for c in ALPACA_COLUMNS),
    )


def _quotas(task_records: pl.DataFrame, general: pl.DataFrame, share: float) -> list[tuple[pl.DataFrame, int]]:
    """Where the general records come from and how many each source should give. A set whose records all carry a
    `lang` gives each language its share from its own records; one without languages is sampled as a whole."""
    if not 0 <= share < 1:
        raise DataError(f"general share must be in [0, 1), got {share}")

    def wanted(records: int) -> int:
        return round(records * share / (1 - share))

    if general.height and (general["lang"] != "").all():
        counts = task_records.group_by("lang").len().sort("lang").rows()
        return [(general.filter(pl.col("lang") == lang), wanted(n)) for lang, n in counts]
    return [(general, wanted(task_records.height))]


def general_wanted(task_records: pl.DataFrame, general: pl.DataFrame, share: float) -> int:
    """How many general records `share` asks for beside `task_records`."""
    return sum(n for _, n in _quotas(task_records, general, share))


def mix_general(task_records: pl.DataFrame, general: pl.DataFrame, share: float, seed: int) -> pl.DataFrame:
    """Task records plus a deterministic sample of general records making up `share` of the mix (fewer when the set
    is smaller), each language's share from its own records when the set names languages (`_quotas`)."""
    quotas = _quotas(task_records, general, share)
    samples = [pool.sample(n=min(n, pool.height), seed=seed, shuffle=True) for pool, n in quotas if n and pool.height]
    if not samples:
        return task_records
    return pl.concat([task_records, *samples]).sample(fraction=1.0, seed=seed, shuffle=True)
