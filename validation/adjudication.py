"""The adjudication log (ANNOTATION.md, step 4): what a third reader decided about each gold record whose blind
second annotation disagreed with the reference beyond its metric's tolerance.

`adjudication/*.jsonl`, one JSON object a line, appended, never rewritten:

    {"record": "<id>", "task": "fin_intent", "lang": "en", "outcome": "fixed", "reason": "…", "by": "ada",
     "time": "2026-12-07T10:00:00Z", "before": "<the reference the annotation was scored against>"}

- `outcome`: `kept` (the reference stands: the annotation was wrong), `fixed` (the reference, or the input, was
  changed in the seed file) or `dropped` (the record left the seed file: no defensible single answer).
- `before` (needed for `fixed` and `dropped`): the reference as it was, so the agreement before adjudication can
  always be recomputed. When the input was fixed the record's id changed; `replaced_by` names the new id.
- `annotator` (optional): whose annotation prompted the look; `note` (optional).

The latest line per record (by time, then file and line) is the outcome in force.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from catalog import Catalog
from catalog.errors import Problem
from validation.line_files import parse_time, read_line_files

OUTCOMES: tuple[str, ...] = ("kept", "fixed", "dropped")
NEEDS_BEFORE = ("fixed", "dropped")
REQUIRED = ("record", "task", "lang", "outcome", "reason", "by", "time")
OPTIONAL = ("before", "replaced_by", "annotator", "note")
ADJUDICATION_SCHEMA = {
    "record": pl.String,
    "task": pl.String,
    "lang": pl.String,
    "outcome": pl.String,
    "reason": pl.String,
    "by": pl.String,
    "time": pl.String,
    "before": pl.String,
    "replaced_by": pl.String,
    "at": pl.Datetime("us", "UTC"),  # `time` read: an annotation made before it was scored against `before`
    "file": pl.String,
    "line": pl.Int64,
}


@dataclass
class Adjudications:
    outcomes: pl.DataFrame  # the outcome in force per record (ADJUDICATION_SCHEMA)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    lines: int = 0


def read_adjudications(folder: Path, catalog: Catalog) -> Adjudications:
    """Every valid line under `folder`, the latest per record, and a problem for each line that is not one."""
    read = read_line_files(folder, lambda line, name, number: parse_adjudication(line, catalog, name, number))
    result = Adjudications(pl.DataFrame(schema=ADJUDICATION_SCHEMA), read.problems, read.files, read.lines)
    latest = {e["record"]: e for e in read.entries}
    if latest:
        rows = [{**{k: e.get(k) for k in ADJUDICATION_SCHEMA}, "at": e["_when"]} for e in latest.values()]
        result.outcomes = pl.DataFrame(rows, schema=ADJUDICATION_SCHEMA)
    return result


def parse_adjudication(
    line: str, catalog: Catalog, name: str, number: int
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """One line of the log: the entry it holds, or the problems (naming file, line and field) that make it none."""

    def problem(field_name: str | None, reason: str, record: str | None = None) -> Problem:
        return Problem(name, number, field_name, reason, record)

    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        return None, [problem(None, f"not valid JSON: {err.msg} at column {err.colno}")]
    if not isinstance(raw, dict):
        return None, [problem(None, "an adjudication must be a JSON object")]
    record = raw.get("record") if isinstance(raw.get("record"), str) else None
    problems = [problem(k, "missing", record) for k in REQUIRED if k not in raw]
    problems += [problem(k, "unknown field", record) for k in raw if k not in REQUIRED + OPTIONAL]
    problems += [
        problem(k, f"must be a string, not {type(v).__name__}", record)
        for k, v in raw.items()
        if k in REQUIRED + OPTIONAL and not isinstance(v, str)
    ]
    if problems:
        return None, problems
    if raw["outcome"] not in OUTCOMES:
        problems.append(problem("outcome", f"{raw['outcome']!r} is not one of {', '.join(OUTCOMES)}", record))
    if raw["outcome"] in NEEDS_BEFORE and not raw.get("before"):
        problems.append(problem("before", f"needed when the outcome is {raw['outcome']}: the reference as it was"))
    if not raw["reason"].strip():
        problems.append(problem("reason", "say why", record))
    if raw["task"] not in catalog:
        problems.append(problem("task", f"unknown task {raw['task']!r}", record))
    elif raw["lang"] not in catalog.get(raw["task"]).languages:
        problems.append(problem("lang", f"task {raw['task']} has no language {raw['lang']!r}", record))
    if (when := parse_time(raw["time"])) is None:
        problems.append(problem("time", f"{raw['time']!r} is not an ISO 8601 time", record))
    if problems:
        return None, problems
    return {**raw, "_when": when, "file": name, "line": number}, []
