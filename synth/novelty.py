"""Is a new input a near-duplicate of what exists (seeds and the synth store) for its task and language?

The signatures are validation.near_dup's MinHash over character n-grams, so the synthesizer and the build agree on
what "near" means. The build compares whole frames at once; here records arrive a few at a time, so each (task,
language) keeps a growing matrix of signatures and of LSH band keys: a query compares its band keys against all
rows in one vectorised step, then checks the full signatures of the rows that share a band.
"""

from __future__ import annotations

import asyncio

import numpy as np

from catalog.records import comparison_key
from validation.near_dup import NEAR_DUPLICATE_THRESHOLD, NGRAM, SIGNATURE_DTYPE, Params, band_keys, signatures

# NEAR_DUPLICATE_THRESHOLD is the build's bar too: the synthesizer does not write what the build would throw away.


class _Group:
    """Signatures and band keys of one (task, language), in arrays that double when full."""

    def __init__(self, num_perm: int, bands: int):
        self.size = 0
        self.signatures = np.zeros((64, num_perm), dtype=SIGNATURE_DTYPE)
        self.bands = np.zeros((64, bands), dtype=np.uint64)
        self.labels: list[str] = []

    def append(self, signature: np.ndarray, bands: np.ndarray, label: str) -> None:
        if self.size == len(self.signatures):
            self.signatures = np.concatenate((self.signatures, np.zeros_like(self.signatures)))
            self.bands = np.concatenate((self.bands, np.zeros_like(self.bands)))
        self.signatures[self.size] = signature
        self.bands[self.size] = bands
        self.labels.append(label)
        self.size += 1


class NoveltyIndex:
    def __init__(self, threshold: float = NEAR_DUPLICATE_THRESHOLD, params: Params | None = None):
        self.params = params or Params()
        self.threshold = threshold
        self._rows = self.params.num_perm // self.params.bands
        self._groups: dict[tuple[str, str], _Group] = {}

    def signatures(self, lang: str, texts: list[str]) -> np.ndarray:
        keys = [comparison_key(t) for t in texts]
        return signatures(keys, NGRAM.get(lang, 4), self.params)

    def add_many(self, task: str, lang: str, texts: list[str], labels: list[str]) -> None:
        signatures = self.signatures(lang, texts)
        for signature, bands, label in zip(signatures, self.band_keys(signatures), labels, strict=True):
            self.add(task, lang, signature, label, bands)

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        return band_keys(signatures, self.params.bands, self._rows)

    def add(self, task: str, lang: str, signature: np.ndarray, label: str, bands: np.ndarray | None = None) -> None:
        group = self._groups.get((task, lang))
        if group is None:
            group = self._groups[(task, lang)] = _Group(self.params.num_perm, self.params.bands)
        group.append(signature, self.band_keys(signature[None, :])[0] if bands is None else bands, label)

    def nearest(
        self, task: str, lang: str, signature: np.ndarray, bands: np.ndarray | None = None
    ) -> tuple[str, float] | None:
        """The label and similarity of the closest indexed text at or above the threshold, or None."""
        group = self._groups.get((task, lang))
        if group is None or group.size == 0:
            return None
        keys = self.band_keys(signature[None, :])[0] if bands is None else bands
        rows = np.flatnonzero((group.bands[: group.size] == keys).any(axis=1))
        if rows.size == 0:
            return None
        similarity = (group.signatures[rows] == signature).mean(axis=1)
        best = int(similarity.argmax())
        if similarity[best] < self.threshold:
            return None
        return group.labels[int(rows[best])], float(similarity[best])


class SignatureBatcher:
    """Signatures for texts that arrive a few at a time from concurrent responses, computed together.

    MinHash costs about the same for four texts as for forty (a fixed loop over the permutations), so the requests
    that come in within a few milliseconds of each other share one computation.
    """

    def __init__(self, index: NoveltyIndex, window: float = 0.003):
        self.index, self.window = index, window
        self._pending: dict[str, list[tuple[list[str], asyncio.Future[np.ndarray]]]] = {}

    async def signatures(self, lang: str, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        if not self._pending:
            loop.call_later(self.window, self._flush)
        self._pending.setdefault(lang, []).append((texts, future))
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for lang, waiting in pending.items():
            try:
                every = self.index.signatures(lang, [t for texts, _ in waiting for t in texts])
            except Exception as err:  # hand the failure to every waiter instead of losing it in a callback
                for _, future in waiting:
                    future.set_exception(err)
                continue
            start = 0
            for texts, future in waiting:
                future.set_result(every[start : start + len(texts)])
                start += len(texts)
