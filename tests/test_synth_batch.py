"""Batch mode against the loopback Batch API: the same checks and provenance, resume without resubmitting,
failed and expired batches, budgets, the offline requests file for vLLM's batch runner, and no Batch API at all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog import Catalog
from catalog.settings import Settings
from synth.batch import BatchFolder, BatchJob, BatchOptions
from synth.config import Budget, Endpoint, Limits
from synth.job import JobConfig
from synth.prices import Price
from synth.prompts import Options
from synth.report import JobStats
from tests.conftest import REPO, stored, with_seeds
from tests.fake_batch import BatchConfig, FakeBatchServer
from tests.fake_openai import FakeOpenAI
from validation.records import validate_files

TASKS = ["fin_intent", "med_triage"]
QUICK = BatchOptions(poll_seconds=0.02)
NO_BUDGET, FREE = Budget(), Price(0.0, 0.0)


@pytest.fixture
def store_dir(data_dir: Path) -> Path:
    return with_seeds(data_dir, TASKS)


def batch_job(
    catalog: Catalog,
    data_dir: Path,
    base_url: str,
    per_task: int = 8,
    budget: Budget = NO_BUDGET,
    price: Price = FREE,
    options: BatchOptions = QUICK,
) -> BatchJob:
    config = JobConfig(catalog.select(TASKS), ["en", "zh"], per_task, Options(3, 2, max_tokens=400))
    endpoint = Endpoint(base_url, "sk-test", "fake-model")
    return BatchJob(catalog, Settings(data_dir), endpoint, config, Limits(), budget, price, options, on_status=print)


def met(stats: JobStats) -> bool:
    return all(row["total"] >= row["target"] for row in stats.to_dict()["per_task"])


def test_a_batch_job_meets_every_target_with_the_live_jobs_checks_and_provenance(catalog, store_dir):
    server = FakeBatchServer().serve_in_thread()
    try:
        stats = asyncio.run(batch_job(catalog, store_dir, server.base_url).run())
        again = asyncio.run(batch_job(catalog, store_dir, server.base_url).run())
    finally:
        server.stop()
    assert stats.stopped is None and met(stats), stats.stopped
    assert server.stats.received == 0, "nothing went through the live chat endpoint"
    assert server.batch_stats.batches_created >= 1 and stats.batch["rounds"] == server.batch_stats.batches_created
    assert max(server.batch_stats.answered.values()) == 1, "no request was answered twice"
    rows = stored(store_dir)
    assert len(rows) == 8 * len(TASKS) * 2
    assert all(r["provenance"]["request_id"].startswith("req_") for r in rows)
    assert validate_files([store_dir / "synth"], catalog, store_dir / "seeds").ok
    assert stats.requests == sum(server.batch_stats.answered.values()) and stats.tokens > 0
    assert again.requests == 0 and server.batch_stats.batches_created == stats.batch["rounds"], "nothing resubmitted"


def test_an_expired_and_a_failed_batch_are_reported_and_their_requests_asked_again(catalog, store_dir):
    batches = BatchConfig(outcomes=["expired", "failed"], error_every=7)
    server = FakeBatchServer(batch=batches).serve_in_thread()
    try:
        stats = asyncio.run(batch_job(catalog, store_dir, server.base_url).run())
    finally:
        server.stop()
    assert stats.stopped is None and met(stats), stats.stopped
    statuses = [b["status"] for b in stats.batch["batches"]]
    assert statuses[:2] == ["expired", "failed"] and statuses[-1] == "completed"
    assert stats.batch["batches"][1]["errors"] == ["batch failed"]
    assert max(server.batch_stats.answered.values()) == 1, "what a batch answered is never asked again"


def test_a_job_killed_while_waiting_resumes_the_same_batch(catalog, store_dir, tmp_path):
    server = FakeBatchServer(batch=BatchConfig(batch_seconds=4.0)).serve_in_thread()
    env = {**os.environ, "ANYTASKTUNE_DATA_DIR": str(store_dir), "OPENAI_API_KEY": "sk-test"}
    command = [sys.executable, "-m", "cli", "synth", "-t", ",".join(TASKS), "-n", "6", "--records-per-request", "3",
               "--model", "fake-model", "--base-url", server.base_url, "--batch", "--batch-poll", "0.05", "--json"]  # fmt: skip
    folder = BatchFolder(store_dir / "synth")
    try:
        first = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (folder.state() or {}).get("batch_id") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (folder.state() or {}).get("batch_id"), "the batch was never submitted"
        first.send_signal(signal.SIGKILL)
        first.wait()
        resumed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    assert resumed.returncode == 0, resumed.stderr
    assert "batch: resuming batch_0001" in resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["complete"] and server.batch_stats.uploads == server.batch_stats.batches_created
    assert max(server.batch_stats.answered.values()) == 1
    assert len(stored(store_dir)) == 6 * len(TASKS) * 2


def test_a_crash_between_creating_a_batch_and_writing_it_down_finds_that_batch_again(catalog, store_dir, monkeypatch):
    server = FakeBatchServer().serve_in_thread()
    saves = []
    real_save = BatchFolder.save

    def crash_once_created(self: BatchFolder, state: dict) -> None:
        if state.get("batch_id") and not saves:
            saves.append(state["batch_id"])
            raise KeyboardInterrupt("killed right after the batch was created")
        real_save(self, state)

    try:
        monkeypatch.setattr(BatchFolder, "save", crash_once_created)
        with pytest.raises(KeyboardInterrupt):
            asyncio.run(batch_job(catalog, store_dir, server.base_url).run())
        monkeypatch.setattr(BatchFolder, "save", real_save)
        stats = asyncio.run(batch_job(catalog, store_dir, server.base_url).run())
    finally:
        server.stop()
    assert met(stats) and stats.batch["batches"][0]["id"] == saves[0], "the batch created before the crash"
    assert max(server.batch_stats.answered.values()) == 1


def test_a_budget_is_never_overrun_in_batch_mode(catalog, store_dir):
    server = FakeBatchServer().serve_in_thread()
    try:
        price = Price(0.5, 2.0)
        many_rounds = BatchOptions(poll_seconds=0.02, max_rounds=50)
        job = batch_job(catalog, store_dir, server.base_url, 200, Budget(max_tokens=20_000), price, many_rounds)
        stats = asyncio.run(job.run())
    finally:
        server.stop()
    assert stats.stop_kind == "budget" and stats.tokens <= 20_000 and stats.requests > 0
    assert stats.batch["not_submitted_for_budget"] > 0


def test_the_requests_file_runs_offline_and_its_results_are_read_back(catalog, store_dir, tmp_path):
    requests = tmp_path / "requests.jsonl"
    stats = asyncio.run(batch_job(catalog, store_dir, "http://offline.invalid/v1").export(requests))
    lines = [json.loads(line) for line in requests.read_text().splitlines()]
    assert lines and stats.requests == 0 and stored(store_dir) == []
    assert all(
        set(row) == {"custom_id", "method", "url", "body"} and row["url"] == "/v1/chat/completions" for row in lines
    )
    # What vLLM's run_batch would write: one OpenAI-format result line per request (answered by the fake's model).
    model = FakeOpenAI()
    results = tmp_path / "results.jsonl"
    with results.open("w") as out:
        for number, row in enumerate(lines):
            body = json.dumps(row["body"]).encode()
            answer = model._completion(row["body"], body, f"req_offline{number}", None)
            response = {"status_code": 200, "request_id": f"req_offline{number}", "body": answer}
            out.write(json.dumps({"id": f"vllm-{number}", "custom_id": row["custom_id"], "response": response}) + "\n")
        out.write(json.dumps({"id": "x", "custom_id": "not-ours", "response": {"status_code": 200, "body": {}}}) + "\n")
    imported = asyncio.run(batch_job(catalog, store_dir, "http://offline.invalid/v1").import_results(results))
    assert imported.batch["batches"][0]["answered"] == len(lines)
    assert imported.batch["batches"][0]["failed"] == 1, "a result for a request nobody asked is not cached"
    assert len(stored(store_dir)) > 0
    assert validate_files([store_dir / "synth"], catalog, store_dir / "seeds").ok


def test_an_edited_requests_file_is_refused_naming_the_line(catalog, store_dir, tmp_path):
    requests = tmp_path / "requests.jsonl"
    asyncio.run(batch_job(catalog, store_dir, "http://offline.invalid/v1").export(requests))
    kept = next((store_dir / "synth" / "_batches").glob("requests-*.ndjson"))
    lines = kept.read_text().splitlines()
    row = json.loads(lines[1])
    row["body"]["temperature"] = 0.1
    kept.write_text("\n".join([lines[0], json.dumps(row), *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match=r"requests-.*\.ndjson:2: custom_id does not match the request body"):
        asyncio.run(batch_job(catalog, store_dir, "http://offline.invalid/v1").import_results(requests))


def test_an_endpoint_without_a_batch_api_ends_the_job_naming_the_route(catalog, store_dir):
    server = FakeOpenAI().serve_in_thread()
    try:
        stats = asyncio.run(batch_job(catalog, store_dir, server.base_url).run())
    finally:
        server.stop()
    assert stats.stop_kind == "endpoint" and "the Batch API refused POST /v1/files (404)" in (stats.stopped or "")
