"""The synthesizer and the endpoint evaluation against a real server: `transformers serve` with the tiny Qwen2 model.

The model's weights are random, so no answer is a record: what these tests prove is the protocol and the
accounting against a server we did not write. Token counts come from the server's own chat template and tokenizer,
and must match what the report says was used, stay under the bound the budget ledger reserves, and never pass a
token budget; every request is answered and every answer is accounted for in the quarantine.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer
from typer.testing import CliRunner

from cli.main import app
from synth.cache import ResponseCache
from synth.ledger import prompt_bound
from tests.conftest import with_seeds
from tests.real_server import TransformersServe
from tests.tiny_model import seed_release, tiny_model_dir

ANSWER_TOKENS = 24


@pytest.fixture(scope="module")
def server() -> Iterator[TransformersServe]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with TransformersServe(tiny_model_dir(), port) as running:
        yield running


def _synth(server: TransformersServe, data_dir: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    report = data_dir / "report.json"
    args = ["synth", "-t", "fin_intent", "-n", "2", "--model", str(server.model), "--base-url", server.base_url]
    args += ["--records-per-request", "2", "--max-output-tokens", str(ANSWER_TOKENS), "--concurrency", "4"]
    result = CliRunner().invoke(
        app, [*args, "--no-progress", "--report", str(report), *extra], env={"ANYTASKTUNE_DATA_DIR": str(data_dir)}
    )
    assert report.exists(), result.output
    return result.exit_code, json.loads(report.read_text(encoding="utf-8"))


def _answered(data_dir: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(request, response) of every answer the job quarantined, read back from the cache."""
    cache = ResponseCache.in_store(data_dir / "synth")
    pairs = []
    for path in sorted((data_dir / "synth" / "_quarantine").glob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            key = json.loads(line)["cache_key"]
            request, cached = cache.request_of(key), cache.get(key)
            assert request is not None and cached is not None, f"answer {key} is not in the cache"
            pairs.append((json.loads(request), json.loads(cached[0])))
    cache.close()
    return pairs


def _template_tokens(messages: list[dict[str, Any]]) -> int:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir())
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return len(ids["input_ids"] if isinstance(ids, Mapping) else ids)


def test_every_answer_of_a_real_server_is_accounted_for_and_its_tokens_match(server, data_dir: Path) -> None:
    store = with_seeds(data_dir, ["fin_intent"])
    code, report = _synth(server, store)
    # Six slots per (task, language) and no record in any answer: the job gives up with that reason.
    assert code == 1 and report["stop_kind"] == "rejects" and report["accepted"] == 0
    assert report["requests"] == report["responses"] == 12 and report["retries"] == 0
    assert set(report["rejected"]) <= {"truncated", "invalid_json"} and sum(report["rejected"].values()) == 12
    # An empty answer proves nothing about response_format: the job must not step down on it.
    assert not report["response_format_ignored"] and report["response_format_fallbacks"] == 0
    answered = _answered(store)
    assert len(answered) == 12 and {r["messages"][-1]["content"][:20] for r, _ in answered}
    for request, response in answered:
        assert "response_format" in request, "the server took the schema without complaint"
        usage = response["usage"]
        assert usage["completion_tokens"] <= ANSWER_TOKENS
        assert usage["prompt_tokens"] == _template_tokens(request["messages"]), "counted by the real template"
        assert usage["prompt_tokens"] <= prompt_bound(request), "the ledger's bound holds for real token counts"
    assert report["tokens"]["prompt"] == sum(r["usage"]["prompt_tokens"] for _, r in answered)
    assert report["tokens"]["completion"] == sum(r["usage"]["completion_tokens"] for _, r in answered)


def test_a_token_budget_holds_against_the_real_servers_counts(server, data_dir: Path) -> None:
    store = with_seeds(data_dir, ["fin_intent"])
    budget = 4_000  # a few requests under the ledger's byte bound (~2,500 each), fewer than the job's 12
    code, report = _synth(server, store, "--max-tokens", str(budget))
    assert code == 0 and report["stop_kind"] == "budget", report["stopped"]
    assert 0 < report["tokens"]["total"] <= budget
    assert report["requests"] == report["responses"] >= 1


def test_the_endpoint_evaluation_scores_every_record_a_real_server_answers(server, tmp_path: Path) -> None:
    args = ["eval", "--endpoint", server.base_url, "--model", str(server.model), "--name", "served"]
    args += ["--tasks", "fin_intent", "--release", str(seed_release()), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--max-new-tokens", "16", "--limit", "5"], env={"OPENAI_API_KEY": "x"})
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "served" / "scores.json").read_text(encoding="utf-8"))
    predictions = (tmp_path / "served" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert (
        scores["kind"] == "base" and scores["backend"] == "endpoint" and scores["records"] == len(predictions) == 10
    )  # 5 per language
    assert scores["tasks"]["fin_intent"]["score"] == 0.0, "a random model names no intent"
