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
from synth.prices import Price
from synth.ratelimit import AdaptiveConcurrency, RateLimiter
from synth.report import JobStats
from synth.retry import CircuitBreaker, backoff_delay, retry_after_seconds

_SCHEMA_WORDS = ("response_format", "json_schema", "schema", "structured")
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


class BudgetSpent(RuntimeError):
    """A budget is used up: no new request may go out."""


class ResponseFormatUnsupported(RuntimeError):
    """The server rejects `response_format` with a JSON schema; ask with the schema in the prompt instead."""


class EndpointRejected(RuntimeError):
    """The endpoint refuses every request (bad key, unknown model, no such route): the job stops."""


def _mode(body: dict[str, Any]) -> str:
    return "json_schema" if "response_format" in body else "json_prompt"


def estimate_tokens(body: dict[str, Any]) -> int:
    """Prompt tokens before asking (about 3 characters a token, Chinese denser) plus the answer's allowance."""
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
        self._in_flight = 0
        pools = max(1, math.ceil(limits.concurrency / CONNECTIONS_PER_POOL))
        per_pool = math.ceil(limits.concurrency / pools)
        connections = httpx2.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        self._sdks = [
            openai.AsyncOpenAI(
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                max_retries=0,
                timeout=limits.timeout,
                http_client=openai.DefaultAsyncHttpxClient(limits=connections, timeout=limits.timeout),
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
        key = key or request_key(body)
        stored = self.cache.get(key)
        if stored is None:
            return None
        return Reply(key, json.loads(stored[0]), stored[1], True, _mode(body))

    def budget_left(self) -> str | None:
        """Why no new request may start, or None. Requests in flight count as spent: the budget is never overrun."""
        return self.budget.exceeded(self.stats.requests + self._in_flight, self.stats.tokens, self.stats.cost)

    async def complete(self, body: dict[str, Any]) -> Reply:
        canonical = canonical_request(body)
        key = key_of(canonical)
        if (hit := self.cached(body, key)) is not None:
            self.stats.cache_hits += 1
            return hit
        content = canonical.encode()
        estimate = estimate_tokens(body)
        last_error = "no attempt made"
        for attempt in range(self.limits.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            started = await self.breaker.before_attempt()
            await self.concurrency.acquire()
            if (spent := self.budget_left()) is not None:
                await self.concurrency.release()
                raise BudgetSpent(spent)
            await self.rate.acquire(estimate)
            self._in_flight += 1
            delay: float | None = None
            try:
                raw = await self._post(content)
                text = raw.text
                reply_body = json.loads(text)
                request_id = raw.headers.get("x-request-id")
            except openai.RateLimitError as err:
                self.stats.rate_limited += 1
                delay = retry_after_seconds(err.response.headers)
                await self.concurrency.release(rate_limited=True, retry_after=delay)
                last_error = f"429 {self._message(err)}"
                delay = delay if delay is not None else backoff_delay(attempt)
            except (openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError) as err:
                self._count_failure(err)
                self.breaker.failure(started)
                await self.concurrency.release()
                last_error = self._message(err)
                delay = backoff_delay(attempt)
            except openai.APIStatusError as err:
                await self.concurrency.release()
                self._fail_fast(err, body)
                last_error = f"{err.status_code} {self._message(err)}"
                self.breaker.failure(started)
                delay = backoff_delay(attempt)
            except json.JSONDecodeError as err:
                await self.concurrency.release()
                self.breaker.failure(started)
                last_error = f"the response body is not JSON ({err.msg})"
                delay = backoff_delay(attempt)
            else:
                self.breaker.success()
                await self.concurrency.release()
                self.cache.put(key, canonical, text, request_id)  # durable before anything else looks at it
                self._account(reply_body, estimate)
                return Reply(key, reply_body, request_id, False, _mode(body))
            finally:
                self._in_flight -= 1
                self.stats.requests += 1
            await asyncio.sleep(delay)
        self.stats.failed_requests += 1
        raise RequestFailed(self.endpoint.redact(f"gave up after {self.limits.max_retries + 1} attempts: {last_error}"))

    def _account(self, body: dict[str, Any], estimate: int) -> None:
        usage = body.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        self.stats.responses += 1
        self.stats.prompt_tokens += prompt
        self.stats.completion_tokens += completion
        self.stats.cost += self.price.cost(prompt, completion)
        self.rate.correct(estimate, prompt + completion)

    def _count_failure(self, err: Exception) -> None:
        if isinstance(err, openai.APITimeoutError):
            self.stats.timeouts += 1
        else:
            self.stats.server_errors += 1

    def _fail_fast(self, err: openai.APIStatusError, body: dict[str, Any]) -> None:
        """Errors no retry can fix: a rejected response_format, bad credentials, unknown model or route."""
        message = self._message(err)
        schema_rejected = any(word in message.lower() for word in _SCHEMA_WORDS)
        if err.status_code in (400, 422) and "response_format" in body and schema_rejected:
            raise ResponseFormatUnsupported(message)
        if err.status_code in (401, 403):
            raise EndpointRejected(f"the endpoint refused the credentials ({err.status_code}): {message}")
        if err.status_code == 404:
            raise EndpointRejected(f"not found at {self.endpoint.public_url} (404): {message}")
        if 400 <= err.status_code < 500:
            raise RequestFailed(f"{err.status_code}: {message}")

    def _message(self, err: Exception) -> str:
        body = getattr(err, "body", None)
        text = body.get("message") if isinstance(body, dict) and body.get("message") else str(err)
        return self.endpoint.redact(str(text))[:300]
