"""LLaMA-Factory's `dataset_info.json`: entries per task, per domain and for `all`, Alpaca columns, nothing converted.

Point LLaMA-Factory's `dataset_dir` at the release folder and name entries in `dataset:`. A task's entry is one
Parquet file (`file_name`): `<task>` is its train split, `<task>_<split>` any split. A domain or `all` spans several
task folders, which a `file_name` cannot name, so their entries load the folder's own configs through `datasets`
(`script_url: "."` with `subset` and `split`: LLaMA-Factory calls `load_dataset(<dataset_dir>/., name, split)`).
A task id that equals a domain's name keeps the name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catalog import Catalog
from catalog.layout import ALL_CONFIG, SPLITS, split_path

DATASET_INFO_FILE = "dataset_info.json"
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}


def dataset_info(catalog: Catalog) -> dict[str, Any]:
    """Entry name → how LLaMA-Factory reads it, in Alpaca format."""
    entries: dict[str, Any] = {}
    for config in [*catalog.domains, ALL_CONFIG]:
        for split in SPLITS:
            entry = {"script_url": ".", "subset": config, "split": split, **_alpaca()}
            entries[f"{config}_{split}"] = entry
            if split == "train":
                entries[config] = entry
    for spec in catalog:
        for split in SPLITS:
            entry = {"file_name": split_path(spec.id, split), **_alpaca()}
            entries[f"{spec.id}_{split}"] = entry
            if split == "train":
                entries[spec.id] = entry
    return entries


def _alpaca() -> dict[str, Any]:
    return {"formatting": "alpaca", "columns": dict(ALPACA_COLUMNS)}


def write_dataset_info(release: Path, catalog: Catalog) -> Path:
    path = release / DATASET_INFO_FILE
    path.write_text(json.dumps(dataset_info(catalog), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
