"""The build's invariants, measured from the outside: over a built data folder, with nothing of the build's code.

Each check reads the release (Parquet) and the quarantine (JSONL) as a reader would, and returns a `Measure`: the
figure, what it was measured over, and a few offending examples to print. The benchmark (bench/bench_build.py)
and the property test (tests/test_build_properties.py) share these functions.

Two similarity definitions live here on purpose:

- the *build's own* near-duplicate definition (Jaccard of character n-grams, n=4 for English and 3 for Chinese, of
  the comparison key `validation.keys.dedup_key`, threshold 0.7): the precision check asks whether the build
  kept its own promise, so it must use the build's yardstick, computed exactly here;
- an *independent* leakage definition (character 5-grams of NFKC, lower-cased, whitespace-collapsed text, Jaccard
  ≥ 0.6), found with a MinHash LSH of another library (datasketch, or rensa for large releases) and verified
  exactly, so a bug shared by the build's keys, shingles and LSH cannot hide a leak.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from catalog.layout import read_build_report
from catalog.records import record_id
from validation.release_data import QUARANTINE_SCHEMA

try:  # the build's comparison key; before validation/keys.py existed, the record contract's key
    from validation.keys import dedup_key
except ModuleNotFoundError:  # pragma: no cover - only on trees older than validation/keys.py
    from catalog.records import comparison_key as dedup_key

SPLITS = ("train", "validation", "test")
BUILD_NGRAM = {"en": 4, "zh": 3}
NEAR_DUPLICATE_THRESHOLD = 0.7
LEAK_NGRAM = 5
LEAK_THRESHOLD = 0.6
DUPLICATE_REASONS = ("exact_duplicate", "near_duplicate")
EXAMPLES = 5

Loc = tuple[str, int]  # (file stem, 1-based line) of a line in the synth store, as the quarantine names it


@dataclass
class Measure:
    """One figure: `value` (a share or a count), `over` (how many things it was measured on), failing examples."""

    value: float
    over: int
    examples: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0

    def describe(self) -> str:
        shown = "\n".join("    " + json.dumps(e, ensure_ascii=False)[:400] for e in self.examples)
        return f"{self.value:.4g} over {self.over:,} ({self.failures:,} failing)" + (f"\n{shown}" if shown else "")


def _share(good: int, over: int) -> float:
    return good / over if over else 1.0


# --- similarity -------------------------------------------------------------------------------------------------


def ngrams(text: str, n: int) -> set[str]:
    """Character n-grams; a text shorter than n is its own single gram (so two short texts still compare)."""
    if len(text) <= n:
        return {text}
    return {text[i : i + n] for i in range(len(text) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def build_similarity(left: str, right: str, lang: str) -> float:
    """The build's near-duplicate similarity of two inputs, computed exactly."""
    n = BUILD_NGRAM.get(lang, 4)
    return jaccard(ngrams(dedup_key(left), n), ngrams(dedup_key(right), n))


def leak_key(text: str) -> str:
    """The leakage check's own normal form: NFKC, lower case, whitespace runs collapsed to one space."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def leak_similarity(left: str, right: str) -> float:
    return jaccard(ngrams(leak_key(left), LEAK_NGRAM), ngrams(leak_key(right), LEAK_NGRAM))


# --- reading a build ----------------------------------------------------------------------------------------------


@dataclass
class Built:
    """What a build left on disk: the published records (with their split) and the quarantine rows."""

    records: pl.DataFrame  # id, task, lang, instruction, input, output, source, split, ...
    quarantine: pl.DataFrame  # reason, detail, file (stem), line, id, task, lang, input, twin, similarity, path
    gold: set[str]  # ids of the gold seeds
    report: dict[str, Any]

    def split_of(self) -> dict[str, str]:
        return dict(zip(self.records["id"], self.records["split"], strict=True))

    def dropped_at(self) -> dict[Loc, dict[str, Any]]:
        """Quarantine rows of the synth store by (file stem, line)."""
        return {(r["file"], r["line"]): r for r in self.quarantine.iter_rows(named=True) if r["line"] is not None}


# The columns of the build's quarantine that the checks read (the schema is the build's), and where it was read.
_QUARANTINE_SCHEMA = {
    **{c: QUARANTINE_SCHEMA[c] for c in ("reason", "detail", "file", "line", "id", "task", "lang", "input")},
    **{c: QUARANTINE_SCHEMA[c] for c in ("twin", "similarity")},
    "path": pl.String,
}


def gold_ids(seeds_dir: Path) -> set[str]:
    """Ids of the gold seeds, derived as the record contract derives them (task, lang, input)."""
    found = set()
    for path in sorted(seeds_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("role") == "gold":
                    found.add(record_id(row["task"], row["lang"], row["input"]))
    return found


def load_build(data_dir: Path, name: str = "anytasktune") -> Built:
    release = data_dir / "build" / name
    parts = []
    for split in SPLITS:
        for path in sorted((release / "data").glob(f"*/{split}-*.parquet")):
            parts.append(pl.read_parquet(path).with_columns(pl.lit(split).alias("split")))
    records = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame(schema={"id": pl.String})
    rows = []
    quarantine_path = data_dir / "build" / "_quarantine" / f"{name}.jsonl"
    if quarantine_path.exists():
        for line in quarantine_path.read_text(encoding="utf-8").splitlines():
            raw = json.loads(line)
            row = {column: raw.get(column) for column in _QUARANTINE_SCHEMA}
            row["path"] = row["file"]
            row["file"] = Path(row["file"]).stem if row["file"] else None  # "datasets/synth/bench-0003.jsonl"
            rows.append(row)
    quarantine = pl.DataFrame(rows, schema=_QUARANTINE_SCHEMA)
    report = read_build_report(release) or {}
    return Built(records, quarantine, gold_ids(data_dir / "seeds"), report)


def store_groups(synth_dir: Path) -> list[list[str]]:
    """Ids of the records that share a `group` value in the synth store (a record and its translations)."""
    groups: dict[str, list[str]] = {}
    for path in sorted(synth_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if '"group"' not in line:  # most lines have none: skip parsing them
                    continue
                try:
                    row = json.loads(line)
                    groups.setdefault(row["group"], []).append(record_id(row["task"], row["lang"], row["input"]))
                except (ValueError, KeyError, TypeError):
                    continue
    return [ids for ids in groups.values() if len(ids) > 1]


# --- the invariants -----------------------------------------------------------------------------------------------


def gold_in_test(built: Built) -> Measure:
    """Share of the gold seeds not in the quarantine that are in the test split (must be 1.0)."""
    split = built.split_of()
    # Only a seed line's own drop excuses it: a synthesized exact copy of a gold seed shares its id.
    from_seeds = built.quarantine.filter(pl.col("path").str.contains(r"(^|/)seeds/"))
    dropped = set(from_seeds["id"].drop_nulls())
    expected = sorted(built.gold - dropped)
    wrong = [{"id": g, "split": split.get(g, "missing")} for g in expected if split.get(g) != "test"]
    return Measure(_share(len(expected) - len(wrong), len(expected)), len(expected), wrong[:EXAMPLES], len(wrong))


def split_shares(built: Built) -> dict[str, Measure]:
    """Shares of test and validation among the published records that are not gold (targets 0.10 each)."""
    other = built.records.filter(~pl.col("id").is_in(list(built.gold)))
    counts = dict(other.group_by("split").len().iter_rows())
    total = other.height
    return {s: Measure(_share(counts.get(s, 0), total) if total else 0.0, total) for s in ("test", "validation")}


def near_duplicate_precision(built: Built) -> Measure:
    """Share of near_duplicate drops whose `twin` is published and is a near-twin by the build's own definition.

    A drop whose twin was itself dropped is a chain (the record has no kept twin) and counts as a failure.
    """
    near = built.quarantine.filter(pl.col("reason") == "near_duplicate")
    published = dict(zip(built.records["id"], built.records["input"], strict=True))
    dropped_ids = set(built.quarantine["id"].drop_nulls())
    bad: list[dict[str, Any]] = []
    for row in near.iter_rows(named=True):
        twin = row["twin"]
        where = {"file": row["file"], "line": row["line"], "id": row["id"], "twin": twin}
        if twin is None:
            bad.append({**where, "why": "no twin named"})
        elif twin not in published:
            bad.append({**where, "why": "chain: twin dropped too" if twin in dropped_ids else "twin not published"})
        elif (similarity := build_similarity(row["input"] or "", published[twin], row["lang"])) < (
            NEAR_DUPLICATE_THRESHOLD - 1e-9
        ):
            bad.append({**where, "why": f"similarity {similarity:.3f} < {NEAR_DUPLICATE_THRESHOLD}"})
    return Measure(_share(near.height - len(bad), near.height), near.height, bad[:EXAMPLES], len(bad))


def quarantined(built: Built, locs: Iterable[Loc], reasons: Sequence[str]) -> Measure:
    """Share of the given store lines that are in the quarantine for one of `reasons` (recall of a filter)."""
    at = built.dropped_at()
    locs = list(locs)
    missed = []
    for loc in locs:
        row = at.get(tuple(loc))
        if row is None or row["reason"] not in reasons:
            missed.append({"file": loc[0], "line": loc[1], "reason": row["reason"] if row else "published"})
    return Measure(_share(len(locs) - len(missed), len(locs)), len(locs), missed[:EXAMPLES], len(missed))


def twins_quarantined(built: Built, pairs: Iterable[tuple[Sequence[Any], Sequence[Any]]]) -> Measure:
    """Share of injected (original, copy) pairs whose copy is quarantined as a duplicate, or for the same
    per-record reason as its original: when the word salad makes both carry, say, a street address, both are
    dropped for it and the copy has no kept record to be a duplicate of."""
    at = built.dropped_at()
    pairs = list(pairs)
    missed = []
    for original, copy in pairs:
        row, first = at.get((copy[0], copy[1])), at.get((original[0], original[1]))
        same_fate = first is not None and row is not None and first["reason"] == row["reason"]
        if row is not None and (row["reason"] in DUPLICATE_REASONS or same_fate):
            continue
        missed.append({"file": copy[0], "line": copy[1], "reason": row["reason"] if row else "published"})
    return Measure(_share(len(pairs) - len(missed), len(pairs)), len(pairs), missed[:EXAMPLES], len(missed))


def falsely_quarantined(built: Built, locs: Iterable[Loc], reasons: Sequence[str]) -> Measure:
    """How many of the given (valid) store lines were dropped for one of `reasons` (must be 0)."""
    at = built.dropped_at()
    locs = list(locs)
    hits = [
        {"file": loc[0], "line": loc[1], "reason": at[tuple(loc)]["reason"], "detail": at[tuple(loc)]["detail"]}
        for loc in locs
        if tuple(loc) in at and at[tuple(loc)]["reason"] in reasons
    ]
    return Measure(len(hits), len(locs), hits[:EXAMPLES], len(hits))


def chains_resolved(built: Built, chains: Iterable[Sequence[Loc]]) -> Measure:
    """Share of injected chains A~B~C (A, C not near-twins) where A and C were kept and B dropped as a duplicate."""
    at = built.dropped_at()
    chains = list(chains)
    bad = []
    for a, b, c in chains:
        fate = [at.get(tuple(x), {}).get("reason") for x in (a, b, c)]
        if fate[0] in DUPLICATE_REASONS or fate[2] in DUPLICATE_REASONS or fate[1] not in DUPLICATE_REASONS:
            bad.append({"a": a, "b": b, "c": c, "reasons": fate})
    return Measure(_share(len(chains) - len(bad), len(chains)), len(chains), bad[:EXAMPLES], len(bad))


def unaccounted_lines(built: Built, data_dir: Path) -> Measure:
    """Input lines (seeds and synth store) neither published nor in the quarantine: must be none.

    "Nothing disappears silently": every line is either in the release or in the quarantine with its reason. A
    published id answers for one line only: a second line with the same id, not quarantined, vanished.
    """
    at = built.dropped_at()
    published = set(built.records["id"])
    answered: set[str] = set()
    lines = 0
    lost: list[dict[str, Any]] = []
    for folder in (data_dir / "seeds", data_dir / "synth"):
        for path in sorted(folder.glob("*.jsonl")) if folder.exists() else []:
            with path.open(encoding="utf-8", errors="replace") as handle:
                for number, text in enumerate(handle, start=1):
                    if not text.strip():
                        continue
                    lines += 1
                    if (path.stem, number) in at:
                        continue
                    try:
                        row = json.loads(text)
                        rid = record_id(row["task"], row["lang"], row["input"])
                    except (ValueError, KeyError, TypeError, AttributeError):
                        rid = None
                    if rid not in published or rid in answered:
                        why = "merged silently" if rid in answered else "neither published nor quarantined"
                        lost.append({"file": path.name, "line": number, "id": rid, "why": why, "text": text[:100]})
                    answered.add(rid)
    return Measure(len(lost), lines, lost[:EXAMPLES], len(lost))


def groups_split_apart(built: Built, groups: Iterable[Sequence[str]]) -> Measure:
    """How many groups of ids (translation pairs, cross-task copies) have published members in different splits."""
    split = built.split_of()
    groups = list(groups)
    apart = []
    for ids in groups:
        splits = {i: split[i] for i in ids if i in split}
        if len(set(splits.values())) > 1:
            apart.append(splits)
    return Measure(len(apart), len(groups), apart[:EXAMPLES], len(apart))


def outside_test(built: Built, ids: Iterable[str]) -> Measure:
    """How many of the given ids (synthesized near-copies of gold) are published in train or validation."""
    split = built.split_of()
    ids = list(ids)
    wrong = [{"id": i, "split": split[i]} for i in ids if split.get(i) in ("train", "validation")]
    return Measure(len(wrong), len(ids), wrong[:EXAMPLES], len(wrong))


# --- leakage --------------------------------------------------------------------------------------------------------

NUM_PERM = 128
BANDS, ROWS = 32, 4  # P(candidate) = 1 - (1 - J^4)^32: 0.988 at J = 0.6, 0.9997 at 0.7; verified exactly after
PREFILTER = 0.4  # estimated Jaccard under which a candidate is not verified (J = 0.6 falls below it ~1e-5 of times)


def leakage(built: Built, backend: str = "datasketch") -> Measure:
    """Test records that have a near-twin (5-gram Jaccard ≥ 0.6, exact) in train or validation, same language.

    Tasks are not separated: the same text under another task is as much a leak. Candidates come from a MinHash
    LSH of another library than the build's (`datasketch` for small releases, `rensa` for large ones).
    """
    leaks: dict[str, dict[str, Any]] = {}
    tested = 0
    for lang in sorted(set(built.records["lang"].drop_nulls())):
        part = built.records.filter(pl.col("lang") == lang).select("id", "task", "split", "input")
        ids, tasks, splits = part["id"].to_list(), part["task"].to_list(), part["split"].to_list()
        keys = [leak_key(t) for t in part["input"].to_list()]
        is_test = np.array([s == "test" for s in splits], dtype=bool)
        tested += int(is_test.sum())
        if not is_test.any() or is_test.all():
            continue
        find = _candidates_datasketch if backend == "datasketch" else _candidates_rensa
        grams: dict[int, set[str]] = {}  # only for the candidates: a set per record would not fit at a million
        for t, o in find(keys, is_test):
            for i in (t, o):
                if i not in grams:
                    grams[i] = ngrams(keys[i], LEAK_NGRAM)
            similarity = jaccard(grams[t], grams[o])
            if similarity >= LEAK_THRESHOLD and (ids[t] not in leaks or similarity > leaks[ids[t]]["similarity"]):
                leaks[ids[t]] = {
                    "test": ids[t],
                    "test_task": tasks[t],
                    "twin": ids[o],
                    "twin_task": tasks[o],
                    "twin_split": splits[o],
                    "similarity": round(similarity, 3),
                    "test_input": keys[t][:80],
                    "twin_input": keys[o][:80],
                }
    found = sorted(leaks.values(), key=lambda e: -e["similarity"])
    return Measure(len(found), tested, found[:EXAMPLES], len(found))


def _candidates_datasketch(keys: list[str], is_test: np.ndarray) -> Iterable[tuple[int, int]]:
    """(test row, other row) pairs that share an LSH band: datasketch's MinHash over the 5-gram sets."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=NUM_PERM, params=(BANDS, ROWS))
    signatures = MinHash.bulk([[g.encode() for g in ngrams(k, LEAK_NGRAM)] for k in keys], num_perm=NUM_PERM)
    with lsh.insertion_session() as session:
        for index in np.flatnonzero(~is_test):
            session.insert(int(index), signatures[index], check_duplication=False)
    for index in np.flatnonzero(is_test):
        for other in lsh.query(signatures[index]):
            yield int(index), int(other)


CHUNK = 100_000  # texts hashed and sketched at a time: bounds the checker's memory at a million records


def gram_hashes(keys: list[str], n: int = LEAK_NGRAM) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every character n-gram of each key (flat), and the row offsets into them.

    FNV-1a over code points, then the splitmix64 finalizer; a key shorter than n is one gram (zero-padded).
    """
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    counts = np.maximum(lengths - n + 1, 1)
    codes = np.frombuffer(("\0" * n).join([*keys, ""]).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    starts = np.concatenate(([0], np.cumsum(lengths + n)[:-1]))  # each key is followed by n zeros
    first_gram = np.concatenate(([0], np.cumsum(counts)[:-1]))
    positions = np.arange(int(counts.sum())) + np.repeat(starts - first_gram, counts)
    windows = codes.size - n + 1
    with np.errstate(over="ignore"):
        hashed = np.full(windows, 0xCBF29CE484222325, dtype=np.uint64)
        for k in range(n):
            hashed = (hashed ^ codes[k : k + windows]) * np.uint64(0x100000001B3)
        hashed = hashed[positions]
        hashed ^= hashed >> np.uint64(30)
        hashed *= np.uint64(0xBF58476D1CE4E5B9)
        hashed ^= hashed >> np.uint64(27)
        hashed *= np.uint64(0x94D049BB133111EB)
        hashed ^= hashed >> np.uint64(31)
    return hashed, np.concatenate(([0], np.cumsum(counts))).astype(np.uint64)


def _candidates_rensa(keys: list[str], is_test: np.ndarray) -> Iterable[tuple[int, int]]:
    """rensa's batch sketching (Rust) of our own 5-gram hashes, then banding in Polars, an estimate prefilter in
    NumPy, and the (few) survivors to verify exactly."""
    from rensa import RMinHash

    sig = np.empty((len(keys), NUM_PERM), dtype=np.uint32)
    for start in range(0, len(keys), CHUNK):
        hashes, offsets = gram_hashes(keys[start : start + CHUNK])
        matrix = RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, num_perm=NUM_PERM, seed=17)
        sig[start : start + CHUNK] = np.asarray(matrix.to_rows(), dtype=np.uint32)
    rows_test, rows_other = np.flatnonzero(is_test), np.flatnonzero(~is_test)
    found = []
    with np.errstate(over="ignore"):
        for band in range(BANDS):
            block = sig[:, band * ROWS : (band + 1) * ROWS].astype(np.uint64)
            key = np.zeros(len(keys), dtype=np.uint64)
            for r in range(ROWS):
                key = (key ^ block[:, r]) * np.uint64(0x9E3779B97F4A7C15)
            test = pl.DataFrame({"row": rows_test, "key": key[rows_test]})
            other = pl.DataFrame({"other": rows_other, "key": key[rows_other]})
            found.append(test.join(other, on="key").select("row", "other"))
    pairs = pl.concat(found).unique()
    left, right = pairs["row"].to_numpy(), pairs["other"].to_numpy()
    keep = np.zeros(len(left), dtype=bool)
    for start in range(0, len(left), 1_000_000):  # a million pairs × 128 slots at a time
        stop = start + 1_000_000
        keep[start:stop] = (sig[left[start:stop]] == sig[right[start:stop]]).mean(axis=1) >= PREFILTER
    return zip(left[keep].tolist(), right[keep].tolist(), strict=True)


# --- all figures of a generated store ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a figure must be: at least, at most, exactly, or within `tolerance` of `limit`."""

    op: str  # ">=", "<=", "==", "±"
    limit: float
    tolerance: float = 0.0

    def passes(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.limit - 1e-12
        if self.op == "<=":
            return value <= self.limit + 1e-12
        if self.op == "==":
            return abs(value - self.limit) <= 1e-12
        return abs(value - self.limit) <= self.tolerance + 1e-12

    def ratio(self, value: float) -> float:
        """≤ 1 passes for "<=", "==" (of a count) and "±"; ≥ 1 passes for ">=" (and "==" of a share)."""
        if self.op == "±":
            return abs(value - self.limit) / self.tolerance
        if self.op == "==" and self.limit == 0:
            return value  # a count that must be zero: the ratio is the count itself
        return value / self.limit if self.limit else float("inf")

    def text(self) -> str:
        if self.op == "±":
            return f"{self.limit:g}±{self.tolerance:g}"
        return f"{self.op}{self.limit:g}"


def _refs_locs(refs: Iterable[Sequence[Any]]) -> list[Loc]:
    return [(r[0], r[1]) for r in refs]


def store_figures(
    built: Built, truth: Any, groups: list[list[str]], backend: str, data_dir: Path | None = None
) -> list[tuple[str, Measure, Target]]:
    """Every invariant of a build of a generated store (`bench.build_data.Truth`), as (name, measure, target).

    `groups` are the ids sharing a `group` value in the store (`store_groups`): read from the store itself, not
    from the generator's truth, so the check holds for any store.
    """
    figures: list[tuple[str, Measure, Target]] = [("gold_in_test", gold_in_test(built), Target("==", 1.0))]
    shares = split_shares(built)
    figures += [(f"{s}_share", shares[s], Target("±", 0.10, 0.01)) for s in ("test", "validation")]
    figures.append(("leakage", leakage(built, backend), Target("==", 0)))
    figures.append(("translations_split", groups_split_apart(built, groups), Target("==", 0)))
    cross = [(a[2], b[2]) for a, b in truth.cross_task]
    figures.append(("cross_task_split", groups_split_apart(built, cross), Target("==", 0)))
    figures.append(
        ("gold_copies_outside_test", outside_test(built, [c[2] for _, c, _ in truth.gold_copies]), Target("==", 0))
    )
    figures.append(("near_dup_precision", near_duplicate_precision(built), Target(">=", 0.98)))
    figures.append(
        (
            "near_dup_recall",
            quarantined(built, _refs_locs(c for _, c, _ in truth.near), DUPLICATE_REASONS),
            Target(">=", 0.95),
        )
    )
    figures.append(
        (
            "exact_dup_recall",
            twins_quarantined(built, truth.exact),
            Target("==", 1.0),
        )
    )
    figures.append(
        ("chains_resolved", chains_resolved(built, [_refs_locs(c) for c in truth.chains]), Target(">=", 0.98))
    )
    for kind, refs in sorted(truth.pii.items()):
        figures.append((f"pii_recall_{kind}", quarantined(built, _refs_locs(refs), ("pii",)), Target("==", 1.0)))
    figures.append(
        (
            "wrong_language_recall",
            quarantined(built, _refs_locs(truth.wrong_language), ("language",)),
            Target("==", 1.0),
        )
    )
    decoys = [loc for refs in truth.decoys.values() for loc in _refs_locs(refs)]
    figures.append(("decoys_dropped_as_pii", falsely_quarantined(built, decoys, ("pii",)), Target("==", 0)))
    figures.append(
        ("unreadable_quarantined", quarantined(built, _refs_locs(truth.unreadable), ("unreadable",)), Target("==", 1.0))
    )
    figures.append(("plain_records_dropped", plain_records_dropped(built, truth), Target("<=", 0.001)))
    if data_dir is not None:
        figures.append(("lines_unaccounted", unaccounted_lines(built, data_dir), Target("==", 0)))
    return figures


def plain_records_dropped(built: Built, truth: Any) -> Measure:
    """Share of the store's records that carry no injected defect and are no copy, yet were quarantined."""
    expected: set[Loc] = set()
    expected.update(_refs_locs(c for _, c in truth.exact))
    expected.update(_refs_locs(c for _, c, _ in truth.near))
    expected.update((b[0], b[1]) for _, b, _ in truth.chains)
    expected.update(_refs_locs(c for _, c, _ in truth.gold_copies))
    expected.update(_refs_locs(truth.wrong_language))
    expected.update(_refs_locs(truth.unreadable))
    for refs in truth.pii.values():
        expected.update(_refs_locs(refs))
    stems = {loc[0] for loc in _refs_locs(truth.unreadable)} | {c[0] for _, c in truth.exact}
    wrong = [
        {"file": r["file"], "line": r["line"], "reason": r["reason"], "detail": r["detail"]}
        for r in built.quarantine.iter_rows(named=True)
        if r["file"] in stems and (r["file"], r["line"]) not in expected
    ]
    plain = truth.records - len(expected)
    return Measure(len(wrong) / plain if plain else 0.0, plain, wrong[:EXAMPLES], len(wrong))
