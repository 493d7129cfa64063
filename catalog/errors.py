"""Problems found in input files, reported all at once with the file, line and field they concern."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file: where it is and why it is wrong."""

    file: str
    line: int | None
    field: str | None
    reason: str
    record: str | None = None  # the record id, where there is one

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.file, self.line or 0, self.field or "", self.reason)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.record:
            where += f" [{self.record}]"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class CatalogError(Exception):
    """The task catalog is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=Problem.sort_key)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"the task catalog has {len(self.problems)} problem(s):\n{lines}")


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when it is below it."""
    # Absolute, not resolved: a path through a symlink (the build's stable release path) keeps its name.
    try:
        return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(Path.cwd())))
    except ValueError:
        return str(path)
