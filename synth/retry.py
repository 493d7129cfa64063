"""When to try a request again and when to stop trying: backoff with jitter, Retry-After, a circuit breaker."""

from __future__ import annotations

import asyncio
import random
import time
from email.utils import parsedate_to_datetime
from typing import Any

BACKOFF_BASE = 0.5  # seconds before the first retry, doubling each time
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 30.0  # a server asking for longer gets this much: a persistent 429 must end the job in a minute


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff for retry number `attempt` (0-based): uniform in [0, base·2^attempt]."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
    return (rng or random).uniform(0, ceiling)


def retry_after_seconds(headers: Any) -> float | None:
    """The delay a response asks for: `retry-after-ms`, else `retry-after` as seconds or as an HTTP date."""
    if headers is None:
        return None
    try:
        if (value := headers.get("retry-after-ms")) is not None:
            return min(RETRY_AFTER_CAP, max(0.0, float(value) / 1000))
        if (value := headers.get("retry-after")) is not None:
            try:
                return min(RETRY_AFTER_CAP, max(0.0, float(value)))
            except ValueError:
                return min(RETRY_AFTER_CAP, max(0.0, parsedate_to_datetime(value).timestamp() - time.time()))
    except (TypeError, ValueError):
        return None
    return None


class CircuitOpen(RuntimeError):
    """The endpoint kept failing through several cool-downs: the job stops rather than hammer it."""


class CircuitBreaker:
    """Opens after `failures` consecutive failed attempts: nothing is sent for `cooldown` seconds, then a single
    probe goes out. A success closes it; a failed probe opens it again; `trips` openings with no success between
    raise CircuitOpen."""

    def __init__(self, failures: int, cooldown: float, trips: int):
        self.failures, self.cooldown, self.trips = failures, cooldown, trips
        self.consecutive = 0
        self.openings = 0
        self.opened_at: float | None = None
        self._probing = False

    async def before_attempt(self) -> float:
        """Wait until an attempt may go out; returns its start time, to hand back to success() or failure()."""
        while self.opened_at is not None:
            if self.openings >= self.trips:
                raise CircuitOpen(
                    f"the endpoint failed {self.failures} times in a row and did not recover after "
                    f"{self.openings} cool-down(s) of {self.cooldown:g}s"
                )
            wait = self.opened_at + self.cooldown - time.monotonic()
            if wait <= 0 and not self._probing:
                self._probing = True
                break
            await asyncio.sleep(max(wait, 0.01))
        return time.monotonic()

    def success(self) -> None:
        self.consecutive = 0
        self.openings = 0
        self.opened_at = None
        self._probing = False

    def failure(self, started: float) -> None:
        if self.opened_at is not None and started < self.opened_at:
            return  # was in flight when the circuit opened: already counted
        self.consecutive += 1
        if self._probing or self.consecutive >= self.failures:
            self.openings += 1
            self.opened_at = time.monotonic()
            self.consecutive = 0
            self._probing = False


class Streak:
    """How long one kind of failure has gone on with no answer between; the job ends once it lasts `limit` seconds.

    Shared by every request of a job: a dead endpoint or one that only answers 429 is found out by the job as a
    whole, however the failures are spread over requests and their retries.
    """

    def __init__(self, limit: float):
        self.limit = limit
        self.since: float | None = None
        self.cause = ""

    def failed(self, cause: str, started: float) -> None:
        """An attempt that began at `started` (time.monotonic) failed this way."""
        if self.since is None:
            self.since = started
        self.cause = cause

    def ended(self) -> None:
        self.since = None

    def remaining(self) -> float:
        """Seconds before the streak ends the job (the limit when there is none)."""
        return self.limit if self.since is None else self.since + self.limit - time.monotonic()

    def lasted(self) -> bool:
        return self.since is not None and self.remaining() <= 0
