"""POST a JSON body to an OpenAI-compatible endpoint over pooled keep-alive connections, and say what came back.

aiohttp, not the `openai` SDK: at hundreds of requests a second the client's CPU per request is the limit, and the
SDK over httpx spends ~2.9 ms of it per chat completion on this machine where aiohttp (C-accelerated HTTP parsing)
spends ~0.35 ms (bench-synth prints both bare loops). The engine already holds the body as canonical JSON and
reads the answer as JSON itself, so the SDK's typed layer only added cost. What the SDK did besides is done here:
the bearer key, timeouts, a proxy from the environment (HTTPS_PROXY / HTTP_PROXY / NO_PROXY, as httpx reads them),
and the parts of an error body (`error.message`, `type`, `code`, `param`) that decide what happens next. The proxy is
looked up once: aiohttp's own `trust_env` looks it up, and netrc, in a worker thread on every request.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp


class Unreachable(Exception):
    """No connection was made: refused, no route, unknown name, or the connect timed out. No server answered."""


class TimedOut(Exception):
    """Connected, but no whole answer came within the timeout."""


class Dropped(Exception):
    """The connection broke before a whole answer came (reset, closed mid-answer, a malformed response)."""


@dataclass(eq=False)  # not frozen: raising sets __traceback__ and __context__ on it; eq=False keeps it hashable
class StatusError(Exception):
    """A non-2xx answer, with the fields of its error body (OpenAI's shape; None where a server sends no such)."""

    status: int
    headers: Mapping[str, str]
    message: str
    code: str | None
    type: str | None
    param: str | None

    def __str__(self) -> str:
        return f"{self.status} {self.message}"


@dataclass(frozen=True)
class Answer:
    headers: Mapping[str, str]
    text: str


def status_error(status: int, headers: Mapping[str, str], text: str) -> StatusError:
    """The error of a non-2xx answer: `{"error": {...}}` as OpenAI, vLLM and most servers send it, `{"detail": ...}`
    as FastAPI sends it, or the raw text."""
    try:
        body: Any = json.loads(text)
    except json.JSONDecodeError:
        body = None
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        return StatusError(status, headers, text.strip()[:300] or f"HTTP {status}", None, None, None)
    message = error.get("message") or error.get("detail") or text.strip()[:300] or f"HTTP {status}"

    def field(name: str) -> str | None:
        value = error.get(name)
        return str(value) if value is not None else None

    return StatusError(status, headers, str(message), field("code"), field("type"), field("param"))


def endpoint_url(base_url: str, path: str) -> str:
    """`path` under the base URL's own path, its query kept (Azure-style `?api-version=`)."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url`, or None (none set, or NO_PROXY covers the host)."""
    parts = urlsplit(url)
    if parts.hostname and urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class JSONPoster:
    """One aiohttp session (made in the running event loop on first use) holding up to `connections` connections."""

    def __init__(self, base_url: str, api_key: str, timeout: float, connect_timeout: float, connections: int):
        self.url = endpoint_url(base_url, "/chat/completions")
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "anytasktune",
        }
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self.connections = connections
        self.proxy = env_proxy(self.url)
        self._session: aiohttp.ClientSession | None = None

    async def post(self, content: bytes) -> Answer:
        """The 2xx answer to `content`; StatusError for any other status, or Unreachable, TimedOut, Dropped."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=self.connections)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, cookie_jar=aiohttp.DummyCookieJar()
            )
        try:
            async with self._session.post(self.url, data=content, headers=self.headers, proxy=self.proxy) as response:
                text = await response.text(encoding="utf-8", errors="replace")
                if not 200 <= response.status < 300:
                    raise status_error(response.status, response.headers, text)
                return Answer(response.headers, text)
        except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as err:
            raise Unreachable(str(err) or type(err).__name__) from err
        except TimeoutError as err:
            raise TimedOut(f"no answer within {self.timeout.total:g}s") from err
        except aiohttp.ClientError as err:
            raise Dropped(f"the connection broke: {err or type(err).__name__}") from err

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            await asyncio.sleep(0)  # lets the connector's transports finish closing inside the loop
