"""Leakage across tasks and languages among the seeds: `validate` names every exemplar that shares a split group
with a gold record (a near-twin input in any task of its language, or a declared translation group) and every
same-task near-duplicate, with both places, on planted leaks among all of the real seeds; the real seeds have none."""

from __future__ import annotations

import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

from typer.testing import CliRunner

from catalog import Catalog
from catalog.settings import DATA_DIR_VARIABLE
from cli.main import app
from tests.conftest import DATA
from validation.records import validate_files


def _seeds(folder: Path) -> dict[str, list[dict]]:
    return {
        path.stem: [json.loads(line) for line in path.read_text("utf-8").splitlines()]
        for path in sorted(folder.glob("*.jsonl"))
    }


def test_the_real_seeds_leak_nowhere(catalog: Catalog) -> None:
    report = validate_files([DATA / "seeds"], catalog, DATA / "seeds")
    leaks = [p for p in report.failures if "gold leak" in p.reason or "near-duplicate" in p.reason]
    assert not leaks, "\n".join(map(str, leaks[:20]))


def test_planted_leaks_are_each_named_with_both_places(tmp_path: Path, catalog: Catalog) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA / "tasks", data / "tasks")
    seeds = _seeds(DATA / "seeds")
    rng = random.Random(17)
    by_lang: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for task, rows in seeds.items():
        for line, row in enumerate(rows, start=1):
            by_lang[row["lang"]].append((task, line))
    planted: dict[tuple[str, int], str] = {}  # (file, line) of the planted record → what must be said about it
    additions: dict[str, list[dict]] = defaultdict(list)

    def exemplar_of(task: str, lang: str) -> dict:
        return rng.choice([r for r in seeds[task] if r["lang"] == lang and r["role"] == "exemplar"])

    def plant(task: str, row: dict, expected: str) -> None:
        additions[task].append(row)
        planted[(f"{task}.jsonl", len(seeds[task]) + len(additions[task]))] = expected

    # 1. A gold input copied, lightly edited, as an exemplar of another task of its language.
    golds = [(t, n) for lang in ("en", "zh") for t, n in by_lang[lang] if seeds[t][n - 1]["role"] == "gold"]
    for task, line in rng.sample(golds, 30):
        gold = seeds[task][line - 1]
        other = rng.choice([t for t in seeds if t != task and t in catalog])
        leaked = {
            **exemplar_of(other, gold["lang"]),
            "input": gold["input"] + (" 请尽快。" if gold["lang"] == "zh" else " Thanks."),
        }
        plant(other, leaked, f"{task}.jsonl:{line} ({task}, gold)")
    # 2. A declared translation: a gold record and an exemplar of the other language in another task share a group.
    for index, (task, line) in enumerate(rng.sample(golds, 10)):
        gold = seeds[task][line - 1]
        seeds[task][line - 1] = {**gold, "group": f"pair-{index}"}
        other_lang = "zh" if gold["lang"] == "en" else "en"
        other = rng.choice([t for t in seeds if t != task])
        mate = rng.choice(
            [n for n, r in enumerate(seeds[other], 1) if r["lang"] == other_lang and r["role"] == "exemplar"]
        )
        seeds[other][mate - 1] = {**seeds[other][mate - 1], "group": f"pair-{index}"}
        planted[(f"{other}.jsonl", mate)] = f"group 'pair-{index}'"
    # 3. An exemplar repeated in its own task with one word more.
    long_ones = [(t, n) for t, rows in seeds.items() for n, r in enumerate(rows, 1) if len(r["input"]) > 300]
    for task, line in rng.sample(long_ones, 10):
        row = seeds[task][line - 1]
        if row["role"] != "exemplar":
            continue
        plant(task, {**row, "input": row["input"] + " !!"}, f"{task}.jsonl:{line} ({task}, exemplar) (Jaccard")
    for task, rows in seeds.items():
        path = data / "seeds" / f"{task}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows + additions[task]), "utf-8")

    result = CliRunner().invoke(app, ["validate", "--json"], env={DATA_DIR_VARIABLE: str(data)})
    failures = json.loads(result.output)["failures"]
    said: dict[tuple[str, int], str] = defaultdict(str)
    for f in failures:
        if "gold leak" in f["reason"] or "near-duplicate" in f["reason"]:
            said[(Path(f["file"]).name, f["line"])] += f["reason"] + "\n"
    assert set(said) == set(planted), (set(said) ^ set(planted), [f for f in failures if f["line"] is None][:3])
    for place, expected in planted.items():
        assert expected in said[place], (place, said[place])
    assert all(f["field"] == "input" for f in failures if (Path(f["file"]).name, f["line"]) in planted)
