"""Publishing a build as one unit: a folder per run, and one atomic pointer to the current run.

    build/runs/<name>-<stamp>/release/       the Hub folder (Parquet, README.md, build_report.json)
    build/runs/<name>-<stamp>/quarantine.jsonl
    build/<name>.current  ->  runs/<name>-<stamp>          the one pointer, switched by rename(2)
    build/<name>          ->  <name>.current/release        stable paths that readers use
    build/_quarantine/<name>.jsonl  ->  ../<name>.current/quarantine.jsonl

Release, quarantine and report change together when the pointer is replaced, so a reader never sees a missing or
mixed release; a crash at any step leaves the previous pointer, hence the previous release, in place. The run
before the current one is kept, so a reader that resolved the old pointer a moment ago can finish reading it.
`ANYTASKTUNE_FAULT=<step>` kills the process at that step (tests use it to crash the publish at every step).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from catalog.layout import quarantine_path, release_path

FAULT_VARIABLE = "ANYTASKTUNE_FAULT"
FAULT_STEPS = ("run_written", "pointer_staged", "pointer_switched", "cleaned")
RUNS_DIR = "runs"
COMPLETE_MARK = ".complete"


@dataclass(frozen=True)
class Run:
    """One build's own folder, written in full before it is published."""

    root: Path

    @property
    def release(self) -> Path:
        return self.root / "release"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine.jsonl"


def fault_point(step: str) -> None:
    """Die here, as a crash would (SIGKILL: no cleanup, no finally), when the fault variable names this step."""
    if os.environ.get(FAULT_VARIABLE) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _pointer(build_dir: Path, name: str) -> Path:
    return build_dir / f"{name}.current"


def new_run(build_dir: Path, name: str) -> Run:
    """A fresh, empty run folder (call under the build lock)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 1_000_000_000:09d}-{os.getpid()}"
    root = build_dir / RUNS_DIR / f"{name}-{stamp}"
    root.mkdir(parents=True)
    return Run(root)


def publish(build_dir: Path, name: str, run: Run) -> None:
    """Make `run` the current release with one atomic rename, then drop runs older than the previous one."""
    (run.root / COMPLETE_MARK).touch()
    fault_point("run_written")
    pointer = _pointer(build_dir, name)
    staged = build_dir / f".{name}.current.new"
    if staged.is_symlink() or staged.exists():
        staged.unlink()
    staged.symlink_to(Path(RUNS_DIR) / run.root.name)
    fault_point("pointer_staged")
    previous = current_run(build_dir, name)
    os.replace(staged, pointer)  # the publish: atomic on POSIX, whatever readers are doing
    fault_point("pointer_switched")
    _ensure_stable_links(build_dir, name)
    _clean(build_dir, name, keep={run.root.name} | ({previous.root.name} if previous else set()))
    fault_point("cleaned")


def current_run(build_dir: Path, name: str) -> Run | None:
    pointer = _pointer(build_dir, name)
    if not pointer.is_symlink():
        return None
    target = build_dir / os.readlink(pointer)
    return Run(target) if target.is_dir() else None


def recover(build_dir: Path, name: str) -> None:
    """Before a build (under the lock): adopt a release of the old layout, and make the stable links point right.

    Half-written runs of a crashed build are left for `publish` to clean; they are never pointed to.
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    release, quarantine = release_path(build_dir, name), quarantine_path(build_dir, name)
    if release.is_dir() and not release.is_symlink():  # a release folder written before runs existed
        run = new_run(build_dir, name)
        release.rename(run.release)
        if quarantine.is_file() and not quarantine.is_symlink():
            quarantine.rename(run.quarantine)
        else:
            run.quarantine.touch()
        publish(build_dir, name, run)
    for leftover in build_dir.glob(f".staging-{name}*"):  # the old layout's staging folders
        _remove(leftover)
    if current_run(build_dir, name) is not None:
        _ensure_stable_links(build_dir, name)


def _ensure_stable_links(build_dir: Path, name: str) -> None:
    links = {
        release_path(build_dir, name): Path(f"{name}.current") / "release",
        quarantine_path(build_dir, name): Path("..") / f"{name}.current" / "quarantine.jsonl",
    }
    for link, target in links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        staged = link.with_name(f".{link.name}.link")
        if staged.is_symlink() or staged.exists():
            staged.unlink()
        staged.symlink_to(target)
        os.replace(staged, link)


def _clean(build_dir: Path, name: str, keep: set[str]) -> None:
    for run in (build_dir / RUNS_DIR).glob(f"{name}-[0-9]*T*"):  # this name's runs only
        if run.name not in keep:
            _remove(run)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
