"""Near-duplicates by MinHash over character n-grams with LSH banding, verified by exact Jaccard.

Character n-grams need no word segmentation, so Chinese and English go through the same code. Shingling and
hashing run vectorised in NumPy over a chunk of texts at once (laid end to end as UTF-32 code points). LSH only
proposes candidates (any task of one language, so cross-task copies are seen too); every decision rests on the
exact Jaccard of the two shingle sets, and a record is dropped only for a twin that is kept (`keep_first_of_twins`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

NGRAM = {"en": 4, "zh": 3}  # Chinese packs more meaning per character
# 27 bands of 3 rows: a pair at Jaccard 0.5 shares a band with probability 1 - (1 - 0.5**3)**27 = 0.973, at 0.7 with
# 0.99996; unrelated texts (Jaccard ~0.05) only 0.003. Every candidate is then verified exactly.
NUM_PERM = 81
BANDS = 27
NEAR_DUPLICATE_THRESHOLD = 0.7  # exact Jaccard at or above which the lower-priority of two same-task texts is dropped
GROUP_THRESHOLD = 0.5  # at or above, two texts (any task, same language) share a split group
# Candidates whose MinHash estimate is this far below GROUP_THRESHOLD are not verified: at 81 permutations the
# estimate's standard error at J = 0.5 is 0.056, so a pair at 0.5 falls under 0.35 with probability ~0.004.
VERIFY_MARGIN = 0.15
FULL_PAIRS_UP_TO = 32  # bucket size up to which every pair in it is a candidate
CHUNK_TEXTS = 12_500  # signatures are computed this many texts at a time: memory follows the chunk, not the data
SIGNATURE_DTYPE = np.uint32
SHINGLE_CACHE = 4_096  # shingle sets kept while verifying candidates


def lsh_recall(similarity: float, params: Params | None = None) -> float:
    """The probability that a pair at `similarity` becomes a candidate (the LSH S-curve of these parameters)."""
    params = params or Params()
    rows = params.num_perm // params.bands
    return 1.0 - (1.0 - similarity**rows) ** params.bands


@dataclass(frozen=True)
class Params:
    num_perm: int = NUM_PERM
    bands: int = BANDS
    seed: int = 20240625


def signatures(texts: list[str], n: int, params: Params = Params()) -> np.ndarray:
    """MinHash signatures (len(texts) × num_perm, uint32) of the character n-gram sets of `texts`.

    32-bit values halve the memory traffic of the permutation passes, which dominate; a chance collision (2**-32)
    changes an estimated Jaccard by far less than its sampling error (~0.06 at 64 permutations).
    """
    if not texts:
        return np.zeros((0, params.num_perm), dtype=SIGNATURE_DTYPE)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    # Texts laid end to end with n zero code points after each: a window starting inside a text never reaches the
    # next one, and a text shorter than n is one shingle, itself padded with zeros.
    gap = "\0" * n
    codes = np.frombuffer((gap.join(texts) + gap).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    starts = np.concatenate(([0], np.cumsum(lengths + n)[:-1]))
    shingles_per_text = np.maximum(lengths - n + 1, 1)
    segment_starts = np.concatenate(([0], np.cumsum(shingles_per_text)[:-1]))
    positions = np.arange(shingles_per_text.sum()) + np.repeat(starts - segment_starts, shingles_per_text)
    windows = codes.size - n + 1
    with np.errstate(over="ignore"):
        hashed = np.zeros(windows, dtype=np.uint64)
        for k in range(n):  # polynomial hash of every window at once, over shifted views (no gathers)
            hashed = hashed * np.uint64(1_000_003) + codes[k : k + windows] + np.uint64(1)
        hashed = hashed[positions]
        # Mix the 64-bit hash down to 32 well-spread bits (multiply-xorshift), then permute in 32-bit arithmetic.
        hashed ^= hashed >> np.uint64(29)
        hashed = ((hashed * np.uint64(0xBF58476D1CE4E5B9)) >> np.uint64(32)).astype(SIGNATURE_DTYPE)
        rng = np.random.default_rng(params.seed)
        a = rng.integers(0, 1 << 31, size=params.num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)  # odd
        b = rng.integers(0, 1 << 32, size=params.num_perm, dtype=np.uint32)
        out = np.empty((len(texts), params.num_perm), dtype=SIGNATURE_DTYPE)
        for p in range(params.num_perm):
            permuted = hashed * a[p] + b[p]  # odd multiplier: a bijection mod 2**32, a cheap stand-in for a permutation
            permuted ^= permuted >> np.uint32(15)  # spreads the high bits down so the minimum depends on all of them
            out[:, p] = np.minimum.reduceat(permuted, segment_starts)
    return out


def candidate_pairs(
    frame: pl.DataFrame, key_column: str, min_estimate: float, params: Params = Params()
) -> pl.DataFrame:
    """Pairs of rows of the same language (any task) that share an LSH bucket, with estimated Jaccard ≥ min_estimate.

    Columns: left < right (row indices of `frame`), same_task, estimate. `frame` needs task, lang and `key_column`.
    """
    signed = signatures_by_language(frame[key_column], frame["lang"], params)
    return candidate_pairs_of(signed, frame["task"], frame["lang"], min_estimate, params)


def signatures_by_language(texts: pl.Series, langs: pl.Series, params: Params = Params()) -> np.ndarray:
    """The signature of each text with its language's n-gram size, in row order, stored in 16 bits.

    The low 16 bits of each minimum are enough (b-bit MinHash): two different minima agree by chance with
    probability 2**-16, which moves an estimate by far less than its sampling error, at half the memory.
    """
    out = np.zeros((len(texts), params.num_perm), dtype=np.uint16)
    for lang in langs.unique(maintain_order=True).to_list():
        rows = np.flatnonzero((langs == lang).to_numpy())
        signed = _parallel_signatures(texts.gather(rows).to_list(), NGRAM.get(lang, 4), params)
        out[rows] = (signed & np.uint32(0xFFFF)).astype(np.uint16)
    return out


class Signatures:
    """16-bit signatures split by byte: the low bytes (n × num_perm) estimate Jaccard, and a band's full 16-bit
    values (for its bucket key) come from `band`. This in-memory form holds both; the build's keeps the high bytes
    on disk, read a band at a time, so only the low bytes are resident (81 bytes a text)."""

    def __init__(self, sig: np.ndarray):
        self.low = (sig & 0xFF).astype(np.uint8)
        self._sig = sig

    def __len__(self) -> int:
        return len(self.low)

    def band(self, columns: slice) -> np.ndarray:
        """The full 16-bit values of `columns` for every text (n × len(columns))."""
        return self._sig[:, columns]


def candidate_pairs_of(
    sig: np.ndarray | Signatures,
    tasks: pl.Series,
    langs: pl.Series,
    min_estimate: float,
    params: Params = Params(),
    sig_rows: np.ndarray | None = None,
) -> pl.DataFrame:
    """`candidate_pairs` from signatures already computed: row i of tasks and langs is row `sig_rows[i]` of `sig`
    (row i where `sig_rows` is None), so a subset is scored without a copy of its signatures.

    Buckets are formed one band at a time from that band's columns, so what is in memory besides `sig` is a few
    bytes per text, not a copy of the signatures or a key per text and band. Estimates compare the low bytes of the
    signatures (b-bit MinHash with b = 8: chance agreement adds (1 - J) / 256 to an estimate, far below its sampling
    error); the buckets use all 16 bits, so chance sharers stay as rare as before.
    """
    sig = sig if isinstance(sig, Signatures) else Signatures(sig)
    rows_per_band = params.num_perm // params.bands
    found: list[pl.DataFrame] = []
    for lang in langs.unique(maintain_order=True).to_list():
        rows_of = np.flatnonzero((langs == lang).to_numpy()).astype(np.uint32)
        if rows_of.size < 2:
            continue
        signed = rows_of if sig_rows is None else sig_rows[rows_of]
        local = np.arange(rows_of.size, dtype=np.uint32)
        band_pairs: list[pl.DataFrame] = []
        for band in range(params.bands):
            columns = sig.band(slice(band * rows_per_band, (band + 1) * rows_per_band))[signed]
            buckets = (
                pl.DataFrame({"local": local, "key": band_key(columns, 0, rows_per_band)})
                .group_by("key")
                .agg(pl.col("local"))
                .filter(pl.col("local").list.len() > 1)
            )
            if buckets.is_empty():
                continue
            # Scored as they form, so only pairs near the threshold are ever held (chance sharers outnumber
            # them a hundredfold in large, templated stores).
            pairs = _bucket_pairs(buckets)
            estimate = _estimates(sig.low, signed[pairs["left"].to_numpy()], signed[pairs["right"].to_numpy()])
            band_pairs.append(
                pairs.with_columns(estimate=pl.Series(estimate)).filter(pl.col("estimate") >= min_estimate)
            )
        if not band_pairs:
            continue
        pairs = pl.concat(band_pairs).unique(["left", "right"])
        left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
        part_tasks = tasks.gather(rows_of)
        found.append(
            pl.DataFrame(
                {
                    "left": rows_of[left],
                    "right": rows_of[right],
                    "same_task": (part_tasks.gather(left) == part_tasks.gather(right)).to_numpy(),
                    "estimate": pairs["estimate"].to_numpy(),
                },
                schema=_PAIR_SCHEMA,
            )
        )
    return pl.concat(found) if found else pl.DataFrame(schema=_PAIR_SCHEMA)


def _estimates(sig: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The estimated Jaccard of each pair: the share of signature positions that agree (a slice at a time)."""
    estimate = np.empty(left.size, dtype=np.float32)
    for start in range(0, left.size, 250_000):
        window = slice(start, start + 250_000)
        estimate[window] = (sig[left[window]] == sig[right[window]]).mean(axis=1)
    return estimate


def _bucket_pairs(buckets: pl.DataFrame) -> pl.DataFrame:
    """Every pair inside a small bucket; in a crowded one (boilerplate shared by many texts) only member × first
    member, which keeps the candidate count linear where it would explode."""
    small = buckets.filter(pl.col("local").list.len() <= FULL_PAIRS_UP_TO).with_row_index("bucket")
    members = small.select("bucket", "local").explode("local")
    pairs = (
        members.join(members, on="bucket", suffix="_other")
        .filter(pl.col("local") < pl.col("local_other"))
        .select(pl.col("local").alias("left"), pl.col("local_other").alias("right"))
    )
    crowded = buckets.filter(pl.col("local").list.len() > FULL_PAIRS_UP_TO).select(
        pl.col("local").list.sort().list.first().alias("left"),
        pl.col("local").list.sort().list.slice(1).alias("right"),
    )
    return pl.concat([pairs, crowded.explode("right")])


_PAIR_SCHEMA = {"left": pl.UInt32, "right": pl.UInt32, "same_task": pl.Boolean, "estimate": pl.Float32}


def _parallel_signatures(texts: list[str], n: int, params: Params) -> np.ndarray:
    # NumPy releases the GIL in its loops, so chunks compute on all cores at once.
    chunks = [texts[i : i + CHUNK_TEXTS] for i in range(0, len(texts), CHUNK_TEXTS)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return np.concatenate(list(pool.map(lambda chunk: signatures(chunk, n, params), chunks)))


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 per (text, band): the band's rows mixed together, as `band_key` mixes them, all bands at once
    (for a few texts a time, as the synthesizer has them, NumPy's cost per call is what counts)."""
    shaped = sig[:, : bands * rows].reshape(sig.shape[0], bands, rows)
    key = np.zeros((sig.shape[0], bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            key = (key ^ shaped[:, :, r]) * np.uint64(0x9E3779B97F4A7C15)
    return key


def band_key(sig: np.ndarray, band: int, rows: int) -> np.ndarray:
    """One uint64 per text for one band: its `rows` signature positions mixed together."""
    key = np.zeros(sig.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            key = (key ^ sig[:, band * rows + r]) * np.uint64(0x9E3779B97F4A7C15)
    return key


def shingles(text: str, n: int) -> set[str]:
    """The character n-grams MinHash estimates over; a text shorter than n is one shingle."""
    return {text[i : i + n] for i in range(len(text) - n + 1)} if len(text) >= n else {text}


def exact_jaccard(keys: pl.Series, langs: pl.Series, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Exact Jaccard of the shingle sets of rows `left[i]` and `right[i]` of `keys` (verifying LSH candidates).

    Pairs are visited in order of their left row with a bounded cache of shingle sets: a set of a 300-character
    text is ~18 KB in Python, so caching every candidate's would cost more than the rest of the build.
    """
    cache: OrderedDict[int, set[str]] = OrderedDict()

    def of(row: int) -> set[str]:
        found = cache.get(row)
        if found is None:
            found = cache[row] = shingles(keys[row], NGRAM.get(langs[row], 4))
            if len(cache) > SHINGLE_CACHE:
                cache.popitem(last=False)
        return found

    out = np.empty(len(left), dtype=np.float64)
    for i in np.argsort(left, kind="stable").tolist():
        first, second = of(int(left[i])), of(int(right[i]))
        common = len(first & second)
        out[i] = common / (len(first) + len(second) - common)
    return out


def near_duplicate_pairs(
    frame: pl.DataFrame, key_column: str, threshold: float = NEAR_DUPLICATE_THRESHOLD, params: Params = Params()
) -> pl.DataFrame:
    """Same-task, same-language pairs (left < right) whose exact Jaccard is ≥ threshold, found by LSH and verified."""
    pairs = candidate_pairs(frame, key_column, threshold - VERIFY_MARGIN, params).filter("same_task")
    similarity = exact_jaccard(frame[key_column], frame["lang"], pairs["left"].to_numpy(), pairs["right"].to_numpy())
    return pairs.with_columns(similarity=pl.Series(similarity)).filter(pl.col("similarity") >= threshold)


def keep_first_of_twins(size: int, pairs: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which of `size` rows (in priority order) to keep when `pairs` (left < right, similarity) are twins.

    A row is dropped only when a row that is *kept* is its twin: a chain a ~ b ~ c with a and c apart keeps a and c.
    Returns the kept mask, and for each dropped row the kept twin it duplicates and their similarity (-1 elsewhere).
    """
    kept = np.ones(size, dtype=bool)
    twin = np.full(size, -1, dtype=np.int64)
    similarity = np.full(size, -1.0)
    ordered = pairs.sort("right", "similarity", descending=[False, True])
    for left, right, sim in zip(
        ordered["left"].to_list(), ordered["right"].to_list(), ordered["similarity"].to_list(), strict=True
    ):
        # Rows are decided in order: every left < right is final by the time its right is reached.
        if kept[right] and kept[left]:
            kept[right] = False
            twin[right], similarity[right] = left, sim
    return kept, twin, similarity


def components(size: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of `size` rows joined by the edges (left[i], right[i]): each row's smallest member.

    Min-label propagation with pointer jumping, vectorised: a few dozen passes over the edges, no Python loop per edge.
    """
    label = np.arange(size, dtype=np.int64)
    if not len(left):
        return label
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    while True:
        low = np.minimum(label[left], label[right])
        before = label.copy()
        np.minimum.at(label, left, low)
        np.minimum.at(label, right, low)
        label = label[label]  # pointer jumping: follow labels to their own labels
        while not np.array_equal(label, label[label]):
            label = label[label]
        if np.array_equal(label, before):
            return label
