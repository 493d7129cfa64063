"""A durable, content-addressed cache of raw responses, keyed by the canonical request.

SQLite in WAL mode, one commit per response as it arrives: a killed process loses only what was in flight. The
key is the SHA-256 of the request body in canonical JSON (sorted keys, no spaces), which holds the model, the
messages and every sampling parameter, and nothing else: no key, no header, no URL. The raw body is stored
verbatim, so a parser fix re-reads it without calling the model again. The file is not a record file (`.sqlite3`),
so the build never mistakes it for one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

CACHE_DIR = "_cache"
CACHE_FILE = "responses.sqlite3"


def canonical_request(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def key_of(canonical: str) -> str:
    """The cache key of a request already in canonical form (the client needs both, so it canonicalizes once)."""
    return hashlib.sha256(canonical.encode()).hexdigest()


def request_key(body: dict[str, Any]) -> str:
    return key_of(canonical_request(body))


class ResponseCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = path.parent / ".gitignore"
        if not ignore.exists():  # a cache is a local artefact, never part of a commit
            ignore.write_text("*\n", encoding="utf-8")
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, request TEXT NOT NULL, "
            "response TEXT NOT NULL, request_id TEXT, created REAL NOT NULL)"
        )
        # What an endpoint was found not to support (e.g. response_format), so a re-run asks the same way.
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS capabilities (endpoint TEXT, model TEXT, name TEXT, value TEXT, "
            "PRIMARY KEY (endpoint, model, name))"
        )

    @classmethod
    def in_store(cls, synth_dir: Path) -> ResponseCache:
        return cls(synth_dir / CACHE_DIR / CACHE_FILE)

    def get(self, key: str) -> tuple[str, str | None] | None:
        """The raw response body and the server's request id, or None when the request was never answered."""
        row = self._db.execute("SELECT response, request_id FROM responses WHERE key = ?", (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def request_of(self, key: str) -> str | None:
        """The canonical request a cached response answered (what the model was shown), or None."""
        row = self._db.execute("SELECT request FROM responses WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, request: str, response: str, request_id: str | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO responses (key, request, response, request_id, created) VALUES (?, ?, ?, ?, ?)",
            (key, request, response, request_id, time.time()),
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM responses").fetchone()[0]

    def capability(self, endpoint: str, model: str, name: str) -> str | None:
        row = self._db.execute(
            "SELECT value FROM capabilities WHERE endpoint = ? AND model = ? AND name = ?", (endpoint, model, name)
        ).fetchone()
        return row[0] if row else None

    def set_capability(self, endpoint: str, model: str, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO capabilities VALUES (?, ?, ?, ?)", (endpoint, model, name, value))

    def close(self) -> None:
        self._db.close()
