"""The Hub layout of a release: where each task's split lives and which files make up each config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catalog.loader import Catalog

SPLITS: tuple[str, ...] = ("train", "validation", "test")
ALL_CONFIG = "all"
RECIPE_DIR = "recipe"  # what rebuilds the release: task files, project file, build.json (pipeline.recipe)
RECIPE_FILE = "build.json"
BUILD_REPORT_FILE = "build_report.json"  # the build's funnel, reviews and agreement, in the release folder
QUARANTINE_DIR = "_quarantine"  # under the build folder: <name>.jsonl, the quarantine of the build <name>


def release_path(build_dir: Path, name: str) -> Path:
    """The stable path of the current release of the build `name` (pipeline.runs switches what it points to)."""
    return build_dir / name


def quarantine_path(build_dir: Path, name: str) -> Path:
    """The stable path of the current build's quarantine, published with its release."""
    return build_dir / QUARANTINE_DIR / f"{name}.jsonl"


def split_path(task_id: str, split: str) -> str:
    """The Parquet file of one task's split, relative to the release folder."""
    return f"data/{task_id}/{split}-00000-of-00001.parquet"


def config_files(catalog: Catalog) -> dict[str, dict[str, list[str]]]:
    """Config name → split → Parquet files: one config per task, one per domain, and `all`.

    Domain and `all` configs list the task files instead of copying the rows, so a release stores each record once.
    """
    configs: dict[str, dict[str, list[str]]] = {}
    for spec in catalog:
        configs[spec.id] = {split: [split_path(spec.id, split)] for split in SPLITS}
    for domain in catalog.domains:
        configs[domain] = {split: [split_path(t.id, split) for t in catalog.by_domain(domain)] for split in SPLITS}
    configs[ALL_CONFIG] = {split: [split_path(t.id, split) for t in catalog] for split in SPLITS}
    return configs


def read_build_report(release: Path) -> dict[str, Any] | None:
    """The release's `build_report.json`, or None for a folder without one."""
    path = release / BUILD_REPORT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def read_recipe(release: Path) -> dict[str, Any] | None:
    """The release's `recipe/build.json`, or None for a release made before recipes."""
    path = release / RECIPE_DIR / RECIPE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
