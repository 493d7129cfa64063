"""LLaMA-Factory's `dataset_info.json`: one entry per task and split, Alpaca columns, Parquet files of the release.

Point LLaMA-Factory's `dataset_dir` at the release folder and name entries in `dataset:`, e.g.
`med_triage_train,fin_intent_train`; nothing needs converting.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from catalog import Catalog
from catalog.layout import SPLITS, split_path

DATASET_INFO_FILE = "dataset_info.json"
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}


def dataset_info(catalog: Catalog) -> dict[str, Any]:
    """`<task>_<split>` → the Parquet file of that split, read in Alpaca format."""
    return {
        f"{spec.id}_{split}": {
            "file_name": split_path(spec.id, split),
            "formatting": "alpaca",
            "columns": dict(ALPACA_COLUMNS),
        }
        for spec in catalog
        for split in SPLITS
    }


def write_dataset_info(release: Path, catalog: Catalog) -> Path:
    path = release / DATASET_INFO_FILE
    path.write_text(json.dumps(dataset_info(catalog), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
