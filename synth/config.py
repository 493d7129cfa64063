"""What the engine talks to and how hard it may push: endpoint, limits and budget.

The endpoint comes from flags or from the SDK's own variables (OPENAI_BASE_URL, OPENAI_API_KEY). The key lives
only in `Endpoint.api_key`, whose repr hides it, and `public_url` strips credentials from the URL, so neither
reaches a log, the cache, provenance or a report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

# Local servers (vLLM, Ollama, llama.cpp) accept any key; the SDK insists on one, so this stands in for none.
NO_KEY = "not-needed"


class EndpointMissing(RuntimeError):
    """No endpoint configured: the job must not start."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    api_key: str = field(repr=False)
    model: str

    @property
    def public_url(self) -> str:
        """The base URL without user, password, query or fragment: safe to print and to record."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    def redact(self, text: str) -> str:
        """`text` with the key (and a URL carrying credentials) masked, for messages that quote the server."""
        if self.api_key and self.api_key != NO_KEY:
            text = text.replace(self.api_key, "***")
        return text.replace(self.base_url, self.public_url) if self.base_url != self.public_url else text


def resolve_endpoint(base_url: str | None, api_key: str | None, model: str) -> Endpoint:
    """Flags first, then OPENAI_BASE_URL / OPENAI_API_KEY. A key alone means api.openai.com, as in the SDK."""
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
    if base_url is None and api_key is None:
        raise EndpointMissing(
            "no endpoint configured: set OPENAI_BASE_URL (and OPENAI_API_KEY for hosted APIs) or pass --base-url; "
            "nothing was generated"
        )
    if base_url is None:
        base_url = "https://api.openai.com/v1"
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointMissing(
            f"--base-url / OPENAI_BASE_URL: {urlsplit(base_url)._replace(netloc='…').geturl()!r} is not an http(s) URL"
        )
    return Endpoint(base_url=base_url, api_key=api_key or NO_KEY, model=model)


@dataclass(frozen=True)
class Limits:
    concurrency: int = 16
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout: float = 120.0  # seconds per request
    connect_timeout: float = 5.0  # seconds to open a connection: a host that never answers is found out quickly
    max_retries: int = 6  # per request, for 429, 5xx, timeouts and dropped connections
    breaker_failures: int = 8  # consecutive failed attempts that open the circuit
    breaker_cooldown: float = 30.0  # seconds the circuit stays open before one probe
    breaker_trips: int = 3  # openings in a row (no success between) that end the job
    rate_limited_for: float = 45.0  # seconds of nothing but 429s (no answer between) that end the job
    unreachable_for: float = 10.0  # seconds of failed connections (no HTTP answer between) that end the job


@dataclass(frozen=True)
class Budget:
    max_requests: int | None = None  # requests sent to the endpoint (cache hits are free)
    max_tokens: int | None = None  # prompt + completion tokens
    max_cost: float | None = None  # USD, by the price table
