"""The synthesizer's parts on their own: tolerant parsing, Retry-After, backoff, breaker, buckets, prices, keys."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import numpy as np
import pytest

from synth.cache import ResponseCache, request_key
from synth.check_queue import CheckQueue
from synth.config import EndpointMissing, resolve_endpoint
from synth.http import endpoint_url, env_proxy, status_error
from synth.judge import JudgeConfig, judge_request, read_verdicts, rubric
from synth.novelty import NoveltyIndex, SignatureBatcher
from synth.parsing import Message, read_items
from synth.prices import price_of
from synth.prompts import Options, plan_slot, records_request
from synth.ratelimit import AdaptiveConcurrency, TokenBucket
from synth.retry import RETRY_AFTER_CAP, CircuitBreaker, CircuitOpen, backoff_delay, retry_after_seconds


def message(content: str | None, finish: str = "stop", refusal: str | None = None) -> Message:
    return Message(content, finish, refusal, "m", "id", 0, 1, 1)


RECORDS = [{"input": "a", "output": "x"}, {"input": "b", "output": "y"}]


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"records": RECORDS}),
        "Sure! Here you are:\n```json\n" + json.dumps({"records": RECORDS}) + "\n```\nAnything else?",
        'Here: {"records": [{"input": "a", "output": "x"}, {"input": "b", "output": "y"},]}',
        json.dumps(RECORDS),
        json.dumps({"data": RECORDS}),
    ],
    ids=["plain", "fenced-with-prose", "trailing-comma", "bare-list", "other-key"],
)
def test_answers_in_every_shape_a_server_sends_are_read(content):
    answer = read_items(message(content), "records")
    assert answer.problem is None and answer.items == RECORDS


def test_a_cut_off_answer_keeps_its_complete_items_and_says_so():
    content = json.dumps({"records": [*RECORDS, {"input": "c", "output": "z"}]})
    answer = read_items(message(content[: content.rindex('"c"') + 5], finish="length"), "records")
    assert answer.items == RECORDS and answer.problem == "truncated"


def test_refusals_garbage_and_wrong_shapes_are_named():
    assert read_items(message(None, refusal="I can't"), "records").problem == "refusal"
    assert read_items(message(None, finish="content_filter"), "records").problem == "refusal"
    garbage = read_items(message("Sure! {records: [oops"), "records")
    assert garbage.problem == "invalid_json" and garbage.items == []
    assert read_items(message('{"a": 1, "b": 2}'), "records").problem == "wrong_shape"


def test_retry_after_is_read_in_milliseconds_seconds_and_dates():
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after_seconds({"retry-after": when}) <= 30
    assert retry_after_seconds({"retry-after": "100000"}) == RETRY_AFTER_CAP  # capped
    assert retry_after_seconds({}) is None and retry_after_seconds({"retry-after": "soon"}) is None


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap():
    rng = random.Random(1)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (20, 30.0)]:
        delays = [backoff_delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= ceiling and max(delays) > ceiling / 2


def test_the_breaker_opens_probes_once_and_gives_up_after_its_trips():
    async def scenario() -> None:
        breaker = CircuitBreaker(failures=2, cooldown=0.01, trips=2)
        started = await breaker.before_attempt()
        breaker.failure(started)
        assert breaker.opened_at is None
        breaker.failure(started)
        assert breaker.openings == 1
        late = [asyncio.create_task(breaker.before_attempt()) for _ in range(3)]
        await asyncio.sleep(0.2)
        assert sum(t.done() for t in late) == 1, "one probe at a time"
        probe = next(t for t in late if t.done()).result()
        breaker.failure(probe)  # the probe fails: open again, second trip
        with pytest.raises(CircuitOpen):
            await asyncio.gather(*late)

    asyncio.run(scenario())


def test_a_success_closes_the_breaker():
    async def scenario() -> None:
        breaker = CircuitBreaker(failures=1, cooldown=0.0, trips=2)
        breaker.failure(await breaker.before_attempt())
        breaker.success()
        assert breaker.opened_at is None and breaker.openings == 0
        await breaker.before_attempt()

    asyncio.run(scenario())


def test_buckets_hold_a_few_seconds_of_rate_and_charge_corrections():
    bucket = TokenBucket(per_minute=600)  # 10 a second, 50 held
    assert bucket.capacity == 50 and bucket.wait_for(50) == 0
    bucket.take(50)
    assert bucket.wait_for(10) == pytest.approx(1.0, abs=0.05)
    assert bucket.wait_for(10_000) == pytest.approx(5.0, abs=0.05), "an oversized request waits for a full bucket"
    bucket.take(-50)  # usage came in under the estimate
    assert bucket.wait_for(40) == 0


def test_a_burst_of_429s_halves_concurrency_once_and_pauses_nobody():
    async def scenario() -> None:
        gate = AdaptiveConcurrency(8)
        epochs = [await gate.acquire() for _ in range(8)]
        for epoch in epochs[:6]:  # one burst: six requests sent together all come back 429
            await gate.release(epoch, rate_limited=True)
        assert gate.limit == 4 and gate.slowdowns == 1, "one burst, one decrease"
        assert gate.in_flight == 2
        sent = await asyncio.wait_for(gate.acquire(), 1)  # below the new limit: sent at once, no global pause
        await gate.release(sent, rate_limited=True)  # sent after the decrease: this one counts
        assert gate.limit == 2 and gate.slowdowns == 2
        waiting = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0.02)
        assert not waiting.done(), "at the limit, a sender waits for a place"
        await gate.release(epochs[6])
        await asyncio.wait_for(waiting, 1)
        await gate.release(waiting.result())
        await gate.release(epochs[7])
        for _ in range(40):
            await gate.release(await gate.acquire())
        assert gate.limit == 8, "successes bring the limit back"

    asyncio.run(scenario())


def test_prices_by_model_family_and_override():
    assert price_of("gpt-4o-mini-2024-07-18").cost(1_000_000, 1_000_000) == pytest.approx(0.75)
    assert price_of("gpt-4o").cost(1_000_000, 0) == pytest.approx(2.5)
    assert not price_of("Qwen/Qwen2.5-7B-Instruct").known
    assert price_of("llama3", (1.0, 2.0)).cost(500_000, 500_000) == pytest.approx(1.5)
    assert price_of("gpt-4o-mini", batch=True).cost(1_000_000, 1_000_000) == pytest.approx(0.375), "batch: half"
    assert price_of("llama3", (1.0, 2.0), batch=True).cost(500_000, 500_000) == pytest.approx(1.5), "as given"


def test_endpoint_comes_from_the_sdk_variables_and_hides_its_key(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EndpointMissing, match="no endpoint configured"):
        resolve_endpoint(None, None, "m")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hidden")
    endpoint = resolve_endpoint(None, None, "m")
    assert endpoint.base_url == "https://api.openai.com/v1" and "sk-hidden" not in repr(endpoint)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://user:pw@gpu-box:8000/v1/?token=x")
    endpoint = resolve_endpoint(None, None, "m")
    assert endpoint.public_url == "http://gpu-box:8000/v1"
    assert endpoint.redact("failed: sk-hidden at http://user:pw@gpu-box:8000/v1/?token=x") == (
        "failed: *** at http://gpu-box:8000/v1"
    )


def test_the_cache_key_is_the_canonical_request_and_survives_reopening(tmp_path):
    a = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1}
    b = {"temperature": 1, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    assert request_key(a) == request_key(b) != request_key({**a, "temperature": 0.5})
    cache = ResponseCache(tmp_path / "c" / "r.sqlite3")
    cache.put(request_key(a), "{}", '{"id": "x"}', "req_1")
    cache.close()
    reopened = ResponseCache(tmp_path / "c" / "r.sqlite3")
    assert reopened.get(request_key(b)) == ('{"id": "x"}', "req_1") and reopened.get("other") is None
    assert (tmp_path / "c" / ".gitignore").read_text() == "*\n"


def test_requests_are_a_pure_function_of_the_slot(catalog):
    spec = catalog.get("med_triage")
    options = Options(records_per_request=4)
    first = records_request(spec, plan_slot(spec, "zh", 7, [], options), "m", options, json_in_prompt=False)
    again = records_request(spec, plan_slot(spec, "zh", 7, [], options), "m", options, json_in_prompt=False)
    other = records_request(spec, plan_slot(spec, "zh", 8, [], options), "m", options, json_in_prompt=False)
    assert request_key(first) == request_key(again) != request_key(other)
    schema = first["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["records"]["minItems"] == 4 and "心内科" in json.dumps(schema, ensure_ascii=False)
    prompt = first["messages"][1]["content"]
    assert "目标语言：简体中文（zh）" in prompt and "Target language" not in prompt, "a Chinese request is Chinese"
    assert not any(c.isascii() and c.isalpha() for c in first["messages"][0]["content"].replace("JSON", ""))
    assert "```json" not in prompt, "with response_format the schema is not pasted into the prompt as well"
    prompt_only = records_request(spec, plan_slot(spec, "zh", 7, [], options), "m", options, json_in_prompt=True)
    assert "response_format" not in prompt_only and '"records"' in prompt_only["messages"][1]["content"]
    english = records_request(spec, plan_slot(spec, "en", 7, [], options), "m", options, json_in_prompt=False)
    assert "Target language: English (en)" in english["messages"][1]["content"]


def test_near_duplicates_are_found_within_task_and_language_only():
    index = NoveltyIndex()
    text = "My card was charged twice for the same hotel booking last Friday and the bank will not refund it."
    index.add_many("fin_intent", "en", [text], ["seeds/fin_intent.jsonl:3"])
    near = index.signatures("en", [text.replace("Friday", "Monday"), "A completely different complaint about a loan."])
    assert index.nearest("fin_intent", "en", near[0])[0] == "seeds/fin_intent.jsonl:3"
    assert index.nearest("fin_intent", "en", near[1]) is None
    assert index.nearest("fin_intent", "zh", near[0]) is None and index.nearest("law_keywords", "en", near[0]) is None


def test_batched_signatures_equal_one_by_one_signatures():
    index = NoveltyIndex()
    batcher = SignatureBatcher(index)
    texts = [["一二三四五六七八", "今天天气很好"], ["银行卡被重复扣款"]]

    async def scenario() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.signatures("zh", t) for t in texts))

    together = asyncio.run(scenario())
    for batch, result in zip(texts, together, strict=True):
        assert (result == index.signatures("zh", batch)).all()


def test_the_judge_rubric_fits_the_task_and_unreadable_scores_drop(catalog):
    spec = catalog.get("law_charge_prediction")
    assert "PRC law" in rubric(spec, "zh") and "set_f1" in rubric(spec, "zh")
    body = judge_request(spec, "zh", [{"instruction": "i", "input": "x", "output": "[]"}] * 2, JudgeConfig("m"))
    assert body["response_format"]["json_schema"]["schema"]["properties"]["scores"]["minItems"] == 2
    answer = {"choices": [{"message": {"content": json.dumps({"scores": [{"score": 5, "reason": "ok"}]})}}]}
    verdicts = read_verdicts(answer, 2)
    assert verdicts[0].score == 5 and verdicts[1].score is None


def test_the_progress_bar_ends_on_the_final_counts_whatever_the_throttle_skipped():
    from io import StringIO

    from rich.console import Console

    from synth.progress import ProgressBar
    from synth.report import JobStats

    out = StringIO()
    stats = JobStats()
    with ProgressBar(240, console=Console(file=out, force_terminal=True, width=120)) as bar:
        stats.accepted[("fin_intent", "en")] = 12
        bar.update(stats)
        stats.accepted[("fin_intent", "en")] = 240
        bar.update(stats)  # within the throttle window: not drawn now
    assert "240/240" in out.getvalue()


def test_label_tasks_are_asked_for_labels_by_their_distribution_at_scale(catalog):
    from collections import Counter

    spec = catalog.get("fin_intent").model_copy(
        update={"label_distribution": {"Fraud report": 6, "Complaint": 2, "Fee dispute": 2}}
    )
    drawn = Counter()
    options = Options(records_per_request=5)
    for slot in range(4_000):
        drawn.update(plan_slot(spec, "en", slot, [], options).labels)
    total = sum(drawn.values())
    assert set(drawn) == {"Fraud report", "Complaint", "Fee dispute"}
    assert abs(drawn["Fraud report"] / total - 0.6) < 0.02 and abs(drawn["Complaint"] / total - 0.2) < 0.02
    uniform = Counter()
    plain = catalog.get("fin_intent")
    for slot in range(3_000):
        uniform.update(plan_slot(plain, "zh", slot, [], options).labels)
    shares = [n / sum(uniform.values()) for n in uniform.values()]
    assert len(uniform) == 15 and max(shares) - min(shares) < 0.03, "uniform by default"
    body = records_request(plain, plan_slot(plain, "zh", 1, [], options), "m", options, json_in_prompt=False)
    assert "这些记录的正确输出依次是：" in body["messages"][1]["content"]
    assert plan_slot(catalog.get("med_triage"), "en", 1, [], options).labels == (), "only label tasks are steered"


def test_queued_checks_run_one_per_turn_of_the_loop_with_other_work_between_any_two() -> None:
    log: list[str] = []

    async def main() -> list[int]:
        queue = CheckQueue()
        stop = asyncio.Event()

        async def other_work() -> None:  # what reading answers and sending requests stands for
            while not stop.is_set():
                log.append("io")
                await asyncio.sleep(0)

        def check(n: int) -> int:
            log.append("check")
            if n == 7:
                raise ValueError("bad record 7")
            return n * n

        ticker = asyncio.create_task(other_work())
        results = await asyncio.gather(*(queue.run(lambda n=n: check(n)) for n in range(40)), return_exceptions=True)
        stop.set()
        await ticker
        await queue.close()
        return results

    results = asyncio.run(main())
    assert [r for i, r in enumerate(results) if i != 7] == [n * n for n in range(40) if n != 7]
    assert isinstance(results[7], ValueError), "a check's exception reaches the one who asked for it"
    checks = [i for i, entry in enumerate(log) if entry == "check"]
    assert len(checks) == 40 and all(b - a > 1 for a, b in itertools.pairwise(checks))


def test_the_proxy_comes_from_the_environment_once_and_no_proxy_is_honoured(monkeypatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert env_proxy("https://api.openai.com/v1/chat/completions") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.corp")
    assert env_proxy("https://api.openai.com/v1/chat/completions") == "http://proxy.internal:3128"
    assert env_proxy("http://127.0.0.1:8000/v1/chat/completions") is None, "plain http has no proxy set"
    assert env_proxy("https://llm.corp/v1/chat/completions") is None, "NO_PROXY covers the host"


def test_the_chat_url_keeps_the_base_path_and_query() -> None:
    assert endpoint_url("http://h:8000/v1/", "/chat/completions") == "http://h:8000/v1/chat/completions"
    assert endpoint_url("https://x.azure.com/openai/deployments/d?api-version=2024-10-21", "/chat/completions") == (
        "https://x.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
    )


@pytest.mark.parametrize(
    ("body", "message", "code", "param"),
    [
        ('{"error": {"message": "Bad Request", "type": "invalid_request_error", "param": "response_format"}}',
         "Bad Request", None, "response_format"),
        ('{"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}',
         "You exceeded your quota", "insufficient_quota", None),
        ('{"detail": "Not Found"}', "Not Found", None, None),  # FastAPI's shape
        ('{"error": "model not loaded"}', "model not loaded", None, None),  # llama.cpp's older shape
        ("<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>", None, None),
        ("", "HTTP 400", None, None),
    ],
)  # fmt: skip
def test_an_error_body_is_read_for_its_message_code_and_param(body, message, code, param) -> None:
    error = status_error(400, {}, body)
    assert (error.message, error.code, error.param) == (message, code, param)
