"""Where accepted and rejected records go: the append-only synth store and its quarantine.

Accepted records are JSONL in the record contract, one file per task: `<synth_dir>/<task>.jsonl`, appended one
response at a time and flushed, so a killed process keeps every record written before it died. A line torn by a
kill mid-write is moved to the quarantine when the store is next opened.

Rejects go to `<synth_dir>/_quarantine/<task>.rejects.ndjson`: not `*.jsonl`, so the build and `validate` never
read them as records. A reject is keyed by (cached response, item, reason) and written once, however often a
re-run re-reads the same cached answer.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from catalog import Catalog
from validation.records import read_record_file

QUARANTINE_DIR = "_quarantine"
REJECTS_SUFFIX = ".rejects.ndjson"


@dataclass(frozen=True)
class Existing:
    """A record already on disk, as the novelty check and the counts need it."""

    id: str
    task: str
    lang: str
    input: str
    where: str  # file:line, to name in a near-duplicate reject


def read_existing(paths: list[Path], catalog: Catalog) -> list[Existing]:
    """Every readable record of the JSONL files under `paths` (unreadable lines are `validate`'s to report)."""
    found: list[Existing] = []
    for root in paths:
        files = sorted(root.rglob("*.jsonl")) if root.is_dir() else ([root] if root.exists() else [])
        for path in files:
            frame = read_record_file(path, catalog).frame
            for row in frame.select("id", "task", "lang", "input", "file", "line").iter_rows(named=True):
                where = f"{row['file']}:{row['line']}"
                found.append(Existing(row["id"], row["task"], row["lang"], row["input"], where))
    return found


class SynthStore:
    def __init__(self, synth_dir: Path):
        self.dir = synth_dir
        self.quarantine_dir = synth_dir / QUARANTINE_DIR
        self._files: dict[str, IO[str]] = {}
        self._rejects: dict[str, IO[str]] = {}
        self._reject_keys: set[str] = set()
        self.torn_lines = 0

    def open(self) -> None:
        """Create the folders, repair torn tails, and remember which rejects are already written."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.quarantine_dir.glob(f"*{REJECTS_SUFFIX}")):
            self._drop_torn_tail(path, quarantine=False)
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    self._reject_keys.add(json.loads(line)["key"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
        for path in sorted(self.dir.glob("*.jsonl")):
            self._drop_torn_tail(path, quarantine=True)

    def record_path(self, task: str) -> Path:
        return self.dir / f"{task}.jsonl"

    def append(self, task: str, records: list[dict[str, Any]]) -> None:
        """Write the accepted records of one response in one write, flushed to the OS before returning."""
        if not records:
            return
        handle = self._files.get(task)
        if handle is None:
            handle = self._files[task] = self.record_path(task).open("a", encoding="utf-8")
        handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        handle.flush()

    def reject(self, task: str, key: str, entry: dict[str, Any]) -> bool:
        """Quarantine one reject unless this very reject is there already; True when written."""
        if key in self._reject_keys:
            return False
        self._reject_keys.add(key)
        handle = self._rejects.get(task)
        if handle is None:
            path = self.quarantine_dir / f"{task}{REJECTS_SUFFIX}"
            handle = self._rejects[task] = path.open("a", encoding="utf-8")
        handle.write(json.dumps({"key": key, **entry}, ensure_ascii=False) + "\n")
        handle.flush()
        return True

    def close(self) -> None:
        for handle in (*self._files.values(), *self._rejects.values()):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        self._files.clear()
        self._rejects.clear()

    def _drop_torn_tail(self, path: Path, quarantine: bool) -> None:
        data = path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        torn = data[cut:].decode("utf-8", errors="replace")
        with path.open("r+b") as handle:
            handle.truncate(cut)
        self.torn_lines += 1
        if quarantine:
            task = path.stem
            self.reject(
                task,
                f"torn:{path.name}:{cut}",
                {
                    "reason": "torn_write",
                    "detail": f"{path.name}: the last line was cut short by a crash and removed",
                    "raw": torn[:2000],
                },
            )


def counts_by(existing: list[Existing]) -> Counter[tuple[str, str]]:
    """Distinct records (by id) per (task, language)."""
    return Counter((e.task, e.lang) for e in {e.id: e for e in existing}.values())
