"""Never over budget, never stuck: budgets under concurrency, 429s, a quota error, a dead endpoint, a bare 400.

Against the loopback OpenAI-compatible server (real HTTP), and for the dead endpoint a port nobody listens on.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from catalog import Catalog
from catalog.settings import Settings
from synth.config import Budget, Endpoint, Limits
from synth.job import JobConfig, SynthJob
from synth.ledger import BUDGETED_MAX_TOKENS, prompt_bound
from synth.prices import Price
from synth.prompts import Options
from synth.report import JobStats
from tests.conftest import stored, with_seeds
from tests.fake_openai import FakeConfig, FakeOpenAI

TASKS = ["fin_intent", "med_triage"]


@pytest.fixture
def store_dir(data_dir: Path) -> Path:
    return with_seeds(data_dir, TASKS)


def run(
    catalog: Catalog,
    data_dir: Path,
    base_url: str,
    *,
    per_task: int = 40,
    limits: Limits | None = None,
    budget: Budget | None = None,
    price: Price | None = None,
    options: Options | None = None,
) -> JobStats:
    config = JobConfig(catalog.select(TASKS), ["en", "zh"], per_task, options or Options(3, 2))
    endpoint = Endpoint(base_url, "sk-test", "fake-model")
    limits = limits or Limits(concurrency=16, timeout=5.0, breaker_cooldown=0.05)
    return asyncio.run(SynthJob(catalog, Settings(data_dir), endpoint, config, limits, budget, price).run())


@pytest.mark.parametrize("seed", range(4))
def test_token_and_cost_budgets_are_never_overrun_under_concurrency(catalog, store_dir, seed):
    rng = random.Random(seed)
    max_tokens = rng.randint(4_000, 30_000)
    max_cost = rng.uniform(0.002, 0.02)
    answer_tokens = rng.choice([None, 300, 900])
    price = Price(input_per_million=0.5, output_per_million=2.0)
    server = FakeOpenAI(FakeConfig(latency=rng.uniform(0.0, 0.05))).serve_in_thread()
    try:
        limits = Limits(concurrency=rng.choice([8, 32]), timeout=5.0)
        options = Options(3, 2, max_tokens=answer_tokens)
        stats = run(catalog, store_dir, server.base_url, per_task=500, limits=limits, options=options,
                    budget=Budget(max_tokens=max_tokens, max_cost=max_cost), price=price)  # fmt: skip
    finally:
        server.stop()
    assert stats.stop_kind == "budget", stats.stopped
    assert stats.tokens <= max_tokens and stats.cost <= max_cost + 1e-12
    assert stats.reserved_tokens == 0 and stats.reserved_cost == 0
    # It stopped at the end of the budget, not early: what is left is less than one request's worst case (no
    # prompt of these tasks comes near 16,000 bytes).
    answer = answer_tokens or BUDGETED_MAX_TOKENS
    largest = prompt_bound({"messages": [{"role": "user", "content": "x" * 16_000}]})
    tokens_left, cost_left = max_tokens - stats.tokens, max_cost - stats.cost
    assert tokens_left < largest + answer or cost_left < price.cost(largest, answer), (tokens_left, cost_left)
    assert stats.responses == server.stats.served, "every answer the server gave was counted"


def test_a_request_budget_counts_the_requests_in_flight(catalog, store_dir):
    server = FakeOpenAI(FakeConfig(latency=0.05)).serve_in_thread()
    try:
        stats = run(catalog, store_dir, server.base_url, per_task=500, budget=Budget(max_requests=37))
    finally:
        server.stop()
    assert stats.stop_kind == "budget" and server.stats.received == 37 and stats.requests == 37


def test_random_429s_slow_the_job_without_stopping_it(catalog, store_dir):
    server = FakeOpenAI(FakeConfig(faults={"429": 20}, retry_after=0.05, latency=0.01)).serve_in_thread()
    try:
        stats = run(catalog, store_dir, server.base_url, per_task=30)
    finally:
        server.stop()
    assert stats.stopped is None and stats.rate_limited > 0
    assert all(row["total"] >= row["target"] for row in stats.to_dict()["per_task"])
    assert stats.failed_requests == 0, "a 429 is waited out, not counted against the request's retries"


def test_an_endpoint_that_only_answers_429_ends_the_job_with_that_cause(catalog, store_dir):
    server = FakeOpenAI(FakeConfig(faults={"429": 1}, retry_after=0.1)).serve_in_thread()
    try:
        limits = Limits(concurrency=8, timeout=5.0, rate_limited_for=1.5)
        stats = run(catalog, store_dir, server.base_url, limits=limits)
    finally:
        server.stop()
    assert stats.stop_kind == "unavailable"
    assert "answered nothing but 429 for 1.5s" in (stats.stopped or "") and "Rate limit reached" in stats.stopped
    assert stats.accepted.total() == 0


def test_a_quota_error_stops_the_job_at_once(catalog, store_dir):
    server = FakeOpenAI(FakeConfig(faults={"quota": 1})).serve_in_thread()
    try:
        stats = run(catalog, store_dir, server.base_url, limits=Limits(concurrency=4, timeout=5.0))
    finally:
        server.stop()
    assert stats.stop_kind == "endpoint" and "quota or billing (429 insufficient_quota)" in (stats.stopped or "")
    assert server.stats.received <= 4 * 2, "no request is retried after a quota error"


def test_a_dead_endpoint_ends_the_job_naming_the_url_and_the_error(catalog, store_dir, dead_port):
    url = f"http://127.0.0.1:{dead_port}/v1"  # nothing listens there
    stats = run(catalog, store_dir, url, limits=Limits(concurrency=4, timeout=5.0, unreachable_for=1.0))
    assert stats.stop_kind == "unavailable"
    assert url in (stats.stopped or "") and "could not be reached for 1s" in stats.stopped
    assert "cannot connect" in stats.stopped and stats.responses == 0


def test_a_bare_bad_request_naming_response_format_falls_back_to_the_prompt(catalog, store_dir):
    config = FakeConfig(reject_response_format=True, reject_message="Bad Request", reject_param="response_format")
    server = FakeOpenAI(config).serve_in_thread()
    try:
        stats = run(catalog, store_dir, server.base_url, per_task=6)
    finally:
        server.stop()
    assert stats.stopped is None and stats.mode_fallbacks >= 1
    assert all(row["total"] >= row["target"] for row in stats.to_dict()["per_task"])


def test_a_bare_bad_request_about_something_else_is_not_taken_for_response_format(catalog, store_dir):
    config = FakeConfig(reject_response_format=True, reject_message="Bad Request", reject_param="temperature")
    server = FakeOpenAI(config).serve_in_thread()
    try:
        stats = run(catalog, store_dir, server.base_url, per_task=3, limits=Limits(concurrency=2, max_retries=0))
    finally:
        server.stop()
    assert stats.mode_fallbacks == 0 and stats.accepted.total() == 0


def test_the_schema_goes_strict_and_steps_down_once_where_strict_is_rejected(catalog, store_dir):
    server = FakeOpenAI(FakeConfig(reject_strict=True)).serve_in_thread()
    try:
        stats = run(catalog, store_dir, server.base_url, per_task=6, limits=Limits(concurrency=8, timeout=5.0))
        again = run(catalog, store_dir, server.base_url, per_task=12, limits=Limits(concurrency=8, timeout=5.0))
    finally:
        server.stop()
    assert stats.stopped is None and stats.strict_fallbacks == 1 and stats.mode_fallbacks == 0
    assert server.stats.faults["strict_rejected"] <= 8, "only the requests in flight when it was learned"
    assert again.strict_fallbacks == 0, "the next job remembers the endpoint takes no strict schema"
    modes = {row["provenance"]["mode"] for row in stored(store_dir)}
    assert modes == {"json_schema"}


def test_a_server_that_silently_ignores_response_format_gets_the_schema_in_the_prompt(catalog, store_dir):
    server = FakeOpenAI(FakeConfig(ignore_response_format=True)).serve_in_thread()
    try:
        stats = run(catalog, store_dir, server.base_url, per_task=6, limits=Limits(concurrency=4, timeout=5.0))
        again = run(catalog, store_dir, server.base_url, per_task=12, limits=Limits(concurrency=4, timeout=5.0))
    finally:
        server.stop()
    assert stats.stopped is None and stats.response_format_ignored
    assert stats.rejected["invalid_json"] <= 3 + 4, "the answers that showed it, and those already in flight"
    assert "ignores response_format" in stats.render()
    assert again.stopped is None and again.rejected["invalid_json"] == 0, "the next job starts in prompt mode"
    assert {row["provenance"]["mode"] for row in stored(store_dir)} == {"json_prompt"}


def test_a_server_that_takes_strict_gets_it(catalog, store_dir):
    server = FakeOpenAI(FakeConfig()).serve_in_thread()
    try:
        stats = run(catalog, store_dir, server.base_url, per_task=3)
    finally:
        server.stop()
    assert stats.strict_fallbacks == 0
    assert {row["provenance"]["mode"] for row in stored(store_dir)} == {"json_schema_strict"}
