"""Writing review decisions: one JSON line appended to `reviews/<reviewer>.jsonl`, checked before it is written.

A line is checked by the same parser the build and `validate` read it with (validation.reviews.parse_decision), so
the app cannot write a decision the build would refuse. One file per reviewer keeps merges in git trivial; lines are
only ever appended, and each is flushed and synced before the app says it is saved.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from catalog import Catalog
from catalog.errors import Problem, display_path
from catalog.records import output_string
from validation.reviews import parse_decision

REVIEWER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ReviewerError(ValueError):
    """A reviewer name that cannot name a reviews file."""


class DecisionLog:
    """The reviews file of one reviewer."""

    def __init__(self, folder: Path, reviewer: str, catalog: Catalog) -> None:
        if not REVIEWER_NAME.match(reviewer):
            raise ReviewerError(
                f"reviewer {reviewer!r}: use letters, digits, '.', '_' or '-' (it names the file reviews/<name>.jsonl)"
            )
        self.reviewer = reviewer
        self.path = folder / f"{reviewer}.jsonl"
        self.catalog = catalog
        self._lock = threading.Lock()

    def append(
        self,
        record: dict[str, Any],
        verdict: str,
        *,
        reason: str = "",
        output: str | None = None,
        note: str = "",
    ) -> tuple[dict[str, Any] | None, list[Problem]]:
        """Check and append one decision on `record` (a published or quarantined row); nothing is written when the
        decision has problems, and they are returned instead."""
        raw: dict[str, Any] = {
            "record": record["id"],
            "task": record["task"],
            "lang": record["lang"],
            "reviewer": self.reviewer,
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "verdict": verdict,
        }
        if reason.strip():
            raw["reason"] = reason.strip()
        if output is not None:
            spec = self.catalog.get(record["task"]) if record["task"] in self.catalog else None
            # A structured output is edited as indented JSON; it is stored compact, as every record's is.
            raw["output"] = output_string(spec, output) if spec is not None else output
        if note.strip():
            raw["note"] = note.strip()
        line = json.dumps(raw, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            number = _line_count(self.path) + 1
            decision, problems = parse_decision(line, self.catalog, display_path(self.path), number)
            if decision is None:
                return None, problems
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
                out.flush()
                os.fsync(out.fileno())
        return {**raw, **{k: decision[k] for k in ("file", "line")}}, []


def _line_count(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as lines:
        return sum(1 for _ in lines)
