"""One chat completion, end to end: cache lookup, budget, rate limits, retries, circuit breaker, cache write.

The POST itself is `synth.http` (aiohttp: the client's CPU per request is what bounds hundreds of requests a
second); everything that decides what an answer means is here: retries with Retry-After, jitter and a shared
slow-down, quota and credential errors that stop the job, a rejected response_format that changes how to ask.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from synth.cache import ResponseCache, canonical_request, key_of, request_key
from synth.config import Budget, Endpoint, Limits
from synth.http import Dropped, JSONPoster, StatusError, TimedOut, Unreachable
from synth.ledger import BudgetLedger, BudgetSpent
from synth.prices import Price
from synth.ratelimit import AdaptiveConcurrency, RateLimiter
from synth.report import JobStats
from synth.retry import CircuitBreaker, Streak, backoff_delay, retry_after_seconds

_SCHEMA_WORDS = ("response_format", "json_schema", "schema", "structured")
# Error codes that say the structured-output request itself is what the server refuses (OpenAI, Azure, vLLM...).
_SCHEMA_CODES = {"unsupported_parameter", "unsupported_value", "invalid_response_format", "response_format_unsupported"}
_QUOTA_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active", "quota_exceeded"}


@dataclass(frozen=True)
class Reply:
    key: str  # the cache key: sha256 of the canonical request
    body: dict[str, Any]  # the chat completion as the server sent it
    request_id: str | None  # the server's x-request-id
    cached: bool
    mode: str  # json_schema (response_format) or json_prompt (the schema in the prompt)


class RequestFailed(RuntimeError):
    """The request did not get an answer after its retries; the job goes on without it."""


class ResponseFormatUnsupported(RuntimeError):
    """The server rejects `response_format` with a JSON schema; ask with the schema in the prompt instead."""


class EndpointRejected(RuntimeError):
    """The endpoint refuses every request (bad key, unknown model, no such route, no quota): the job stops."""


class EndpointUnavailable(RuntimeError):
    """The endpoint cannot be reached, or only answers 429, for longer than the job waits: the job stops, and may be
    run again later (the exit status says so)."""


def _mode(body: dict[str, Any]) -> str:
    if "response_format" not in body:
        return "json_prompt"
    return "json_schema_strict" if body["response_format"].get("json_schema", {}).get("strict") else "json_schema"


def estimate_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens before asking (about 3 characters a token) plus the answer's allowance, for the tokens/min
    bucket; the budget reserves a strict upper bound instead (synth.ledger)."""
    chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    return chars // 3 + int(body.get("max_tokens") or 1000)


class LLMClient:
    def __init__(
        self, endpoint: Endpoint, limits: Limits, budget: Budget, price: Price, cache: ResponseCache, stats: JobStats
    ):
        self.endpoint, self.limits, self.budget, self.price = endpoint, limits, budget, price
        self.cache, self.stats = cache, stats
        self.concurrency = AdaptiveConcurrency(limits.concurrency)
        self.rate = RateLimiter(limits.requests_per_minute, limits.tokens_per_minute)
        self.breaker = CircuitBreaker(limits.breaker_failures, limits.breaker_cooldown, limits.breaker_trips)
        self.ledger = BudgetLedger(budget, price, stats)
        self.rate_limited = Streak(limits.rate_limited_for)
        self.unreachable = Streak(limits.unreachable_for)
        self.poster = JSONPoster(
            endpoint.base_url, endpoint.api_key, limits.timeout, limits.connect_timeout, limits.concurrency
        )

    async def close(self) -> None:
        await self.poster.close()

    def cached(self, body: dict[str, Any], key: str | None = None) -> Reply | None:
        """The cached answer to `body` as `complete` would send it (with the budget's max_tokens where needed)."""
        body = self.ledger.bounded(body)
        key = key or request_key(body)
        stored = self.cache.get(key)
        if stored is None:
            return None
        return Reply(key, json.loads(stored[0]), stored[1], True, _mode(body))

    async def complete(self, body: dict[str, Any]) -> Reply:
        body = self.ledger.bounded(body)
        canonical = canonical_request(body)
        key = key_of(canonical)
        if (hit := self.cached(body, key)) is not None:
            self.stats.cache_hits += 1
            return hit
        content = canonical.encode()
        estimate = estimate_tokens(body)
        failures, sent, last_error = 0, 0, "no attempt made"
        while True:
            self._stop_if_unavailable()
            started = await self.breaker.before_attempt()
            epoch = await self.concurrency.acquire()
            try:
                reservation = await self.ledger.reserve(body)
            except BudgetSpent:
                await self.concurrency.release(epoch)
                raise
            await self.rate.acquire(estimate)
            self.stats.retries += sent > 0  # an attempt that went out, not one the breaker or budget held back
            sent += 1
            usage: dict[str, Any] | None = None  # what the attempt cost: None when no answer came
            rate_limited, delay = False, 0.0
            try:
                answer = await self.poster.post(content)
                self.unreachable.ended()
                reply_body = json.loads(answer.text)
                request_id = answer.headers.get("x-request-id")
            except Unreachable as err:
                last_error = f"cannot connect: {err}"
                self.unreachable.failed(last_error, started)
                delay = min(backoff_delay(min(sent, 6)), self.unreachable.remaining() + 0.05)
            except StatusError as err:
                self.unreachable.ended()
                if err.status == 429:
                    self.stats.rate_limited += 1
                    rate_limited = True
                    self._stop_on_quota(err)
                    last_error = f"429 {self._message(err)}"
                    self.rate_limited.failed(last_error, started)
                    delay = retry_after_seconds(err.headers) or backoff_delay(min(sent, 6))
                    delay = min(delay, self.rate_limited.remaining() + 0.05)  # back in time to see the streak end
                else:
                    if err.status < 500:
                        self._fail_fast(err, body)
                    else:
                        self.stats.server_errors += 1
                    self.breaker.failure(started)
                    failures += 1
                    last_error = f"{err.status} {self._message(err)}"
                    delay = backoff_delay(failures)
            except (TimedOut, Dropped) as err:  # the server took the request and then went quiet or dropped it
                self.unreachable.ended()
                if isinstance(err, TimedOut):
                    self.stats.timeouts += 1
                else:
                    self.stats.server_errors += 1
                self.breaker.failure(started)
                failures += 1
                last_error = str(err)
                delay = backoff_delay(failures)
            except json.JSONDecodeError as err:
                usage = {}  # answered, so perhaps billed, and no usage to say how much: the reservation is spent
                self.breaker.failure(started)
                failures += 1
                last_error = f"the response body is not JSON ({err.msg})"
                delay = backoff_delay(failures)
            else:
                self.breaker.success()
                self.rate_limited.ended()
                self.cache.put(key, canonical, answer.text, request_id)  # durable before anything else looks at it
                usage = reply_body.get("usage") or {}
                self.stats.responses += 1
                tokens = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
                self.rate.correct(estimate, tokens or reservation.tokens)
                return Reply(key, reply_body, request_id, False, _mode(body))
            finally:
                await self.concurrency.release(epoch, rate_limited=rate_limited)
                await self.ledger.settle(reservation, usage)
            if failures > self.limits.max_retries:
                self.stats.failed_requests += 1
                message = f"gave up after {failures} failed attempts: {last_error}"
                raise RequestFailed(self.endpoint.redact(message))
            self._stop_if_unavailable()
            await asyncio.sleep(delay)

    def _stop_if_unavailable(self) -> None:
        """End the job once the endpoint has been unreachable, or answered nothing but 429s, for too long."""
        url = self.endpoint.public_url
        if self.unreachable.lasted():
            raise EndpointUnavailable(
                f"{url} could not be reached for {self.unreachable.limit:g}s ({self.unreachable.cause})"
            )
        if self.rate_limited.lasted():
            raise EndpointUnavailable(
                f"{url} answered nothing but 429 for {self.rate_limited.limit:g}s ({self.rate_limited.cause})"
            )

    def _stop_on_quota(self, err: StatusError) -> None:
        """A 429 that is about quota or billing, not rate: no waiting helps, the job stops with that cause."""
        if err.code in _QUOTA_CODES or err.type in _QUOTA_CODES:
            raise EndpointRejected(
                f"the endpoint refuses for quota or billing (429 {err.code or err.type}): {self._message(err)}"
            )

    def _fail_fast(self, err: StatusError, body: dict[str, Any]) -> None:
        """Errors no retry can fix: a rejected response_format, bad credentials, unknown model or route."""
        message = self._message(err)
        if err.status in (400, 422) and "response_format" in body and self._names_response_format(err):
            raise ResponseFormatUnsupported(message)
        if err.status in (401, 403):
            raise EndpointRejected(f"the endpoint refused the credentials ({err.status}): {message}")
        if err.status == 404:
            raise EndpointRejected(f"not found at {self.endpoint.public_url} (404): {message}")
        raise RequestFailed(f"{err.status}: {message}")

    def _names_response_format(self, err: StatusError) -> bool:
        """Whether a 400 is about the structured-output request: by the error's `param` and `code` first (a body
        whose message is only "Bad Request" still names its param), by its words only where a server sends neither."""
        param = err.param or ""
        if param.startswith("response_format") or err.code in _SCHEMA_CODES:
            return True
        return not param and not err.code and any(w in self._message(err).lower() for w in _SCHEMA_WORDS)

    def _message(self, err: StatusError) -> str:
        return self.endpoint.redact(err.message)[:300]
