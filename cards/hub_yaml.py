"""The Hub's `configs` and `dataset_info` for a release folder: which Parquet files make each config, and their sizes.

`datasets.load_dataset(repo, config)` reads `configs`; the Hub shows `dataset_info` (rows and bytes per split).
Sizes mean what `datasets` means: `num_bytes` and `dataset_size` are the Arrow size of the loaded split (string
columns with 32-bit offsets, as `datasets` casts them), `download_size` the Parquet files' bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from catalog import Catalog
from catalog.layout import ALL_CONFIG, SPLITS, config_files
from catalog.records import RECORD_COLUMNS


def hub_metadata(release: Path, catalog: Catalog) -> dict[str, Any]:
    """`configs` and `dataset_info` for the Parquet files under `release`, with row and byte counts per split."""
    configs, infos = [], []
    sizes: dict[str, tuple[int, int]] = {}  # file → (rows, Arrow bytes): domain and `all` configs share task files
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
            measured = [sizes.setdefault(f, _arrow_size(release / f)) for f in splits[split]]
            split_infos.append(
                {"name": split, "num_bytes": sum(b for _, b in measured), "num_examples": sum(n for n, _ in measured)}
            )
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


def _arrow_size(path: Path) -> tuple[int, int]:
    """Rows, and bytes of the file's table as `datasets` holds it once loaded (string columns, not large_string)."""
    table = pq.read_table(path)
    return table.num_rows, table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names])).nbytes
