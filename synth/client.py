"""One chat completion, end to end: cache lookup, budget, rate limits, retries, circuit breaker, cache write.

The `openai` SDK does the HTTP (`AsyncOpenAI`, any base URL); its own retries are off because this layer retries
with Retry-After, jitter and a shared slow-down that the SDK's per-request retries cannot give. Two things keep the
client's CPU cost per request low enough for hundreds of requests a second: the body goes out through the client's
generic `post` (the body is already plain JSON, so the typed-parameter transform of `chat.completions.create` would
only walk the large schema again), and connections are spread over several small pools, because the HTTP pool's
bookkeeping grows with the number of connections it holds.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from synth.cache import ResponseCache, canonical_request, key_of, request_key
from synth.config import Budget, Endpoint, Limits
from synth.ledger import BudgetLedger, BudgetSpent
from synth.prices import Price
from synth.ratelimit import AdaptiveConcurrency, RateLimiter
from synth.report import JobStats
from synth.retry import CircuitBreaker, Streak, backoff_delay, retry_after_seconds

_SCHEMA_WORDS = ("response_format", "json_schema", "schema", "structured")
# Error codes that say the structured-output request itself is what the server refuses (OpenAI, Azure, vLLM...).
_SCHEMA_CODES = {"unsupported_parameter", "unsupported_value", "invalid_response_format", "response_format_unsupported"}
_QUOTA_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active", "quota_exceeded"}
CONNECTIONS_PER_POOL = 16
_JSON = {"Content-Type": "application/json"}


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


def _unreachable(err: Exception) -> bool:
    """Whether the connection itself failed (refused, no route, name unknown, connect timeout): no server answered."""
    return isinstance(err.__cause__, (httpx2.ConnectError, httpx2.ConnectTimeout))


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
        pools = max(1, math.ceil(limits.concurrency / CONNECTIONS_PER_POOL))
        per_pool = math.ceil(limits.concurrency / pools)
        connections = httpx2.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        timeout = httpx2.Timeout(limits.timeout, connect=limits.connect_timeout)
        self._sdks = [
            openai.AsyncOpenAI(
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                max_retries=0,
                timeout=timeout,
                http_client=openai.DefaultAsyncHttpxClient(limits=connections, timeout=timeout),
            )
            for _ in range(pools)
        ]
        self._pool_load = [0] * pools

    async def close(self) -> None:
        for sdk in self._sdks:
            await sdk.close()

    async def _post(self, content: bytes) -> httpx2.Response:
        """POST /chat/completions on the least busy pool; the SDK raises its usual errors for non-2xx answers.
        The body goes as the canonical JSON already made for the cache key: serialised once, not twice."""
        pool = self._pool_load.index(min(self._pool_load))
        self._pool_load[pool] += 1
        try:
            return await self._sdks[pool].post(
                "/chat/completions", cast_to=httpx2.Response, content=content, options={"headers": _JSON}
            )
        finally:
            self._pool_load[pool] -= 1

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
                raw = await self._post(content)
                self.unreachable.ended()
                text = raw.text
                reply_body = json.loads(text)
                request_id = raw.headers.get("x-request-id")
            except openai.RateLimitError as err:
                self.unreachable.ended()
                self.stats.rate_limited += 1
                rate_limited = True
                self._stop_on_quota(err)
                last_error = f"429 {self._message(err)}"
                self.rate_limited.failed(last_error, started)
                delay = retry_after_seconds(err.response.headers) or backoff_delay(min(sent, 6))
                delay = min(delay, self.rate_limited.remaining() + 0.05)  # back in time to see the streak end
            except (openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError) as err:
                if _unreachable(err):
                    last_error = f"cannot connect: {err.__cause__ or err}"
                    self.unreachable.failed(last_error, started)
                    delay = min(backoff_delay(min(sent, 6)), self.unreachable.remaining() + 0.05)
                else:  # a 5xx, or the server took the request and then timed out or dropped it
                    self.unreachable.ended()
                    self._count_failure(err)
                    self.breaker.failure(started)
                    failures += 1
                    last_error = self._message(err)
                    delay = backoff_delay(failures)
            except openai.APIStatusError as err:
                self.unreachable.ended()
                self._fail_fast(err, body)
                self.breaker.failure(started)
                failures += 1
                last_error = f"{err.status_code} {self._message(err)}"
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
                self.cache.put(key, canonical, text, request_id)  # durable before anything else looks at it
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

    def _stop_on_quota(self, err: openai.APIStatusError) -> None:
        """A 429 that is about quota or billing, not rate: no waiting helps, the job stops with that cause."""
        if err.code in _QUOTA_CODES or getattr(err, "type", None) in _QUOTA_CODES:
            raise EndpointRejected(
                f"the endpoint refuses for quota or billing (429 {err.code or err.type}): {self._message(err)}"
            )

    def _count_failure(self, err: Exception) -> None:
        if isinstance(err, openai.APITimeoutError):
            self.stats.timeouts += 1
        else:
            self.stats.server_errors += 1

    def _fail_fast(self, err: openai.APIStatusError, body: dict[str, Any]) -> None:
        """Errors no retry can fix: a rejected response_format, bad credentials, unknown model or route."""
        message = self._message(err)
        if err.status_code in (400, 422) and "response_format" in body and self._names_response_format(err):
            raise ResponseFormatUnsupported(message)
        if err.status_code in (401, 403):
            raise EndpointRejected(f"the endpoint refused the credentials ({err.status_code}): {message}")
        if err.status_code == 404:
            raise EndpointRejected(f"not found at {self.endpoint.public_url} (404): {message}")
        if 400 <= err.status_code < 500:
            raise RequestFailed(f"{err.status_code}: {message}")

    def _names_response_format(self, err: openai.APIStatusError) -> bool:
        """Whether a 400 is about the structured-output request: by the error's `param` and `code` first (a body
        whose message is only "Bad Request" still names its param), by its words only where a server sends neither."""
        param = str(getattr(err, "param", None) or "")
        if param.startswith("response_format") or err.code in _SCHEMA_CODES:
            return True
        return not param and not err.code and any(w in self._message(err).lower() for w in _SCHEMA_WORDS)

    def _message(self, err: Exception) -> str:
        body = getattr(err, "body", None)
        text = body.get("message") if isinstance(body, dict) and body.get("message") else str(err)
        return self.endpoint.redact(str(text))[:300]
