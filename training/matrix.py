"""The model × task matrix (the paper's Table 1): one row per evaluated model, the base model first, one column per
task code, as CSV, Markdown and a heatmap PNG, overall and per language; every cell with its 95% bootstrap
interval (training.intervals), and the human row (blind second annotations scored like a model) when there is one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from catalog import Catalog
from catalog.spec import code_order
from training.evaluation import SCORES_FILE
from training.intervals import mean_interval, mean_of_means_interval, paired_bootstrap

HUMAN_KIND = "human"
HUMAN_NAME = "human (blind second annotation)"
INTERVALS_FILE = "matrix_intervals.csv"
JUDGE_VIEW = "judge"


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


def _evaluated(catalog: Catalog, results: list[dict[str, Any]]) -> list[Any]:
    evaluated = {task for result in results for task in result["tasks"] if result.get("kind") != HUMAN_KIND}
    return sorted((spec for spec in catalog if spec.id in evaluated), key=code_order)  # F1 F2 F3, as in the paper


def _item_scores(entry: dict[str, Any], lang: str | None) -> list[float]:
    """The per-record scores behind a cell (`items`: [id, lang, score]); none from a run that predates them."""
    return [item[2] for item in entry.get("items", []) if lang is None or item[1] == lang]


def matrix_cells(catalog: Catalog, results: list[dict[str, Any]], lang: str | None = None) -> list[dict[str, Any]]:
    """One row per model and task code, and per model for `mean`: the score (%), how many records, the interval."""
    specs, key = _evaluated(catalog, results), lang or "score"
    cells = []
    for result in results:
        name, kind = result["name"], result.get("kind", "")
        present, groups = [], []
        for spec in specs:
            entry = result["tasks"].get(spec.id, {})
            value, items = entry.get(key), _item_scores(entry, lang)
            interval = mean_interval(items, f"{name}\x1f{spec.id}\x1f{lang}") if items else None
            cells.append(_cell(name, kind, spec.code, value, len(items) or None, interval))
            if value is not None:
                present.append(value)
                groups.append(items)
        complete = bool(groups) and all(groups)  # an interval on the mean needs the records of every task in it
        interval = mean_of_means_interval(groups, f"{name}\x1fmean\x1f{lang}") if complete else None
        mean = sum(present) / len(present) if present else None
        cells.append(_cell(name, kind, "mean", mean, sum(map(len, groups)) or None, interval))
    return cells


def _cell(
    model: str, kind: str, code: str, value: float | None, n: int | None, interval: tuple[float, float] | None
) -> dict[str, Any]:
    def percent(x: float | None) -> float | None:
        return None if x is None else round(100 * x, 1)

    low, high = interval or (None, None)
    return {
        "model": model, "kind": kind, "code": code, "n": n,
        "score": percent(value), "low": percent(low), "high": percent(high),
    }  # fmt: skip


def build_matrix(catalog: Catalog, results: list[dict[str, Any]], lang: str | None = None) -> pl.DataFrame:
    """Rows: models; columns: `model`, `kind`, the task codes evaluated by any model, and `mean` over those present.
    Scores are percentages; a task a model was not evaluated on is null."""
    return _pivot(catalog, results, matrix_cells(catalog, results, lang), "score")


def _pivot(catalog: Catalog, results: list[dict[str, Any]], cells: list[dict[str, Any]], field: str) -> pl.DataFrame:
    codes = [s.code for s in _evaluated(catalog, results)] + ["mean"]
    rows = []
    for result in results:
        mine = {c["code"]: c[field] for c in cells if c["model"] == result["name"]}
        rows.append({"model": result["name"], "kind": result.get("kind", ""), **{c: mine.get(c) for c in codes}})
    schema = {"model": pl.String, "kind": pl.String, **dict.fromkeys(codes, pl.Float64)}
    return pl.DataFrame(rows, schema=schema, orient="row")


@dataclass(frozen=True)
class MatrixView:
    """One view of the matrix: scores, and the interval bounds in frames of the same shape."""

    scores: pl.DataFrame
    low: pl.DataFrame
    high: pl.DataFrame
    cells: list[dict[str, Any]]


def matrix_view(catalog: Catalog, results: list[dict[str, Any]], lang: str | None = None) -> MatrixView:
    cells = matrix_cells(catalog, results, lang)
    return MatrixView(*(_pivot(catalog, results, cells, f) for f in ("score", "low", "high")), cells)


def to_markdown(view: MatrixView, title: str) -> str:
    """A Markdown table, each cell with its 95% interval, the best model score of each column in bold (the human row
    is a reference, not a contender)."""
    matrix = view.scores
    columns = matrix.columns
    models = matrix.filter(pl.col("kind") != HUMAN_KIND)
    best = {c: models[c].max() for c in columns[2:]}
    lines = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row, low, high in zip(
        matrix.iter_rows(named=True), view.low.iter_rows(named=True), view.high.iter_rows(named=True), strict=True
    ):
        cells = [row["model"], row["kind"]]
        for column in columns[2:]:
            value = row[column]
            text = "–" if value is None else f"{value:.1f}"
            if value is not None and value == best[column] and models.height > 1 and row["kind"] != HUMAN_KIND:
                text = f"**{text}**"
            if low[column] is not None:
                text += f" ({low[column]:.1f}–{high[column]:.1f})"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    note = "Each cell: score (%) and its 95% bootstrap interval over the test records (–: not evaluated)."
    return "\n".join([*lines, "", note]) + "\n"


def write_heatmap(views: dict[str, MatrixView], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = [(name, v) for name, v in views.items() if v.scores.width > 2]
    first = shown[0][1].scores
    width = max(6.0, 0.8 * (first.width - 2) + 3)
    figure, axes = plt.subplots(len(shown), 1, figsize=(width, 1.2 + len(shown) * (0.6 * first.height + 1.2)))
    axes = np.atleast_1d(axes)
    for axis, (name, view) in zip(axes, shown, strict=True):
        columns = view.scores.columns[2:]
        values, low, high = (f.select(columns).to_numpy().astype(float) for f in (view.scores, view.low, view.high))
        image = axis.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=100, aspect="auto")
        axis.set_xticks(range(len(columns)), columns)
        axis.set_yticks(range(view.scores.height), view.scores["model"].to_list())
        axis.set_title(f"score (%) ± half the 95% interval, {'all languages' if name == 'all' else name}")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                if not np.isnan(values[i, j]):
                    text = f"{values[i, j]:.0f}"
                    if not np.isnan(low[i, j]):
                        text += f"\n±{(high[i, j] - low[i, j]) / 2:.0f}"
                    color = "white" if values[i, j] < 50 else "black"
                    axis.text(j, i, text, ha="center", va="center", color=color, fontsize=7)
        figure.colorbar(image, ax=axis, fraction=0.025)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_matrix(
    catalog: Catalog, runs_dir: Path, out_dir: Path, human: dict[str, Any] | None = None
) -> dict[str, pl.DataFrame]:
    """matrix.csv (all languages), matrix_<lang>.csv per language of a bilingual catalog, matrix_intervals.csv (every
    cell of every view with its n and interval), matrix.md with every view, matrix.png. `human` (human_result) adds
    the human row last."""
    results = collect_scores(runs_dir) + ([human] if human else [])
    matrices = {name: matrix_view(catalog, results, lang) for name, lang in views(catalog).items()}
    titles = {name: "all languages" if name == "all" else f"lang = {name}" for name in matrices}
    if graded := judge_results(results):
        matrices[JUDGE_VIEW] = matrix_view(catalog, graded)
        titles[JUDGE_VIEW] = "LLM judge, free-text tasks, all languages (beside the metric, not instead of it)"
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = []
    for name, view in matrices.items():
        view.scores.write_csv(out_dir / view_file(name))
        markdown.append(to_markdown(view, titles[name]))
    intervals = [{"view": name, **cell} for name, view in matrices.items() for cell in view.cells]
    pl.DataFrame(intervals, schema=INTERVAL_SCHEMA, orient="row").write_csv(out_dir / INTERVALS_FILE)
    (out_dir / "matrix.md").write_text("\n".join(markdown), encoding="utf-8")
    write_heatmap(matrices, out_dir / "matrix.png")
    return {name: view.scores for name, view in matrices.items()}


INTERVAL_SCHEMA = {
    "view": pl.String, "model": pl.String, "kind": pl.String, "code": pl.String, "n": pl.Int64,
    "score": pl.Float64, "low": pl.Float64, "high": pl.Float64,
}  # fmt: skip


def judge_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs that were judged, as results whose score is the judge's (training.judge): the matrix's judge view."""
    graded = []
    for result in results:
        tasks = {
            task: {
                **entry,
                "score": entry["judge"],
                "items": entry.get("judge_items", []),
                **{k.removeprefix("judge_"): v for k, v in entry.items() if k in ("judge_en", "judge_zh")},
            }
            for task, entry in result["tasks"].items()
            if "judge" in entry
        }
        if tasks:
            graded.append({**result, "tasks": tasks})
    return graded


def human_result(scored: pl.DataFrame, catalog: Catalog) -> dict[str, Any] | None:
    """The blind second annotations (validation.agreement.annotation_scores) as a row of the matrix: per task, the
    mean agreement overall and per language, and each annotation as an item; None when there are none."""
    if scored.is_empty():
        return None
    tasks: dict[str, Any] = {}
    for spec in catalog:
        mine = scored.filter(pl.col("task") == spec.id)
        if mine.is_empty():
            continue
        entry: dict[str, Any] = {"code": spec.code, "n": mine.height, "score": float(mine["score"].mean())}
        for lang in spec.languages:
            of_lang = mine.filter(pl.col("lang") == lang)
            entry[lang] = float(of_lang["score"].mean()) if of_lang.height else None
        entry["items"] = [list(row) for row in mine.select("record", "lang", "score").iter_rows()]
        tasks[spec.id] = entry
    return {"name": HUMAN_NAME, "kind": HUMAN_KIND, "tasks": tasks}


def compare_runs(catalog: Catalog, runs_dir: Path, first: str, second: str) -> list[dict[str, Any]]:
    """Per task both runs evaluated, in code order: the paired bootstrap of first − second over the records both
    scored (points), with each run's mean on those records."""
    results = {r.get("name"): r for r in collect_scores(runs_dir)}
    for name in (first, second):
        if name not in results:
            raise MatrixError(f"{runs_dir}: no run named {name!r} (runs: {', '.join(sorted(map(str, results)))})")
    rows = []
    for spec in sorted(catalog, key=code_order):
        a, b = (results[n]["tasks"].get(spec.id, {}).get("items") for n in (first, second))
        if not a or not b:
            continue
        theirs = {item[0]: item[2] for item in b}
        shared = [(item[2], theirs[item[0]]) for item in a if item[0] in theirs]
        if not shared:
            continue
        mine, other = zip(*shared, strict=True)
        test = paired_bootstrap(mine, other, f"{first}\x1f{second}\x1f{spec.id}")
        rows.append(
            {
                "code": spec.code,
                "task": spec.id,
                "n": test["n"],
                first: round(100 * sum(mine) / len(mine), 1),
                second: round(100 * sum(other) / len(other), 1),
                "difference": round(100 * test["difference"], 1),
                "low": round(100 * test["low"], 1),
                "high": round(100 * test["high"], 1),
                "verdict": {"first better": f"{first} better", "second better": f"{second} better"}.get(
                    test["verdict"], test["verdict"]
                ),
            }
        )
    if not rows:
        raise MatrixError(
            f"{first} and {second} share no scored test record (a run evaluated before per-record scores were kept "
            "has none: evaluate it again, its answers are cached)"
        )
    return rows
