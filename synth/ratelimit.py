"""Politeness towards the endpoint: requests/min and tokens/min buckets, and a concurrency that adapts to 429s."""

from __future__ import annotations

import asyncio
import contextlib
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
    """At most `limit` requests in flight, where `limit` halves on a 429 (and everyone waits out its Retry-After)
    and creeps back up with successes, up to the configured maximum (additive increase, multiplicative decrease)."""

    def __init__(self, maximum: int):
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_flight = 0
        self.paused_until = 0.0
        self.slowdowns = 0
        self._changed = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._changed:
            while True:
                pause = self.paused_until - time.monotonic()
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), pause)
                    continue
                if self.in_flight < int(self.limit):
                    self.in_flight += 1
                    return
                await self._changed.wait()

    async def release(self, *, rate_limited: bool = False, retry_after: float | None = None) -> None:
        async with self._changed:
            self.in_flight -= 1
            if rate_limited:
                self.slowdowns += 1
                self.limit = max(1.0, self.limit / 2)
                if retry_after:
                    self.paused_until = max(self.paused_until, time.monotonic() + retry_after)
            elif self.limit < self.maximum:
                self.limit = min(float(self.maximum), self.limit + 4.0 / self.limit)
            self._changed.notify_all()
