"""What the review app reads: the latest build (published records with their split, the quarantine with each
reason), its report, and the review decisions and blind annotations made so far.

Everything is held in one Polars frame, so filtering and full-text search over 100,000 records is a vectorised
scan, not a loop; the frame never changes while the app runs (decisions apply at the next build), only the
small maps of verdicts and annotations do.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from catalog import Catalog
from catalog.layout import quarantine_path, read_build_report, release_path
from catalog.records import RECORD_COLUMNS
from catalog.settings import Settings
from validation.release_data import QUARANTINE_SCHEMA, read_release
from validation.reviews import ANNOTATE, Reviews, read_reviews

PUBLISHED, QUARANTINED = "published", "quarantined"
NO_DECISION = "none"
# The columns a user can filter on, in the order the filter bar shows them.
FILTERS: tuple[str, ...] = ("task", "lang", "split", "source", "generator", "status", "reason", "decision")


class NoBuildError(RuntimeError):
    """The data folder has no build to review yet."""


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


class ReviewStore:
    """The records of one build and the review state over them; safe to share between request threads."""

    def __init__(self, catalog: Catalog, settings: Settings, name: str) -> None:
        release = release_path(settings.build_dir, name)
        if not release.is_dir():
            raise NoBuildError(f"no build named {name!r} under {settings.build_dir}: run `anytasktune build` first")
        self.catalog = catalog
        self.name = name
        self.reviews_dir = settings.reviews_dir
        published = read_release(release, catalog).with_columns(
            status=pl.lit(PUBLISHED),
            **{c: pl.lit(None, t) for c, t in QUARANTINE_SCHEMA.items() if c not in RECORD_COLUMNS},
        )
        quarantined = _read_quarantine(quarantine_path(settings.build_dir, name), catalog)
        frame = pl.concat([published, quarantined], how="diagonal_relaxed")
        # One lower-case haystack per record: search is one literal scan of one column.
        self.records = frame.with_row_index("n").with_columns(
            pl.concat_str([pl.col(c).fill_null("") for c in ("id", "instruction", "input", "output")], separator="\n")
            .str.to_lowercase()
            .alias("_text")
        )
        # An exact duplicate in the quarantine shares its kept twin's id: the id leads to the published record.
        ids, rows = self.records["id"].to_list(), self.records["n"].to_list()
        self._position = dict(zip(reversed(ids), reversed(rows), strict=True))
        self.report = read_build_report(release)
        self._lock = threading.Lock()
        self.reload_reviews()

    def reload_reviews(self) -> None:
        reviews = read_reviews(self.reviews_dir, self.catalog)
        with self._lock:
            self.reviews: Reviews = reviews
            self.verdicts: dict[str, dict[str, Any]] = {
                d["record"]: {**json.loads(d["review"]), "output": d["output"]}
                for d in reviews.decisions.iter_rows(named=True)
            }
            self.annotations: dict[str, dict[str, dict[str, Any]]] = {}
            for a in reviews.annotations.iter_rows(named=True):
                self.annotations.setdefault(a["record"], {})[a["reviewer"]] = a

    def remember(self, decision: dict[str, Any]) -> None:
        """A decision just appended, visible at once without re-reading every reviews file."""
        with self._lock:
            if decision["verdict"] == ANNOTATE:
                self.annotations.setdefault(decision["record"], {})[decision["reviewer"]] = decision
            else:
                self.verdicts[decision["record"]] = decision

    def facets(self) -> dict[str, list[str]]:
        """The values each filter can take, most frequent first (the decision filter's are fixed)."""
        values = {
            column: [v for v in self.records[column].drop_nulls().value_counts(sort=True)[column].to_list()]
            for column in FILTERS
            if column != "decision"
        }
        values["decision"] = [NO_DECISION, "accept", "reject", "fix"]
        return values

    def matching(self, filters: dict[str, str], query: str = "") -> pl.DataFrame:
        """The records that pass every filter and contain `query` (case-insensitive), in build order."""
        selected = self.records.lazy()
        for column, value in filters.items():
            if not value or column not in FILTERS:
                continue
            if column == "decision":
                with self._lock:
                    ids = [r for r, d in self.verdicts.items() if d["verdict"] == value]
                    decided = list(self.verdicts)
                wanted = ~pl.col("id").is_in(decided) if value == NO_DECISION else pl.col("id").is_in(ids)
                selected = selected.filter(wanted)
            else:
                selected = selected.filter(pl.col(column) == value)
        if query.strip():
            selected = selected.filter(pl.col("_text").str.contains(query.strip().lower(), literal=True))
        return selected.drop("_text").collect()

    def page(self, filters: dict[str, str], query: str, offset: int, limit: int) -> Page:
        found = self.matching(filters, query)
        rows = found.slice(offset, limit).to_dicts()
        return Page(rows=rows, total=found.height, offset=offset, limit=limit)

    def get(self, record_id: str) -> dict[str, Any] | None:
        position = self._position.get(record_id)
        if position is None:
            return None
        return self.records.row(position, named=True)

    def neighbours(self, record_id: str, filters: dict[str, str], query: str) -> tuple[str | None, str | None]:
        """The records before and after this one among those the filters select."""
        ids = self.matching(filters, query)["id"].to_list()
        try:
            at = ids.index(record_id)
        except ValueError:
            return None, ids[0] if ids else None
        return (ids[at - 1] if at > 0 else None), (ids[at + 1] if at + 1 < len(ids) else None)

    def next_unannotated(self, reviewer: str, filters: dict[str, str], query: str) -> str | None:
        """The first selected record this reviewer has not annotated yet (blind mode's queue)."""
        with self._lock:
            done = [r for r, by in self.annotations.items() if reviewer in by]
        found = self.matching(filters, query).filter(~pl.col("id").is_in(done)).head(1)
        return found["id"][0] if found.height else None

    def annotated_by(self, record_id: str, reviewer: str) -> dict[str, Any] | None:
        with self._lock:
            return self.annotations.get(record_id, {}).get(reviewer)

    def annotations_of(self, record_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.annotations.get(record_id, {}).values())

    def verdict_of(self, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self.verdicts.get(record_id)

    def counts(self) -> list[dict[str, Any]]:
        """Per task and language: records per split, quarantined, and decided so far."""
        with self._lock:
            decided = list(self.verdicts)
        table = (
            self.records.group_by("task", "lang")
            .agg(
                *(
                    ((pl.col("split") == s) & (pl.col("status") == PUBLISHED)).sum().alias(s)
                    for s in ("train", "validation", "test")
                ),
                (pl.col("status") == QUARANTINED).sum().alias("quarantined"),
                pl.col("id").is_in(decided).sum().alias("decided"),
            )
            .sort("task", "lang")
        )
        return table.to_dicts()


def _read_quarantine(path: Path, catalog: Catalog) -> pl.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA).with_columns(status=pl.lit(QUARANTINED))
    rows = pl.read_ndjson(path, schema=QUARANTINE_SCHEMA)
    domains = {spec.id: spec.domain for spec in catalog}
    return rows.with_columns(
        status=pl.lit(QUARANTINED),
        domain=pl.col("task").replace_strict(domains, default=None, return_dtype=pl.String),
        # A quarantined line has no id when it could not be read; the file and line name it instead.
        id=pl.coalesce(
            pl.col("id"), pl.concat_str([pl.lit("line:"), "file", pl.lit(":"), pl.col("line").cast(pl.String)])
        ),
    )
