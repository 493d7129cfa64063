"""Evaluation against an OpenAI-compatible endpoint: a real HTTP server on loopback stands in for the hosted model."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from catalog import Catalog
from cli.main import app
from tests.tiny_model import ENDOFTEXT, IM_END, build_qwen2_tokenizer, seed_release
from tests.training_endpoint import ChatServer
from training.data import load_split
from training.formatting import user_message

TASKS = ["med_triage", "fin_intent"]


@pytest.fixture(scope="module")
def test_records(catalog: Catalog) -> pl.DataFrame:
    return load_split(seed_release(), catalog.select(TASKS), "test")


def _prompt(row: dict) -> str:
    return user_message(row["instruction"], row["input"])[0]["content"]


def _eval(server: ChatServer, out: Path) -> object:
    args = ["eval", "--endpoint", server.base_url, "--model", "served-model", "--name", "hosted"]
    args += ["--tasks", ",".join(TASKS), "--release", str(seed_release()), "--out", str(out), "--batch-size", "4"]
    return CliRunner().invoke(app, args, env={"OPENAI_API_KEY": "sk-test"})


def test_an_endpoint_that_answers_the_references_scores_full_marks(test_records: pl.DataFrame, tmp_path: Path) -> None:
    rows = list(test_records.iter_rows(named=True))
    # med_triage answers come back fenced and chatty: the lenient reading still scores them.
    answers = {
        _prompt(r): (f"Here:\n```json\n{r['output']}\n```" if r["task"] == "med_triage" else r["output"]) for r in rows
    }
    with ChatServer(answers) as server:
        result = _eval(server, tmp_path)
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "hosted" / "scores.json").read_text(encoding="utf-8"))
    assert scores["kind"] == "base" and scores["backend"] == "endpoint" and scores["records"] == len(rows)
    for task in TASKS:
        assert scores["tasks"][task]["score"] == 1.0 and scores["tasks"][task]["en"] == 1.0
    request = server.requests[0]
    assert request["model"] == "served-model" and request["temperature"] == 0
    assert request["messages"][0]["role"] == "user"


def test_wrong_answers_score_zero_and_a_failure_resumes_without_redoing_work(
    test_records: pl.DataFrame, tmp_path: Path
) -> None:
    rows = list(test_records.iter_rows(named=True))
    answers = {_prompt(r): r["output"] for r in rows if r["task"] == "fin_intent"}  # med_triage gets prose: 0
    with ChatServer(answers) as server:
        server.failing = {_prompt(rows[-1])}
        failed = _eval(server, tmp_path)
        assert failed.exit_code == 1 and "rerun to resume" in failed.output
        kept = (tmp_path / "hosted" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
        assert 0 < len(kept) < len(rows)
        server.failing, asked_before = set(), len(server.requests)
        resumed = _eval(server, tmp_path)
    assert resumed.exit_code == 0, resumed.output
    assert len(server.requests) - asked_before == len(rows) - len(kept)  # only the missing records were asked
    scores = json.loads((tmp_path / "hosted" / "scores.json").read_text(encoding="utf-8"))
    assert scores["tasks"]["med_triage"]["score"] == 0.0 and scores["tasks"]["fin_intent"]["score"] == 1.0


def test_the_endpoint_is_sent_the_end_of_turn_and_eos_of_a_local_tokenizer(tmp_path: Path) -> None:
    base = build_qwen2_tokenizer()
    base.eos_token = ENDOFTEXT  # a base model's EOS, as Qwen/Qwen2-7B has: not the chat template's end of turn
    model_dir = tmp_path / "qwen2-base"
    base.save_pretrained(model_dir)

    def asked(*extra: str) -> list[dict]:
        with ChatServer({}) as server:
            args = ["eval", "--endpoint", server.base_url, "--tasks", "fin_intent", "--limit", "1", "--langs", "en"]
            args += ["--release", str(seed_release()), "--out", str(tmp_path / "runs"), *extra]
            result = CliRunner().invoke(app, args, env={"OPENAI_API_KEY": "sk-test"})
        assert result.exit_code == 0, result.output
        return server.requests

    requests = asked("--model", str(model_dir), "--name", "local-tokenizer")
    assert requests and all(r["stop"] == sorted([ENDOFTEXT, IM_END]) for r in requests)
    requests = asked("--model", "served-model", "--name", "served", "--stop", "</answer>")
    assert all(r["stop"] == ["</answer>"] for r in requests)
    requests = asked("--model", "served-model", "--name", "plain")
    assert all("stop" not in r for r in requests)  # nothing to read the stop tokens from: the server's own
