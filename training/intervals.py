"""Bootstrap intervals for the matrix: how far a cell's mean could move with another draw of test records.

Percentile bootstrap: the records of a cell are resampled with replacement RESAMPLES times and the 2.5th and 97.5th
percentiles of the resampled means bound the 95% interval. A mean over tasks resamples each task on its own and
averages, as the mean itself does. The paired bootstrap for "A beats B on T" resamples the records both models
answered, the same draw for both, so what they share (an easy record, a hard one) cancels out.

Every draw comes from a generator seeded by `seed` and the cell's name, so an interval is the same on every run
and on every machine, whatever order the cells are computed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0


def _generator(seed: int, name: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\x1f{name}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def resampled_means(scores: Sequence[float], name: str, *, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The means of `resamples` bootstrap draws of `scores` (each as many as there are scores)."""
    values = np.asarray(scores, dtype=float)
    draws = _generator(seed, name).integers(0, len(values), size=(resamples, len(values)))
    return values[draws].mean(axis=1)


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def mean_interval(
    scores: Sequence[float], name: str, *, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """The 95% interval of the mean of `scores`; None for no scores."""
    if len(scores) == 0:
        return None
    return percentile_interval(resampled_means(scores, name, resamples=resamples, seed=seed))


def mean_of_means_interval(
    groups: Sequence[Sequence[float]], name: str, *, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """The 95% interval of the mean over groups (tasks) of each group's mean, each group resampled on its own."""
    groups = [g for g in groups if len(g)]
    if not groups:
        return None
    draws = [resampled_means(g, f"{name}\x1f{i}", resamples=resamples, seed=seed) for i, g in enumerate(groups)]
    return percentile_interval(np.mean(draws, axis=0))


def paired_bootstrap(
    first: Sequence[float], second: Sequence[float], name: str, *, resamples: int = RESAMPLES, seed: int = SEED
) -> dict[str, Any]:
    """How `first` compares with `second` on the same records (aligned): the mean difference, its 95% interval,
    the share of draws in which `first` does not come out ahead, and the verdict the interval supports."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("a paired comparison needs the same, non-empty set of records on both sides")
    differences = a - b
    draws = resampled_means(differences, name, resamples=resamples, seed=seed)
    low, high = percentile_interval(draws)
    verdict = "first better" if low > 0 else "second better" if high < 0 else "no clear difference"
    return {
        "n": int(a.size),
        "difference": float(differences.mean()),
        "low": low,
        "high": high,
        "p_not_better": float(np.mean(draws <= 0)),
        "verdict": verdict,
    }
