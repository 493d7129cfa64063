"""What changed between two releases: records added and removed per task, by stable record id.

The release carries `changelog.json`, the history of every version, so each card can show where the data came from
without fetching older releases.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

CHANGELOG_FILE = "changelog.json"


@dataclass
class TaskChange:
    task: str
    added: int
    removed: int
    records: int


@dataclass
class Change:
    version: str
    previous: str | None
    date: str
    records: int
    tasks: list[TaskChange] = field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(t.added for t in self.tasks)

    @property
    def removed(self) -> int:
        return sum(t.removed for t in self.tasks)

    def to_json(self) -> dict:
        return {**asdict(self), "added": self.added, "removed": self.removed}


def diff(
    version: str, date: str, current: pl.DataFrame, previous: pl.DataFrame | None, previous_version: str | None
) -> Change:
    """Per task: ids in `current` and not in `previous` (added), the other way round (removed), and the total now.

    With no previous release every record counts as added.
    """
    old = previous if previous is not None else pl.DataFrame(schema={"id": pl.String, "task": pl.String})
    now_ids = _ids_by_task(current)
    old_ids = _ids_by_task(old)
    tasks = []
    for task in sorted(now_ids.keys() | old_ids.keys()):
        now, before = now_ids.get(task, set()), old_ids.get(task, set())
        tasks.append(TaskChange(task, len(now - before), len(before - now), len(now)))
    return Change(version, previous_version, date, current.height, tasks)


def _ids_by_task(records: pl.DataFrame) -> dict[str, set[str]]:
    if records.is_empty():
        return {}
    return {task: set(ids) for task, ids in records.group_by("task").agg("id").iter_rows()}


def read_history(release: Path) -> list[dict]:
    """The changelog a release carries, newest first; empty for a release made before changelogs existed."""
    path = release / CHANGELOG_FILE
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def write_history(release: Path, change: Change, history: list[dict]) -> list[dict]:
    """Prepend `change` to the previous history and write it into the release."""
    entries = [change.to_json(), *[h for h in history if h.get("version") != change.version]]
    (release / CHANGELOG_FILE).write_text(json.dumps(entries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return entries
