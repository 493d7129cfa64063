"""The card's figures as PNG files in the release: records per task and language, and text-length distributions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from catalog import Catalog

PLOTS_DIR = "plots"
COUNTS_PLOT = f"{PLOTS_DIR}/records_per_task.png"
LENGTHS_PLOT = f"{PLOTS_DIR}/lengths.png"
LANG_COLORS = {"en": "#4C72B0", "zh": "#DD8452"}
# PNG text chunks are left out so the same data gives the same bytes.
_PNG_METADATA = {"Software": None}


def _pyplot() -> Any:
    """matplotlib's pyplot, imported when a figure is drawn: it costs half a second that no other command needs."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, the same on a CI machine
    import matplotlib.pyplot as plt

    return plt


def write_plots(release: Path, records: pl.DataFrame, catalog: Catalog) -> list[str]:
    """Draw both figures into `release/plots/`; returns their paths relative to the release."""
    (release / PLOTS_DIR).mkdir(parents=True, exist_ok=True)
    _counts_figure(records, catalog, release / COUNTS_PLOT)
    _lengths_figure(records, release / LENGTHS_PLOT)
    return [COUNTS_PLOT, LENGTHS_PLOT]


def _counts_figure(records: pl.DataFrame, catalog: Catalog, path: Path) -> None:
    specs = list(catalog)
    counts = {}
    if not records.is_empty():
        counts = {(t, lang): n for t, lang, n in records.group_by("task", "lang").len().iter_rows()}
    labels = [f"{s.code}  {s.id}" for s in specs]
    y = np.arange(len(specs))
    height = 0.4
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(specs) + 1.4), dpi=110)
    for offset, lang in ((-height / 2, "en"), (height / 2, "zh")):
        values = [counts.get((s.id, lang), 0) for s in specs]
        ax.barh(y + offset, values, height=height, color=LANG_COLORS[lang], label=lang)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("records (all splits)")
    ax.set_title("Records per task and language")
    ax.legend(loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_METADATA)
    plt.close(fig)


def _lengths_figure(records: pl.DataFrame, path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    for ax, field in zip(axes, ("input", "output"), strict=True):
        for lang in ("en", "zh"):
            lengths = records.filter(pl.col("lang") == lang)[field].str.len_chars().to_numpy()
            if lengths.size:
                bins = np.logspace(0, np.log10(max(lengths.max(), 10)), 30)
                ax.hist(lengths, bins=bins, alpha=0.6, color=LANG_COLORS[lang], label=lang)
        ax.set_xscale("log")
        ax.set_xlabel(f"{field} length (characters, log scale)")
        ax.set_ylabel("records")
        ax.set_title(f"{field.capitalize()} length")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata=_PNG_METADATA)
    plt.close(fig)
