"""Politeness towards the endpoint: requests/min and tokens/min buckets, and a concurrency that adapts to 429s."""

from __future__ import annotations

import asyncio
import time

BURST_SECONDS = 5.0  # a bucket holds this many seconds of its rate: short bursts pass, sustained rate is capped


class TokenBucket:
    """Refills at `per_minute / 60` a second up to a few seconds' worth; may go negative when usage is corrected."""

    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * BURST_SECONDS)
        self.level = self.capacity
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` fits (an amount above capacity fits once the bucket is full)."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount


class RateLimiter:
    """Requests/min and tokens/min together; waiters are served in arrival order."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self._lock = asyncio.Lock()

    async def acquire(self, estimated_tokens: int) -> None:
        if self.requests is None and self.tokens is None:
            return
        async with self._lock:
            while True:
                wait = max(
                    self.requests.wait_for(1) if self.requests else 0.0,
                    self.tokens.wait_for(estimated_tokens) if self.tokens else 0.0,
                )
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(estimated_tokens)

    def correct(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Charge the difference between what a request was estimated to use and what `usage` says it used."""
        if self.tokens:
            self.tokens.take(actual_tokens - estimated_tokens)


class AdaptiveConcurrency:
    """At most `limit` requests in flight: the limit halves on a 429 and creeps back up with successes, up to the
    configured maximum (additive increase, multiplicative decrease).

    A 429 slows the sender without stopping it: the rejected request waits out its own Retry-After while the others
    go on under the lower limit. The many 429s of one burst (every request that was in flight when the server filled
    up) halve the limit once, not once each: only a request sent after the last decrease can decrease it again.
    """

    def __init__(self, maximum: int):
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self.slowdowns = 0
        self.epoch = 0  # bumped by every decrease; a request remembers the epoch it was sent in
        self._changed = asyncio.Condition()

    async def acquire(self) -> int:
        """Wait for a free place; returns the epoch to hand back to release()."""
        async with self._changed:
            while self.in_flight >= int(self.limit):
                await self._changed.wait()
            self.in_flight += 1
            return self.epoch

    async def release(self, epoch: int | None = None, *, rate_limited: bool = False) -> None:
        async with self._changed:
            self.in_flight -= 1
            if rate_limited:
                if epoch is None or epoch == self.epoch:
                    self.slowdowns += 1
                    self.epoch += 1
                    self.limit = max(1.0, self.limit / 2)
            elif self.limit < self.maximum:
                self.limit = min(float(self.maximum), self.limit + 4.0 / self.limit)
            self._changed.notify_all()
