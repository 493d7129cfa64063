"""The command line as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_tasks_lists_the_catalog_as_a_table_and_as_json() -> None:
    table = run("tasks")
    assert table.returncode == 0 and table.stdout.startswith("25 sub-tasks")
    assert "| med_key_info " in table.stdout and "| field_f1 " in table.stdout
    rows = json.loads(run("tasks", "--json").stdout)
    assert len(rows) == 25
    assert {"id", "code", "domain", "output", "metric"} <= set(rows[0])
    finance = json.loads(run("tasks", "--json", "--domain", "finance").stdout)
    assert sorted(r["code"] for r in finance) == ["F1", "F2", "F3", "F4"]


def test_validate_passes_on_the_repository_data() -> None:
    result = run("validate")
    assert result.returncode == 0, result.stdout[-2000:]
    assert result.stdout.strip().endswith(": OK")


def test_a_broken_catalog_fails_validate_and_tasks_with_every_problem(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "a.yaml").write_text("id: a\ncode: A1\n", encoding="utf-8")
    (tasks / "b.yaml").write_text("id: [b\n", encoding="utf-8")
    env = {"ANYTASKTUNE_DATA_DIR": str(tmp_path), "PATH": ""}
    validate = run("validate", env=env, cwd=tmp_path)
    assert validate.returncode == 1
    assert "a.yaml:1: domain: Field required" in validate.stdout
    assert "b.yaml:2: not valid YAML: expected ',' or ']'" in validate.stdout
    listing = run("tasks", env=env, cwd=tmp_path)
    assert listing.returncode == 1 and "a.yaml:1: metric: Field required" in listing.stderr
