"""The generation job end to end against the loopback OpenAI-compatible server: targets, cache, faults, judge."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import Catalog
from catalog.records import record_id
from catalog.settings import Settings
from synth.cache import ResponseCache
from synth.config import Budget, Endpoint, Limits
from synth.job import JobConfig, SynthJob
from synth.judge import JudgeConfig
from synth.prompts import TEMPLATE_HASH, Options
from synth.report import JobStats
from tests.conftest import stored, with_seeds
from tests.fake_openai import FakeConfig, FakeOpenAI
from validation.records import read_record_file, validate_files

TASKS = ["med_triage", "fin_intent", "law_sentence_prediction"]
FAST = Limits(concurrency=8, timeout=2.0, max_retries=6, breaker_cooldown=0.05)


@pytest.fixture
def store_dir(data_dir: Path) -> Path:
    return with_seeds(data_dir, TASKS)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(FakeConfig()).serve_in_thread()
    yield fake
    fake.stop()


def run_job(
    catalog: Catalog,
    data_dir: Path,
    server: FakeOpenAI,
    per_task: int = 6,
    tasks: list[str] = TASKS,
    limits: Limits = FAST,
    budget: Budget | None = None,
    **config: object,
) -> JobStats:
    options = config.pop("options", Options(records_per_request=3, exemplars=2))
    job_config = JobConfig(catalog.select(tasks), ["en", "zh"], per_task, options, **config)  # type: ignore[arg-type]
    endpoint = Endpoint(server.base_url, "sk-test-key", "fake-model")
    job = SynthJob(catalog, Settings(data_dir), endpoint, job_config, limits, budget)
    return asyncio.run(job.run())


def rejects(data_dir: Path) -> list[dict]:
    rows = []
    for path in sorted((data_dir / "synth" / "_quarantine").glob("*")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


def per_pair(rows: list[dict]) -> Counter[tuple[str, str]]:
    return Counter((r["task"], r["lang"]) for r in rows)


def test_job_fills_every_task_and_language_with_valid_records(catalog, store_dir, server):
    stats = run_job(catalog, store_dir, server, per_task=7)
    rows = stored(store_dir)
    assert per_pair(rows) == {(t, lang): 7 for t in TASKS for lang in ("en", "zh")}
    assert stats.stopped is None and sum(stats.accepted.values()) == 42
    assert len({r["id"] for r in rows}) == len(rows)
    report = validate_files([store_dir / "synth"], catalog, store_dir / "seeds")
    assert report.ok, report.render()
    assert all(r["id"] == record_id(r["task"], r["lang"], r["input"]) for r in rows)


def test_provenance_names_model_template_exemplars_request_and_usage(catalog, store_dir, server):
    run_job(catalog, store_dir, server, per_task=3)
    seeds = {}
    for task in TASKS:
        frame = read_record_file(store_dir / "seeds" / f"{task}.jsonl", catalog).frame
        seeds.update({row["id"]: row["role"] for row in frame.iter_rows(named=True)})
    for row in stored(store_dir):
        p = row["provenance"]
        assert row["source"] == "synth" and row["generator"] == "fake-model"
        assert p["model"] == "fake-model" and p["template_hash"] == TEMPLATE_HASH
        assert p["params"]["temperature"] == 1.0 and p["params"]["records_per_request"] == 3
        assert p["request_id"].startswith("req_") and len(p["cache_key"]) == 64
        assert p["usage"]["prompt_tokens"] > 0 and p["usage"]["completion_tokens"] > 0
        assert len(p["exemplars"]) == 2
        assert all(seeds[e] == "exemplar" for e in p["exemplars"]), "only exemplar seeds may be shown"


def test_each_record_carries_the_instruction_its_request_showed_the_model(catalog, store_dir, server):
    run_job(catalog, store_dir, server, per_task=9)
    cache = ResponseCache.in_store(store_dir / "synth")
    shown_to_model = {}
    for row in stored(store_dir):
        key = row["provenance"]["cache_key"]
        if key not in shown_to_model:
            shown_to_model[key] = json.loads(cache.request_of(key) or "{}")["messages"][1]["content"]
        assert row["instruction"] in shown_to_model[key], (row["id"], row["instruction"])
    instructions = {r["instruction"] for r in stored(store_dir) if r["task"] == "med_triage" and r["lang"] == "en"}
    assert len(instructions) > 1, "paraphrases still vary from request to request"
    cache.close()


def test_a_second_run_sends_no_request_and_writes_nothing(catalog, store_dir, server):
    run_job(catalog, store_dir, server, per_task=5)
    received = server.stats.received
    before = (store_dir / "synth" / "med_triage.jsonl").read_bytes()
    stats = run_job(catalog, store_dir, server, per_task=5)
    assert server.stats.received == received
    assert stats.requests == 0 and sum(stats.accepted.values()) == 0 and stats.stopped is None
    assert (store_dir / "synth" / "med_triage.jsonl").read_bytes() == before


def test_lost_records_are_rebuilt_from_the_cache_without_calling_the_model(catalog, store_dir, server):
    """Parsing is separate from generation: records re-made from cached answers, zero requests."""
    run_job(catalog, store_dir, server, per_task=6)
    received = server.stats.received
    original = sorted(r["id"] for r in stored(store_dir))
    for path in (store_dir / "synth").glob("*.jsonl"):
        path.unlink()
    stats = run_job(catalog, store_dir, server, per_task=6, cache_only=True)
    assert server.stats.received == received and stats.requests == 0
    assert sorted(r["id"] for r in stored(store_dir)) == original


def test_growing_the_target_only_asks_for_the_difference(catalog, store_dir, server):
    run_job(catalog, store_dir, server, per_task=3, tasks=["fin_intent"])
    first = server.stats.received
    run_job(catalog, store_dir, server, per_task=9, tasks=["fin_intent"])
    assert per_pair(stored(store_dir)) == {("fin_intent", "en"): 9, ("fin_intent", "zh"): 9}
    assert server.stats.received - first == 4  # two more requests of 3 records for each language


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("invalid_json", "invalid_json"),
        ("length", "truncated"),
        ("refusal", "refusal"),
        ("parrot", "near_duplicate"),
        ("pii", "pii"),
        ("wrong_language", "language"),
    ],
)
def test_bad_answers_are_quarantined_with_their_reason(catalog, store_dir, server, fault, reason):
    server.config.faults = {fault: 3}
    stats = run_job(catalog, store_dir, server, per_task=6)
    assert per_pair(stored(store_dir)) == {(t, lang): 6 for t in TASKS for lang in ("en", "zh")}
    quarantined = [r for r in rejects(store_dir) if r["reason"] == reason]
    assert quarantined and stats.rejected[reason] == len(quarantined)
    assert all(r["task"] in TASKS and r["cache_key"] for r in quarantined)
    assert validate_files([store_dir / "synth"], catalog, store_dir / "seeds").ok


def test_a_truncated_answer_keeps_its_complete_records(catalog, store_dir, server):
    server.config.faults = {"length": 1}
    run_job(catalog, store_dir, server, per_task=4, tasks=["fin_intent"])
    truncated = [r for r in rejects(store_dir) if r["reason"] == "truncated"]
    assert truncated and "complete item" in truncated[0]["detail"]
    salvaged = [r for r in stored(store_dir) if r["provenance"]["cache_key"] == truncated[0]["cache_key"]]
    assert salvaged, "the records before the cut are kept"


@pytest.mark.parametrize("fault", ["429", "500", "slow"])
def test_transient_failures_are_retried_and_nothing_is_lost(catalog, store_dir, server, fault):
    server.config.faults = {fault: 4}
    server.config.slow_seconds = 3.0
    limits = Limits(concurrency=8, timeout=0.5, max_retries=8, breaker_cooldown=0.05)
    stats = run_job(catalog, store_dir, server, per_task=6, limits=limits)
    assert per_pair(stored(store_dir)) == {(t, lang): 6 for t in TASKS for lang in ("en", "zh")}
    assert server.stats.faults[fault] > 0 and stats.retries >= server.stats.faults[fault]
    assert stats.rejected == {} and stats.failed_requests == 0
    if fault == "429":
        assert stats.rate_limited == server.stats.faults["429"]


def test_a_server_without_response_format_gets_the_schema_in_the_prompt(catalog, store_dir, server):
    server.config.reject_response_format = True
    stats = run_job(catalog, store_dir, server, per_task=4)
    rows = stored(store_dir)
    assert per_pair(rows) == {(t, lang): 4 for t in TASKS for lang in ("en", "zh")}
    assert {r["provenance"]["mode"] for r in rows} == {"json_prompt"}
    assert stats.mode_fallbacks == 1
    # Remembered per endpoint and model: a later run asks the right way from its first request.
    # Target 7: the cached answers hold 2 unused records per pair, so one new request per pair, none refused.
    received = server.stats.received
    run_job(catalog, store_dir, server, per_task=7)
    assert server.stats.received - received == 6


def test_the_judge_keeps_good_records_and_quarantines_the_rest(catalog, store_dir, server):
    server.config.judge_score = 5
    run_job(catalog, store_dir, server, per_task=3, tasks=["med_triage"], judge=JudgeConfig("fake-model", 4))
    rows = stored(store_dir)
    assert len(rows) == 6 and all(r["provenance"]["judge"]["score"] == 5 for r in rows)

    server.config.judge_score = 2
    stats = run_job(catalog, store_dir, server, per_task=4, tasks=["fin_intent"], judge=JudgeConfig("fake-model", 4))
    assert not [r for r in stored(store_dir) if r["task"] == "fin_intent"]
    low = [r for r in rejects(store_dir) if r["reason"] == "judge_low_score"]
    assert low and all("score 2 < 4" in r["detail"] for r in low)
    assert stats.stopped is not None and stats.stop_kind == "rejects"


def test_two_stage_mode_asks_for_inputs_then_outputs(catalog, store_dir, server):
    options = Options(records_per_request=3, exemplars=2, two_stage=True)
    run_job(catalog, store_dir, server, per_task=3, tasks=["con_complaint_routing"], options=options)
    rows = stored(store_dir)
    assert len(rows) == 6 and server.stats.received == 4
    assert all(r["provenance"]["two_stage"] and r["provenance"]["inputs_request_id"] for r in rows)
    assert validate_files([store_dir / "synth"], catalog, store_dir / "seeds").ok


def test_the_job_stops_cleanly_at_the_request_budget(catalog, store_dir, server):
    stats = run_job(catalog, store_dir, server, per_task=30, budget=Budget(max_requests=5))
    assert server.stats.received == 5 and stats.requests == 5
    assert stats.stop_kind == "budget" and "request budget" in (stats.stopped or "")
    assert len(stored(store_dir)) == 15  # every answer paid for is kept


def test_an_endpoint_that_keeps_failing_opens_the_circuit_and_ends_the_job(catalog, store_dir, server):
    server.config.faults = {"500": 1}
    limits = Limits(
        concurrency=4, timeout=1.0, max_retries=50, breaker_failures=3, breaker_cooldown=0.05, breaker_trips=2
    )
    stats = run_job(catalog, store_dir, server, per_task=3, limits=limits)
    assert stats.stop_kind == "endpoint" and "did not recover" in (stats.stopped or "")
    assert stored(store_dir) == []
    assert server.stats.received < 4 * 50, "the breaker stops the retries long before they run out"


def test_a_record_that_fails_the_contract_is_sent_back_once_and_its_fix_kept(catalog, store_dir, server):
    server.config.faults = {"fixable": 2}  # every other answer has one record with an empty output
    limits = Limits(concurrency=1, timeout=2.0)
    stats = run_job(catalog, store_dir, server, per_task=9, limits=limits)
    assert stats.stopped is None and stats.repair_requests > 0 and stats.repaired > 0
    cache = ResponseCache.in_store(store_dir / "synth")
    fixed = [row for row in stored(store_dir) if "repair_of" in row["provenance"]]
    assert len(fixed) == stats.repaired
    for row in fixed:
        origin = row["provenance"]["repair_of"]
        assert origin["errors"] and origin["cache_key"] != row["provenance"]["cache_key"]
        asked = json.loads(cache.request_of(row["provenance"]["cache_key"]) or "{}")["messages"][1]["content"]
        assert origin["errors"] in asked, "the repair turn shows the model the errors it is to fix"
        assert cache.request_of(origin["cache_key"]) is not None, "the faulty answer stays in the cache"
    cache.close()
    assert validate_files([store_dir / "synth"], catalog, store_dir / "seeds").ok
    assert not [r for r in rejects(store_dir) if r["reason"] == "invalid"], "each faulty record was fixed"
    assert stats.repair_requests == server.stats.faults["fixable_slips"], "one repair turn per faulty answer"


def test_a_record_the_repair_turn_does_not_fix_is_quarantined_with_both_errors(catalog, store_dir, server):
    server.config.faults, server.config.fixes_when_told = {"fixable": 1}, False
    stats = run_job(catalog, store_dir, server, per_task=6, limits=Limits(concurrency=2, timeout=2.0))
    assert stats.repair_requests > 0 and stats.repaired == 0
    unfixed = [r for r in rejects(store_dir) if r["reason"] == "invalid"]
    assert len(unfixed) == stats.repair_requests, "each unfixed original is quarantined once"
    assert all(" (repair turn: invalid: output: " in r["detail"] for r in unfixed), unfixed[0]["detail"]
    assert server.stats.faults["fixable_slips"] == 2 * stats.repair_requests, "a repair is never repaired again"


def test_without_the_repair_turn_a_faulty_record_is_quarantined_at_once(catalog, store_dir, server):
    server.config.faults = {"fixable": 2}
    stats = run_job(catalog, store_dir, server, per_task=9, limits=Limits(concurrency=1, timeout=2.0), repair=False)
    assert stats.repair_requests == 0 and stats.rejected["invalid"] > 0
    assert not any("repair_of" in row["provenance"] for row in stored(store_dir))


def test_a_label_task_is_steered_to_its_distribution_and_the_report_shows_it(catalog, store_dir, server, edit_task):
    from catalog import load_catalog

    edit_task("fin_intent", lambda s: s.update(label_distribution={"Fraud report": 3, "Fee dispute": 1}))
    steered = load_catalog(store_dir / "tasks")
    stats = run_job(steered, store_dir, server, per_task=120, tasks=["fin_intent"])
    rows = {row["lang"]: row for row in stats.to_dict()["per_task"]}
    for lang in ("en", "zh"):
        labels = rows[lang]["labels"]
        assert labels["Fraud report"]["target"] == 0.75 and labels["Card loss report"]["target"] == 0
        assert sum(v["accepted"] for v in labels.values()) == rows[lang]["accepted"] == 120
        assert abs(labels["Fraud report"]["accepted"] / 120 - 0.75) < 0.12, labels
        assert labels["Fraud report"]["accepted"] + labels["Fee dispute"]["accepted"] == 120
