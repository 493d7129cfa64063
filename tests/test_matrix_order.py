"""The matrix lists tasks in code order (F1 F2 F3 F4, as the paper's table does), not in catalog-id order, and base
models first, whether they ran here or behind an endpoint."""

from __future__ import annotations

import json
from pathlib import Path

from catalog import Catalog
from catalog.spec import code_order
from training.matrix import build_matrix, collect_scores


def test_matrix_columns_follow_the_task_codes(catalog: Catalog) -> None:
    finance = [spec for spec in catalog if spec.domain == "finance"]
    assert [s.code for s in finance] != sorted(s.code for s in finance)  # id order is not code order here
    result = {"name": "m", "kind": "base", "tasks": {s.id: {"score": 0.5} for s in catalog}}
    columns = build_matrix(catalog, [result]).columns[2:-1]
    expected = [s.code for s in sorted(catalog, key=code_order)]
    assert columns == expected
    assert [c for c in columns if c.startswith("F")] == ["F1", "F2", "F3", "F4"]
    numbers = [(c[0], int(c[1:])) for c in columns]
    assert numbers == sorted(numbers)  # a number compares as a number: C10 would come after C9


def test_base_models_come_first_however_they_were_evaluated(catalog: Catalog, tmp_path: Path) -> None:
    tasks = {s.id: {"score": 0.5} for s in catalog}
    results = [
        {"name": "a-tuned", "kind": "adapter", "backend": "local", "tasks": tasks},
        {"name": "b-served-tuned", "kind": "tuned", "backend": "endpoint", "tasks": tasks},
        {"name": "z-gpt", "kind": "base", "backend": "endpoint", "tasks": tasks},
        {"name": "y-qwen", "kind": "base", "backend": "local", "tasks": tasks},
    ]
    for result in results:  # as `anytasktune eval` leaves them: <runs>/<name>/scores.json
        (tmp_path / result["name"]).mkdir()
        (tmp_path / result["name"] / "scores.json").write_text(json.dumps(result), encoding="utf-8")
    matrix = build_matrix(catalog, collect_scores(tmp_path))
    assert matrix["model"].to_list() == ["y-qwen", "z-gpt", "a-tuned", "b-served-tuned"]
