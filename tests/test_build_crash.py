"""The publish, crashed at every step (SIGKILL through the fault hook) while a reader keeps loading the release.

A reader must always find one complete release (report, README and every Parquet file of one run); after the
crash the release is the previous one or the new one, whole; the next build recovers. Worker processes die with
the build process.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from catalog import Catalog
from catalog.layout import SPLITS, split_path
from catalog.records import compact_json
from pipeline.runs import FAULT_STEPS, FAULT_VARIABLE
from tests.conftest import DATA, REPO, sample_seeds

TASK = "fin_news_sentiment"


def _vocabulary() -> list[str]:
    words = set()
    for path in sorted((DATA / "seeds").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["lang"] == "en":
                words.update(w for w in re.findall(r"[a-z]{4,}", row["input"].lower()))
    return sorted(words)


def _store(catalog: Catalog, synth_dir: Path, name: str, count: int, salt: str) -> None:
    """`count` English records whose inputs share few words (so none is a near-duplicate of another)."""
    spec = catalog.get(TASK)
    rng, words = random.Random(salt), _vocabulary()
    rows = [
        {
            "task": TASK,
            "lang": "en",
            "instruction": spec.instructions_for("en")[0],
            "input": f"The {salt} company said " + " ".join(rng.sample(words, 14)) + " and the shares rose.",
            "output": compact_json({"sentiment": "positive", "reason": "Orders rose."}),
            "source": "synth",
            "generator": "test-model",
        }
        for i in range(count)
    ]
    (synth_dir / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _run_build(data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "ANYTASKTUNE_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-m", "cli", "build", "--json"], capture_output=True, text=True, env=environment, check=False
    )


def _snapshot(release: Path, catalog: Catalog) -> tuple[int, int]:
    """(records in the Parquet files, records the report says are out), read from one resolved run folder."""
    real = Path(os.path.realpath(release))
    report = json.loads((real / "build_report.json").read_text(encoding="utf-8"))
    assert (real / "README.md").is_file()
    rows = sum(pl.read_parquet(real / split_path(spec.id, split)).height for spec in catalog for split in SPLITS)
    return rows, report["totals"]["out"]


@pytest.fixture
def data_dir(tmp_path: Path, catalog: Catalog) -> Path:
    root = tmp_path / "datasets"
    shutil.copytree(DATA / "tasks", root / "tasks")
    shutil.copytree(sample_seeds(), root / "seeds")
    (root / "synth").mkdir()
    return root


@pytest.mark.parametrize("step", FAULT_STEPS)
def test_a_crash_at_any_step_of_the_publish_leaves_a_whole_release(step: str, data_dir: Path, catalog: Catalog) -> None:
    _store(catalog, data_dir / "synth", "a.jsonl", 50, "Alpha")
    assert _run_build(data_dir).returncode == 0
    release = data_dir / "build" / "anytasktune"
    old_rows, _ = _snapshot(release, catalog)
    _store(catalog, data_dir / "synth", "b.jsonl", 50, "Beta")

    seen: list[tuple[int, int]] = []
    failures: list[str] = []
    stop = threading.Event()

    def read_continuously() -> None:
        while not stop.is_set():
            try:
                seen.append(_snapshot(release, catalog))
            except Exception as err:  # any failure to read a whole release is what this test is about
                failures.append(repr(err))

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        crashed = _run_build(data_dir, **{FAULT_VARIABLE: step})
    finally:
        stop.set()
        reader.join()
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    assert not failures, failures[:3]
    assert seen and all(rows == out for rows, out in seen), "a reader saw a report of one run beside another's data"
    rows, _ = _snapshot(release, catalog)
    switched = FAULT_STEPS.index(step) >= FAULT_STEPS.index("pointer_switched")
    assert rows == (old_rows + 50 if switched else old_rows)
    quarantine = data_dir / "build" / "_quarantine" / "anytasktune.jsonl"
    assert os.path.realpath(quarantine).startswith(os.path.realpath(release).removesuffix("/release"))

    import datasets

    loaded = datasets.load_dataset(str(release), TASK, cache_dir=str(data_dir.parent / "hf-cache"))
    assert set(loaded) == set(SPLITS)
    recovered = _run_build(data_dir)
    assert recovered.returncode == 0, recovered.stderr
    assert _snapshot(release, catalog)[0] == old_rows + 50
    assert len(list((data_dir / "build" / "runs").iterdir())) <= 2


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.update(int(c) for c in handle.read().split())
    except FileNotFoundError:
        pass
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_worker_processes_die_with_the_build(data_dir: Path, catalog: Catalog) -> None:
    for index in range(2):  # two files, so two workers
        _store(catalog, data_dir / "synth", f"part-{index}.jsonl", 20_000, f"Worker{index}")
    environment = {
        **os.environ,
        "ANYTASKTUNE_DATA_DIR": str(data_dir),
        "PYTHONPATH": str(REPO),
        "ANYTASKTUNE_PARALLEL_READ_BYTES": "0",  # read in worker processes however small the store
    }
    process = subprocess.Popen([sys.executable, "-m", "cli", "build"], env=environment, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2 and process.poll() is None:
        # The pool's workers are the build's children that are not the resource tracker (which has no children).
        workers = {c for c in _children(process.pid) if _alive(c)}
        time.sleep(0.02)
    assert process.poll() is None and workers, "the build finished before its workers could be seen"
    time.sleep(1.0)  # let the workers start their work
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "worker processes outlived the build"
