"""Blind second annotations (verdict `annotate` in reviews/) are scored by the build against the published test
references with the task's own metric, with Cohen's kappa for label tasks; the card prints the table; annotating
never changes a record."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cards.sections import human_agreement
from catalog import Catalog
from catalog.settings import DATA_DIR_VARIABLE, Settings
from cli.main import app
from pipeline.build import build
from tests.conftest import DATA, write_jsonl
from validation.agreement import cohen_kappa
from validation.release_data import read_release


def test_cohen_kappa_on_hand_computed_cases() -> None:
    # observed 3/4; chance (2·1 + 2·3) / 16 = 1/2; kappa (0.75 − 0.5) / 0.5
    assert cohen_kappa([("a", "a"), ("a", "b"), ("b", "b"), ("b", "b")]) == pytest.approx(0.5)
    assert cohen_kappa([("a", "a"), ("b", "b"), ("c", "c")]) == pytest.approx(1.0)
    # always the opposite label: observed 0, chance 1/2
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None  # one label only: chance agreement is certain
    assert cohen_kappa([]) is None


def test_the_build_scores_blind_annotations_of_the_test_split_and_the_card_prints_them(
    tmp_path: Path, catalog: Catalog
) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA / "tasks", data / "tasks")
    (data / "seeds").mkdir()
    for task in ("fin_intent", "psy_support_reply"):
        shutil.copy(DATA / "seeds" / f"{task}.jsonl", data / "seeds")
    settings = Settings(data)
    first = read_release(build(catalog, settings).release, catalog)
    spec = catalog.get("fin_intent")
    rng = random.Random(3)
    lines, pairs = [], []
    for minute, row in enumerate(first.filter(first["task"] == "fin_intent").iter_rows(named=True)):
        labels = spec.labels(spec.label_set, row["lang"])
        answer = row["output"] if rng.random() < 0.6 else rng.choice([x for x in labels if x != row["output"]])
        lines.append(
            {
                "record": row["id"],
                "task": row["task"],
                "lang": row["lang"],
                "reviewer": "ines",
                "time": f"2026-12-05T09:{minute:02d}:00Z",
                "verdict": "annotate",
                "output": answer,
            }
        )
        if row["split"] == "test" and row["lang"] == "en":
            pairs.append(
                (
                    spec.canonical_label(spec.label_set, "en", row["output"]),
                    spec.canonical_label(spec.label_set, "en", answer),
                )
            )
    (data / "reviews").mkdir()
    write_jsonl(data / "reviews" / "ines.jsonl", lines)

    result = build(catalog, settings)
    agreement = result.report["agreement"]
    assert agreement["annotations"] == len(lines)
    tested = first.filter((first["task"] == "fin_intent") & (first["split"] == "test"))
    assert agreement["scored"] == tested.height  # train and validation records are counted, not scored
    row = next(r for r in agreement["table"] if (r["task"], r["lang"]) == ("fin_intent", "en"))
    assert row["annotations"] == len(pairs)
    assert row["agreement"] == pytest.approx(sum(a == b for a, b in pairs) / len(pairs))
    assert row["kappa"] == pytest.approx(cohen_kappa(pairs))
    assert not [r for r in agreement["table"] if r["task"] == "psy_support_reply"]  # nothing annotated there
    # Annotating decides nothing: the release is the same records with the same outputs.
    second = read_release(result.release, catalog)
    assert second.sort("id").select("id", "output", "split").equals(first.sort("id").select("id", "output", "split"))
    saved = json.loads((result.release / "build_report.json").read_text("utf-8"))
    assert saved["agreement"] == agreement

    # One command recomputes it from the folder, without a build.
    printed = CliRunner().invoke(app, ["agreement", "--json"], env={DATA_DIR_VARIABLE: str(data)})
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output) == agreement

    section = human_agreement(catalog, saved)
    assert f"| {spec.code} | fin_intent | en | {len(pairs)} | {row['agreement']:.2f} | {row['kappa']:.2f} |" in section
    assert "No blind second annotations" in human_agreement(catalog, {"agreement": {"table": []}})
