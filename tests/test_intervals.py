"""Bootstrap intervals: deterministic for a seed, covering the true value on simulated data at about their level;
the matrix prints one on every cell with the human row last; `compare` says which of two runs is better per task."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from catalog import Catalog
from catalog.settings import DATA_DIR_VARIABLE
from cli.main import app
from tests.test_agreement import _annotation, _fixture_folder
from training.evaluation import EvalRun, summarize
from training.intervals import mean_interval, mean_of_means_interval, paired_bootstrap
from training.matrix import HUMAN_NAME, INTERVALS_FILE


def test_an_interval_is_the_same_for_the_same_seed_and_cell() -> None:
    scores = [float(x) for x in np.random.default_rng(1).integers(0, 2, 60)]
    assert mean_interval(scores, "m/F1") == mean_interval(scores, "m/F1")
    assert mean_interval(scores, "m/F1", seed=1) != mean_interval(scores, "m/F1", seed=2)
    low, high = mean_interval(scores, "m/F1")
    assert low <= sum(scores) / len(scores) <= high
    assert mean_interval([], "m/F1") is None
    assert mean_interval([1.0] * 10, "m/F1") == (1.0, 1.0)  # no spread, no width


@pytest.mark.parametrize(("p", "n"), [(0.7, 100), (0.5, 40)])
def test_intervals_cover_the_true_accuracy_about_95_percent_of_the_time(p: float, n: int) -> None:
    rng = np.random.default_rng(7)
    trials, covered, widths = 300, 0, []
    for trial in range(trials):
        scores = rng.binomial(1, p, n).astype(float)
        low, high = mean_interval(list(scores), f"sim/{trial}", resamples=1000)
        covered += low <= p <= high
        widths.append(high - low)
    assert 0.90 <= covered / trials <= 0.99
    # And about as wide as the normal approximation says: 2 · 1.96 · sqrt(p(1 − p) / n).
    assert np.mean(widths) == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / n), rel=0.1)


def test_the_interval_of_a_mean_over_tasks_covers_the_true_mean() -> None:
    rng = np.random.default_rng(11)
    truths, covered, trials = (0.3, 0.8, 0.55), 0, 200
    for trial in range(trials):
        groups = [list(rng.binomial(1, t, 50).astype(float)) for t in truths]
        low, high = mean_of_means_interval(groups, f"mean/{trial}", resamples=1000)
        covered += low <= np.mean(truths) <= high
    assert 0.90 <= covered / trials <= 0.99


def test_the_paired_bootstrap_covers_the_true_difference_and_sees_a_real_one() -> None:
    rng = np.random.default_rng(5)
    covered, trials = 0, 200
    for trial in range(trials):
        # Records differ a lot in difficulty; A gains 0.05 on each record's chance over B.
        difficulty = rng.uniform(0.1, 0.85, 80)
        a = rng.binomial(1, difficulty + 0.05).astype(float)
        b = rng.binomial(1, difficulty).astype(float)
        result = paired_bootstrap(list(a), list(b), f"pair/{trial}", resamples=1000)
        covered += result["low"] <= 0.05 <= result["high"]
    assert 0.90 <= covered / trials <= 0.99
    base = [float(x) for x in rng.binomial(1, 0.5, 200)]
    better = [1.0 if random.Random(i).random() < 0.6 else s for i, s in enumerate(base)]
    assert paired_bootstrap(better, base, "clear")["verdict"] == "first better"
    assert paired_bootstrap(base, better, "clear")["verdict"] == "second better"
    assert paired_bootstrap(base, base, "same")["verdict"] == "no clear difference"
    with pytest.raises(ValueError, match="same, non-empty"):
        paired_bootstrap([1.0], [1.0, 0.0], "mismatch")


def _run(runs: Path, catalog: Catalog, name: str, kind: str, rows: list[dict[str, object]]) -> None:
    summary = summarize(catalog, rows, EvalRun(name=name, kind=kind, model=name))
    (runs / name).mkdir(parents=True)
    (runs / name / "scores.json").write_text(json.dumps(summary), encoding="utf-8")


def test_the_matrix_has_an_interval_on_every_cell_and_the_human_row_last(tmp_path: Path, catalog: Catalog) -> None:
    data, gold, others = _fixture_folder(tmp_path, catalog)
    annotations = [_annotation(r, r["output"] if i < 3 else others[i], "ines", i) for i, r in enumerate(gold)]
    (data / "reviews").mkdir()
    (data / "reviews" / "ines.jsonl").write_text("".join(json.dumps(a) + "\n" for a in annotations), "utf-8")
    runs, rng = tmp_path / "runs", random.Random(4)
    tasks = ("fin_intent", "med_triage")
    records = [(t, lang, f"{t}-{lang}-{i}") for t in tasks for lang in ("en", "zh") for i in range(40)]
    base = [{"id": i, "task": t, "lang": lang, "score": float(rng.random() < 0.4)} for t, lang, i in records]
    tuned = [{**r, "score": 1.0 if rng.random() < 0.5 else r["score"]} for r in base]
    _run(runs, catalog, "tuned", "adapter", tuned)
    _run(runs, catalog, "base", "base", base)
    env, out = {DATA_DIR_VARIABLE: str(data)}, tmp_path / "matrix"
    result = CliRunner().invoke(app, ["matrix", "--runs", str(runs), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output

    rows = list(csv.DictReader((out / "matrix.csv").open(encoding="utf-8")))
    assert [(r["model"], r["kind"]) for r in rows] == [("base", "base"), ("tuned", "adapter"), (HUMAN_NAME, "human")]
    assert rows[2]["F2"] == "60.0" and rows[2]["M4"] == ""  # 3 of 5 annotations agree; no annotation of M4
    cells = list(csv.DictReader((out / INTERVALS_FILE).open(encoding="utf-8")))
    assert {c["view"] for c in cells} == {"all", "en", "zh"}
    for cell in cells:
        if cell["score"] and cell["model"] != HUMAN_NAME:
            assert float(cell["low"]) <= float(cell["score"]) <= float(cell["high"]), cell
            assert int(cell["n"]) == (80 if cell["view"] == "all" else 40) * (2 if cell["code"] == "mean" else 1)
    human_f2 = next(c for c in cells if (c["model"], c["code"], c["view"]) == (HUMAN_NAME, "F2", "en"))
    assert human_f2["n"] == "5" and float(human_f2["low"]) < 60.0 < float(human_f2["high"])
    markdown = (out / "matrix.md").read_text(encoding="utf-8")
    tuned_f2 = next(c for c in cells if (c["model"], c["code"], c["view"]) == ("tuned", "F2", "all"))
    assert f"{float(tuned_f2['score']):.1f}** ({float(tuned_f2['low']):.1f}–{float(tuned_f2['high']):.1f})" in markdown
    assert f"| {HUMAN_NAME} | human | 60.0 (" in markdown  # a reference row: never in bold

    compared = CliRunner().invoke(app, ["compare", "tuned", "base", "--runs", str(runs), "--json"], env=env)
    assert compared.exit_code == 0, compared.output
    verdicts = {r["code"]: r for r in json.loads(compared.output)}
    assert set(verdicts) == {"F2", "M4"} and all(v["n"] == 80 for v in verdicts.values())
    assert all(v["verdict"] == "tuned better" and v["low"] > 0 for v in verdicts.values())
    missing = CliRunner().invoke(app, ["compare", "tuned", "nobody", "--runs", str(runs)], env=env)
    assert missing.exit_code == 1 and "no run named 'nobody'" in missing.output
