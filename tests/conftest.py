"""Shared fixtures: the real catalog, and scratch data folders built from copies of real task files."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from catalog import Catalog, load_catalog

# Tests never reach a hub: `datasets` and `huggingface_hub` must work from local files alone.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "datasets"
# Per task and language, what the pipeline tests build from: about the first release's seeds (see sample_seeds).
SAMPLE_GOLD, SAMPLE_EXEMPLARS = 6, 14


@cache
def sample_seeds() -> Path:
    """The repository's seed files cut to the first SAMPLE_GOLD gold and SAMPLE_EXEMPLARS exemplar records per task
    and language, in file order, once per test process. The pipeline's tests need real, varied records, not all of
    the benchmark's: building eight thousand seeds in each of them would cost CI minutes and prove nothing more.
    The real folder itself is what test_seeds, test_leakage and test_benchmark check."""
    folder = Path(tempfile.mkdtemp(prefix="seed-sample-")) / "seeds"
    folder.mkdir()
    for path in sorted((DATA / "seeds").glob("*.jsonl")):
        taken: dict[tuple[str, str], int] = {}
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            key = (row["lang"], row.get("role", "exemplar"))
            limit = SAMPLE_GOLD if key[1] == "gold" else SAMPLE_EXEMPLARS
            if taken.get(key, 0) < limit:
                taken[key] = taken.get(key, 0) + 1
                kept.append(line)
        (folder / path.name).write_text("\n".join(kept) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(DATA / "tasks")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A scratch data folder holding copies of the real task files (and no seeds)."""
    shutil.copytree(DATA / "tasks", tmp_path / "tasks")
    (tmp_path / "seeds").mkdir()
    return tmp_path


def read_task(data_dir: Path, task_id: str) -> dict[str, Any]:
    return yaml.safe_load((data_dir / "tasks" / f"{task_id}.yaml").read_text(encoding="utf-8"))


def write_task(data_dir: Path, task_id: str, spec: dict[str, Any]) -> Path:
    path = data_dir / "tasks" / f"{task_id}.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def edit_task(data_dir: Path) -> Callable[[str, Callable[[dict[str, Any]], None]], Path]:
    """Load a task file of the scratch folder, let the test change it, write it back."""

    def edit(task_id: str, change: Callable[[dict[str, Any]], None]) -> Path:
        spec = read_task(data_dir, task_id)
        change(spec)
        return write_task(data_dir, task_id, spec)

    return edit


def write_jsonl(path: Path, rows: list[dict[str, Any] | str]) -> Path:
    """Rows as JSONL; a str row is written verbatim (to write broken lines on purpose)."""
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def seed_records(task_id: str) -> list[dict[str, Any]]:
    path = DATA / "seeds" / f"{task_id}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def dead_port() -> int:
    """A loopback port nothing listens on: bound by the OS, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def with_seeds(data_dir: Path, tasks: list[str]) -> Path:
    """`data_dir` with the real seeds of `tasks` copied in (the synthesizer's tests pick their exemplars there)."""
    for task in tasks:
        shutil.copy(DATA / "seeds" / f"{task}.jsonl", data_dir / "seeds")
    return data_dir


def stored(data_dir: Path) -> list[dict[str, Any]]:
    """Every record of the synth store of `data_dir`, file by file."""
    rows: list[dict[str, Any]] = []
    for path in sorted((data_dir / "synth").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows
