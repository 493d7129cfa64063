"""The matrix lists tasks in code order (F1 F2 F3 F4, as the paper's table does), not in catalog-id order."""

from __future__ import annotations

from catalog import Catalog
from catalog.spec import code_order
from training.matrix import build_matrix


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
