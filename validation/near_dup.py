"""Near-duplicate clusters by MinHash over character n-grams, with LSH banding, within each task and language.

Character n-grams need no word segmentation, so Chinese and English go through the same code. Shingling and
hashing run vectorised in NumPy over all texts at once (the texts laid end to end as UTF-32 code points).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

NGRAM = {"en": 4, "zh": 3}  # Chinese packs more meaning per character
NUM_PERM = 64
BANDS = 16  # 16 bands of 4 rows: pairs with Jaccard near 0.5 and above become candidates
NEAR_DUPLICATE_THRESHOLD = 0.7  # estimated Jaccard at or above which one of two texts is dropped
GROUP_THRESHOLD = 0.5  # at or above, two texts share a split group (one never in train while the other is in test)
FULL_PAIRS_UP_TO = 32  # bucket size up to which every pair in it is compared


@dataclass(frozen=True)
class Params:
    num_perm: int = NUM_PERM
    bands: int = BANDS
    seed: int = 20240625


def signatures(texts: list[str], n: int, params: Params = Params()) -> np.ndarray:
    """MinHash signatures (len(texts) × num_perm, uint64) of the character n-gram sets of `texts`."""
    if not texts:
        return np.zeros((0, params.num_perm), dtype=np.uint64)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    # A text shorter than n is one shingle: itself. Pad so every window of every text is in bounds.
    codes = np.concatenate((codes, np.zeros(n, dtype=np.uint64)))
    shingles_per_text = np.maximum(lengths - n + 1, 1)
    first = np.repeat(starts, shingles_per_text)
    offsets = np.arange(first.size) - np.repeat(np.cumsum(shingles_per_text) - shingles_per_text, shingles_per_text)
    positions = first + offsets
    window = np.repeat(np.minimum(lengths, n), shingles_per_text)
    with np.errstate(over="ignore"):
        hashed = np.zeros(positions.size, dtype=np.uint64)
        for k in range(n):  # polynomial rolling hash, wrapping at 2**64
            part = np.where(k < window, codes[np.minimum(positions + k, codes.size - 1)], 0)
            hashed = hashed * np.uint64(1_000_003) + part + np.uint64(1)
        rng = np.random.default_rng(params.seed)
        a = rng.integers(1, 1 << 61, size=params.num_perm, dtype=np.uint64)
        b = rng.integers(0, 1 << 61, size=params.num_perm, dtype=np.uint64)
        segment_starts = np.concatenate(([0], np.cumsum(shingles_per_text)[:-1]))
        out = np.empty((len(texts), params.num_perm), dtype=np.uint64)
        for p in range(params.num_perm):
            permuted = hashed * a[p] + b[p]  # a random affine map mod 2**64: a cheap stand-in for a permutation
            out[:, p] = np.minimum.reduceat(permuted, segment_starts)
    return out


def near_duplicate_pairs(
    frame: pl.DataFrame, key_column: str, threshold: float, params: Params = Params()
) -> pl.DataFrame:
    """Pairs (left, right) of row indices in `frame`, same task and language, with estimated Jaccard ≥ threshold.

    `frame` needs columns task, lang and `key_column` (the comparison key of the text). Each pair is one candidate
    from a shared LSH bucket checked against the full signatures; right > left.
    """
    rows = params.num_perm // params.bands
    found: list[pl.DataFrame] = []
    indexed = frame.select("task", "lang", key_column).with_row_index("row")
    for (_task, lang), part in indexed.group_by(["task", "lang"], maintain_order=True):
        if part.height < 2:
            continue
        sig = signatures(part[key_column].to_list(), NGRAM.get(str(lang), 4), params)
        keys = band_keys(sig, params.bands, rows)
        local = pl.DataFrame(
            {
                "local": np.arange(part.height).repeat(params.bands),
                "band": np.tile(np.arange(params.bands), part.height),
                "key": keys.ravel(),
            }
        )
        buckets = local.group_by("band", "key").agg(pl.col("local").sort()).filter(pl.col("local").list.len() > 1)
        if buckets.is_empty():
            continue
        # Every pair inside a small bucket; in a crowded one (boilerplate shared by many texts) only member × first
        # member, which keeps the candidate count linear where it would explode.
        small = buckets.filter(pl.col("local").list.len() <= FULL_PAIRS_UP_TO).with_row_index("bucket")
        members = small.select("bucket", "local").explode("local")
        pairs = (
            members.join(members, on="bucket", suffix="_other")
            .filter(pl.col("local") < pl.col("local_other"))
            .select(pl.col("local").alias("left"), pl.col("local_other").alias("right"))
        )
        crowded = buckets.filter(pl.col("local").list.len() > FULL_PAIRS_UP_TO).select(
            pl.col("local").list.first().alias("left"), pl.col("local").list.slice(1).alias("right")
        )
        pairs = pl.concat([pairs, crowded.explode("right")]).unique()
        left, right = pairs["left"].to_numpy(), pairs["right"].to_numpy()
        similarity = (sig[left] == sig[right]).mean(axis=1)
        keep = similarity >= threshold
        rows_of = part["row"].to_numpy()
        found.append(
            pl.DataFrame(
                {"left": rows_of[left[keep]], "right": rows_of[right[keep]], "similarity": similarity[keep]},
                schema={"left": pl.UInt32, "right": pl.UInt32, "similarity": pl.Float64},
            )
        )
    if not found:
        return pl.DataFrame(schema={"left": pl.UInt32, "right": pl.UInt32, "similarity": pl.Float64})
    return pl.concat(found)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 per (text, band): the band's rows mixed together."""
    shaped = sig[:, : bands * rows].reshape(sig.shape[0], bands, rows)
    key = np.zeros(shaped.shape[:2], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            key = (key ^ shaped[:, :, r]) * np.uint64(0x9E3779B97F4A7C15)
    return key


def clusters(size: int, pairs: pl.DataFrame) -> np.ndarray:
    """Connected components over `pairs`: for each of `size` rows, the smallest row index of its component."""
    parent = np.arange(size)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for left, right in pairs.select("left", "right").iter_rows():
        a, b = find(left), find(right)
        if a != b:
            parent[max(a, b)] = min(a, b)
    while True:  # pointer jumping, vectorised: every row ends pointing at its component's root
        jumped = parent[parent]
        if np.array_equal(jumped, parent):
            return parent
        parent = jumped
