"""Near-duplicate clusters by MinHash over character n-grams, with LSH banding, within each task and language.

Character n-grams need no word segmentation, so Chinese and English go through the same code. Shingling and
hashing run vectorised in NumPy over all texts at once (the texts laid end to end as UTF-32 code points).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

NGRAM = {"en": 4, "zh": 3}  # Chinese packs more meaning per character
NUM_PERM = 64
BANDS = 16  # 16 bands of 4 rows: pairs with Jaccard near 0.5 and above become candidates
NEAR_DUPLICATE_THRESHOLD = 0.7  # estimated Jaccard at or above which one of two texts is dropped
GROUP_THRESHOLD = 0.5  # at or above, two texts share a split group (one never in train while the other is in test)
FULL_PAIRS_UP_TO = 32
SIGNATURE_DTYPE = np.uint32  # bucket size up to which every pair in it is compared


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
    parts = [(str(lang), part) for (_, lang), part in indexed.group_by(["task", "lang"], maintain_order=True)]
    parts = [(lang, part) for lang, part in parts if part.height > 1]
    # NumPy releases the GIL in its loops, so signatures of different groups compute on all cores at once.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        all_signatures = list(
            pool.map(lambda item: signatures(item[1][key_column].to_list(), NGRAM.get(item[0], 4), params), parts)
        )
    for (_, part), sig in zip(parts, all_signatures, strict=True):
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
