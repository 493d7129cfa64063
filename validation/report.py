"""A validation report: every failure with its file, line or record id, field and reason."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from catalog.errors import Problem


@dataclass
class Report:
    """What was checked and what failed; `ok` only when nothing did."""

    files: int = 0
    records: int = 0
    failures: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def extend(self, other: Report) -> None:
        self.files += other.files
        self.records += other.records
        self.failures.extend(other.failures)

    def to_json(self) -> str:
        return json.dumps(
            {
                "ok": self.ok,
                "files": self.files,
                "records": self.records,
                "failures": [asdict(p) for p in sorted(self.failures, key=Problem.sort_key)],
            },
            ensure_ascii=False,
            indent=2,
        )

    def render(self, limit: int | None = 200) -> str:
        """Plain text: one failure a line, sorted by file and line, then the totals."""
        lines = [str(p) for p in sorted(self.failures, key=Problem.sort_key)]
        if limit is not None and len(lines) > limit:
            lines = [*lines[:limit], f"... and {len(lines) - limit} more (use --json for all)"]
        verdict = "OK" if self.ok else f"{len(self.failures)} failure(s)"
        lines.append(f"checked {self.files} file(s), {self.records} record(s): {verdict}")
        return "\n".join(lines)
