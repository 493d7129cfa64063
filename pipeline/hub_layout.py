"""The release README's YAML header in Hub form: `configs` (data files per config and split) and `dataset_info`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml

from catalog import Catalog
from catalog.layout import ALL_CONFIG, SPLITS, config_files
from catalog.records import RECORD_COLUMNS


def hub_metadata(release: Path, catalog: Catalog) -> dict:
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
            }
        )
    return {"configs": configs, "dataset_info": infos}


def write_release_readme(release: Path, catalog: Catalog, name: str) -> None:
    """A README.md with the Hub YAML header and a short body; the full dataset card is rendered by `cards`."""
    header = {
        "pretty_name": "AnyTaskTune",
        "language": ["en", "zh"],
        **hub_metadata(release, catalog),
    }
    body = (
        f"# {name}\n\nExplicit, bilingual (English and Chinese) instruction datasets for {len(catalog)} domain "
        "sub-tasks, built by AnyTaskTune. One config per task, one per domain, and `all`; each holds both languages "
        "with a `lang` column and the splits train, validation and test.\n"
    )
    text = "---\n" + yaml.safe_dump(header, allow_unicode=True, sort_keys=False, width=1000) + "---\n\n" + body
    (release / "README.md").write_text(text, encoding="utf-8")
