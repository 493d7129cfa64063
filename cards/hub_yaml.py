"""The Hub's `configs` and `dataset_info` for a release folder: which Parquet files make each config, and their sizes.

`datasets.load_dataset(repo, config)` reads `configs`; the Hub shows `dataset_info` (rows and bytes per split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from catalog import Catalog
from catalog.layout import ALL_CONFIG, SPLITS, config_files
from catalog.records import RECORD_COLUMNS


def hub_metadata(release: Path, catalog: Catalog) -> dict[str, Any]:
    """`configs` and `dataset_info` for the Parquet files under `release`, with row and byte counts per split."""
    configs, infos = [], []
    for name, splits in config_files(catalog).items():
        configs.append(
            {
                "config_name": name,
                "data_files": [
                    {"split": s, "path": files[0] if len(files) == 1 else files} for s, files in splits.items()
                ],
                **({"default": True} if name == ALL_CONFIG else {}),
            }
        )
        split_infos = []
        for split in SPLITS:
            files = [release / f for f in splits[split]]
            rows = sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in files)
            split_infos.append({"name": split, "num_bytes": sum(f.stat().st_size for f in files), "num_examples": rows})
        infos.append(
            {
                "config_name": name,
                "features": [{"name": column, "dtype": "string"} for column in RECORD_COLUMNS],
                "splits": split_infos,
                "download_size": sum(f.stat().st_size for s in SPLITS for f in (release / p for p in splits[s])),
                "dataset_size": sum(i["num_bytes"] for i in split_infos),
            }
        )
    return {"configs": configs, "dataset_info": infos}
