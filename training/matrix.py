"""The model × task matrix (the paper's Table 1): one row per evaluated model, the base model first, one column per
task code, as CSV, Markdown and a heatmap PNG, overall and per language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from catalog import Catalog
from catalog.spec import code_order
from training.evaluation import SCORES_FILE


def views(catalog: Catalog) -> dict[str, str | None]:
    """The matrix's views: `all` languages together, and each language apart where the catalog has two."""
    languages = catalog.languages
    return {"all": None, **({lang: lang for lang in languages} if len(languages) > 1 else {})}


def view_file(name: str) -> str:
    return "matrix.csv" if name == "all" else f"matrix_{name}.csv"


class MatrixError(ValueError):
    """No or unreadable evaluation results; the message names the folder or file."""


def collect_scores(runs_dir: Path) -> list[dict[str, Any]]:
    """Every `<run>/scores.json` under `runs_dir`, base models first, then by name."""
    files = sorted(runs_dir.glob(f"*/{SCORES_FILE}"))
    if not files:
        raise MatrixError(f"{runs_dir}: no evaluation results (*/{SCORES_FILE}); run `anytasktune eval` first")
    results = []
    for path in files:
        try:
            results.append(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as err:
            raise MatrixError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
    return sorted(results, key=lambda r: (r.get("kind") != "base", r.get("name", "")))


def build_matrix(catalog: Catalog, results: list[dict[str, Any]], lang: str | None = None) -> pl.DataFrame:
    """Rows: models; columns: `model`, `kind`, the task codes evaluated by any model, and `mean` over those present.
    Scores are percentages; a task a model was not evaluated on is null."""
    evaluated = {task for result in results for task in result["tasks"]}
    specs = sorted((spec for spec in catalog if spec.id in evaluated), key=code_order)  # F1 F2 F3, as in the paper
    key = lang or "score"
    rows = []
    for result in results:
        row: dict[str, Any] = {"model": result["name"], "kind": result.get("kind", "")}
        values = []
        for spec in specs:
            value = result["tasks"].get(spec.id, {}).get(key)
            row[spec.code] = None if value is None else round(100 * value, 1)
            if value is not None:
                values.append(100 * value)
        row["mean"] = round(sum(values) / len(values), 1) if values else None
        rows.append(row)
    schema = {"model": pl.String, "kind": pl.String, **{s.code: pl.Float64 for s in specs}, "mean": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def to_markdown(matrix: pl.DataFrame, title: str) -> str:
    """A Markdown table with the best score of each column in bold."""
    columns = matrix.columns
    best = {c: matrix[c].max() for c in columns[2:]}
    lines = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in matrix.iter_rows(named=True):
        cells = [row["model"], row["kind"]]
        for column in columns[2:]:
            value = row[column]
            text = "–" if value is None else f"{value:.1f}"
            cells.append(f"**{text}**" if value is not None and value == best[column] and matrix.height > 1 else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_heatmap(matrices: dict[str, pl.DataFrame], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    views = [(name, m) for name, m in matrices.items() if m.width > 2]
    first = views[0][1]
    width = max(6.0, 0.7 * (first.width - 2) + 3)
    figure, axes = plt.subplots(len(views), 1, figsize=(width, 1.2 + len(views) * (0.5 * first.height + 1.2)))
    axes = np.atleast_1d(axes)
    for axis, (name, matrix) in zip(axes, views, strict=True):
        columns = matrix.columns[2:]
        values = matrix.select(columns).to_numpy().astype(float)
        image = axis.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=100, aspect="auto")
        axis.set_xticks(range(len(columns)), columns)
        axis.set_yticks(range(matrix.height), matrix["model"].to_list())
        axis.set_title(f"score (%), {'all languages' if name == 'all' else name}")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if not np.isnan(values[i, j]):
                    color = "white" if values[i, j] < 50 else "black"
                    axis.text(j, i, f"{values[i, j]:.0f}", ha="center", va="center", color=color, fontsize=8)
        figure.colorbar(image, ax=axis, fraction=0.025)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_matrix(catalog: Catalog, runs_dir: Path, out_dir: Path) -> dict[str, pl.DataFrame]:
    """matrix.csv (all languages), matrix_<lang>.csv per language of a bilingual catalog, matrix.md with every view,
    matrix.png."""
    results = collect_scores(runs_dir)
    matrices = {name: build_matrix(catalog, results, lang) for name, lang in views(catalog).items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = []
    for name, matrix in matrices.items():
        matrix.write_csv(out_dir / view_file(name))
        markdown.append(to_markdown(matrix, "all languages" if name == "all" else f"lang = {name}"))
    (out_dir / "matrix.md").write_text("\n".join(markdown), encoding="utf-8")
    write_heatmap(matrices, out_dir / "matrix.png")
    return matrices
