"""The recipe a release carries in `recipe/`: enough for `anytasktune build` to make the same Parquet again.

`recipe/tasks/` holds the catalog's task files and `recipe/anytasktune.yaml` the project file, as they were;
`recipe/build.json` the tool and its version, the build configuration, every input file (path under the data folder,
bytes, lines, SHA-256) and every Parquet file made (SHA-256, rows). Rebuilding from the recipe and the same inputs
gives byte-identical files; the hashes say whether the inputs at hand are the same.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl

from catalog.layout import RECIPE_DIR, RECIPE_FILE
from catalog.project import PROJECT_FILE
from catalog.settings import Settings

TOOL = "anytasktune"


def tool_version() -> str:
    try:
        return importlib.metadata.version(TOOL)
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def describe_inputs(inputs: list[Path], data_dir: Path) -> list[dict[str, Any]]:
    """Path, bytes, lines and SHA-256 of each input file. hashlib lets go of the GIL, so the build runs this in a
    thread beside its own single-threaded steps (~3 s for 2.6 GB)."""
    return [_described(path, data_dir, lines=True) for path in inputs]


def write_recipe(release: Path, settings: Settings, config: Any, inputs: list[dict[str, Any]]) -> Path:
    """Write `recipe/` into the release folder (after its Parquet files); `inputs` as `describe_inputs` gives them."""
    folder = release / RECIPE_DIR
    (folder / "tasks").mkdir(parents=True)
    for path in sorted(settings.tasks_dir.glob("*.yaml")):
        shutil.copyfile(path, folder / "tasks" / path.name)
    if (settings.data_dir / PROJECT_FILE).exists():
        shutil.copyfile(settings.data_dir / PROJECT_FILE, folder / PROJECT_FILE)
    outputs = sorted(p for p in (release / "data").rglob("*.parquet"))
    recipe = {
        "tool": {"name": TOOL, "version": tool_version()},
        "build": asdict(config),
        "inputs": inputs,
        "outputs": [
            {**_described(path, release), "rows": pl.scan_parquet(path).select(pl.len()).collect().item()}
            for path in outputs
        ],
    }
    path = folder / RECIPE_FILE
    path.write_text(json.dumps(recipe, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def _described(path: Path, root: Path, lines: bool = False) -> dict[str, Any]:
    digest, size, newlines = hashlib.sha256(), 0, 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            newlines += chunk.count(b"\n") if lines else 0
    described: dict[str, Any] = {"path": _relative(path, root), "bytes": size, "sha256": digest.hexdigest()}
    if lines:
        described["lines"] = newlines
    return described


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # an input outside the data folder (a symlinked store): its name is what can be said
        return path.name
