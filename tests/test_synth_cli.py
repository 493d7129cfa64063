"""`anytasktune synth` as a user runs it: no endpoint, the report, the budget, and a key that never leaks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import DATA, REPO
from tests.fake_openai import FakeConfig, FakeOpenAI

SECRET = "sk-test-SECRET-4f1c9a77e2"


@pytest.fixture
def env_dir(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(DATA / "seeds" / "fin_intent.jsonl", data_dir / "seeds")
    monkeypatch.setenv("ANYTASKTUNE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return data_dir


def test_without_an_endpoint_synth_exits_at_once_with_a_clear_message(data_dir: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["ANYTASKTUNE_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "synth", "--per-task", "5"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no endpoint configured" in done.stderr and "OPENAI_BASE_URL" in done.stderr
    assert not (data_dir / "synth").exists(), "nothing is created"


def test_the_api_key_never_reaches_logs_cache_provenance_or_reports(env_dir: Path, monkeypatch):
    server = FakeOpenAI(FakeConfig(api_key=SECRET, faults={"500": 5, "refusal": 4, "429": 7})).serve_in_thread()
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    report = env_dir / "report.json"
    try:
        args = ["synth", "-t", "fin_intent", "-n", "6", "--model", "fake-model", "--base-url", server.base_url]
        result = CliRunner().invoke(app, [*args, "--records-per-request", "2", "--report", str(report)])
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert f"Bearer {SECRET}" in server.stats.auth_headers, "the key was really used"
    assert SECRET not in result.output
    files = [p for p in env_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in files) and report.exists()
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), f"the key leaked into {path}"


def test_a_wrong_key_stops_the_job_and_the_message_hides_the_key(env_dir: Path):
    server = FakeOpenAI(FakeConfig(api_key="the-right-key")).serve_in_thread()
    try:
        args = ["synth", "-t", "fin_intent", "-n", "2", "--base-url", server.base_url, "--api-key", SECRET]
        result = CliRunner().invoke(app, args)
    finally:
        server.stop()
    assert result.exit_code == 1
    assert "refused the credentials" in result.output and SECRET not in result.output


def test_the_json_report_counts_requests_tokens_and_rejects_by_reason(env_dir: Path):
    server = FakeOpenAI(FakeConfig(faults={"invalid_json": 3})).serve_in_thread()
    try:
        args = ["synth", "-t", "F2", "-l", "en", "-n", "6", "--base-url", server.base_url, "--json"]
        result = CliRunner().invoke(app, [*args, "--records-per-request", "2", "--model", "gpt-4o-mini"])
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["requests"] == server.stats.received
    [row] = report["per_task"]
    labels = row.pop("labels")  # fin_intent answers with one label: the report shows the labels steered to
    assert report["accepted"] == 6 and row == {
        "task": "fin_intent", "lang": "en", "target": 6, "existing": 0, "accepted": 6, "total": 6
    }  # fmt: skip
    assert sum(v["accepted"] for v in labels.values()) == 6 and len(labels) == 15
    assert report["rejected"]["invalid_json"] == server.stats.faults["invalid_json"]
    assert report["tokens"]["total"] > 0 and report["cost_usd"] > 0  # gpt-4o-mini is in the price table


def test_a_spent_budget_is_a_clean_stop(env_dir: Path):
    server = FakeOpenAI(FakeConfig()).serve_in_thread()
    try:
        args = ["synth", "-t", "fin_intent", "-n", "50", "--base-url", server.base_url, "--max-requests", "3"]
        result = CliRunner().invoke(app, [*args, "--json"])
    finally:
        server.stop()
    assert result.exit_code == 0
    assert json.loads(result.stdout)["stop_kind"] == "budget" and server.stats.received == 3
    assert "synth: stopped (budget): request budget (3) reached" in result.stderr


def test_unknown_tasks_and_languages_are_named(env_dir: Path):
    result = CliRunner().invoke(app, ["synth", "-t", "nope", "--base-url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 1 and "nope" in result.output
    result = CliRunner().invoke(app, ["synth", "-l", "fr", "--base-url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 1 and "fr" in result.output


def test_the_command_exits_3_for_a_dead_endpoint_and_says_why_on_stderr(env_dir: Path, dead_port: int):
    url = f"http://127.0.0.1:{dead_port}/v1"  # nothing listens there
    result = CliRunner().invoke(app, ["synth", "-t", "fin_intent", "-n", "3", "--base-url", url])
    assert result.exit_code == 3, result.output
    assert f"synth: stopped (unavailable): {url} could not be reached" in result.stderr
