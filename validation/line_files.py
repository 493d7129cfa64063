"""The append-only JSONL folders people write by hand (reviews/, adjudication/): every line of every file read
through one parser, the problems of the lines it refuses kept, the entries in time order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.errors import Problem, display_path

# A line's parser: (line, file name, line number) → the entry (with `_when`, `file`, `line`) or None, and problems.
LineParser = Callable[[str, str, int], tuple[dict[str, Any] | None, list[Problem]]]


@dataclass
class ReadLines:
    entries: list[dict[str, Any]]  # oldest first: by `_when`, then file and line
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    lines: int = 0


def read_line_files(folder: Path, parse: LineParser) -> ReadLines:
    """Every non-blank line of every `*.jsonl` under `folder` (none when it does not exist), parsed by `parse`."""
    result = ReadLines([])
    for path in sorted(folder.rglob("*.jsonl")) if folder.is_dir() else []:
        result.files += 1
        name = display_path(path)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            result.lines += 1
            entry, problems = parse(line, name, number)
            result.problems.extend(problems)
            if entry is not None:
                result.entries.append(entry)
    result.entries.sort(key=lambda e: (e["_when"], e["file"], e["line"]))
    return result


def parse_time(text: str) -> dt.datetime | None:
    """An ISO 8601 time (`Z` allowed), in UTC when it names no zone; None when it is not one."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
