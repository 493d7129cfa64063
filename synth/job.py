"""The generation job: ask until every (task, language) holds N synthesized records, or a budget is spent.

Work is cut into slots: slot k of (task, language) is one request (two in two-stage mode) whose prompt is a pure
function of k, so a re-run walks the same slots, finds the answers in the cache and sends nothing for work already
done. Each answer is parsed, every record checked against the catalog (validation.records.check_record), for PII
and against near-duplicates of the seeds and of the store; the survivors may go past a judge, and are accepted in
one synchronous step that never lets a (task, language) exceed N. Rejects go to the quarantine with their reason.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catalog import Catalog, TaskSpec
from catalog.records import compact_json, output_string, record_id
from catalog.settings import Settings
from synth.cache import ResponseCache, canonical_request, key_of
from synth.check_queue import CheckQueue
from synth.client import (
    EndpointRejected,
    EndpointUnavailable,
    LLMClient,
    Reply,
    RequestFailed,
    ResponseFormatUnsupported,
)
from synth.config import Budget, Endpoint, Limits
from synth.judge import JudgeConfig, judge_request, judge_without_schema, read_verdicts, rubric_hash
from synth.ledger import BudgetSpent
from synth.novelty import NoveltyIndex, SignatureBatcher
from synth.parsing import Items, read_items, read_message
from synth.prices import Price
from synth.prompts import (
    TEMPLATE_HASH,
    TEMPLATE_VERSION,
    Exemplar,
    Options,
    SlotPlan,
    inputs_request,
    outputs_request,
    plan_slot,
    records_request,
    repair_request,
)
from synth.report import JobStats
from synth.retry import CircuitOpen
from synth.store import Existing, SynthStore, read_existing
from validation.language import is_language_reason
from validation.language import prepare as prepare_language_checks
from validation.pii import PII_HINT, find_pii
from validation.records import check_record, read_record_file

JSON_MODE_CAPABILITY = "response_format"
STRICT_CAPABILITY = "json_schema_strict"
# How the schema is sent, best first: response_format with `strict: true` (the server guarantees the schema),
# response_format without it, the schema in the prompt. A server that rejects one is asked the next way, and the
# step is remembered per endpoint and model in the cache.
SCHEMA_MODES = ("strict", "schema", "prompt")
# A server that enforces response_format answers JSON. This many answers in a row that are text but not JSON show
# that it takes the field and ignores it (as `transformers serve` does): the schema then goes into the prompt.
UNSHAPED_ANSWERS_TO_STEP_DOWN = 3
_PII_HINT = re.compile(PII_HINT)
SLOT_HEADROOM = 4  # a (task, language) may use this many times the slots a reject-free run needs, then gives up


@dataclass(frozen=True)
class JobConfig:
    tasks: list[TaskSpec]
    langs: list[str]
    per_task: int  # records wanted per (task, language) in the synth store, those already there included
    options: Options = field(default_factory=Options)
    judge: JudgeConfig | None = None
    cache_only: bool = False  # re-read cached answers (after a parser fix, say); never call the endpoint
    repair: bool = True  # send records that fail the contract back once with their errors (one-stage mode)
    defer: bool = False  # Batch mode: send nothing; collect the requests the cache cannot answer (`deferred`)


@dataclass
class _Pair:
    """The progress of one (task, language)."""

    spec: TaskSpec
    lang: str
    target: int
    stored: int
    max_slots: int
    next_slot: int = 0
    in_flight: int = 0
    deferred: int = 0  # slots whose request waits for a batch: they count as records to come
    gave_up: bool = False

    @property
    def done(self) -> bool:
        return self.stored >= self.target or self.gave_up


@dataclass
class _Candidate:
    item: int
    row: dict[str, Any]
    signature: np.ndarray | None = None
    bands: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


class SynthJob:
    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        endpoint: Endpoint,
        config: JobConfig,
        limits: Limits | None = None,
        budget: Budget | None = None,
        price: Price | None = None,
        on_progress: Callable[[JobStats], None] | None = None,
    ):
        self.catalog, self.settings, self.endpoint, self.config = catalog, settings, endpoint, config
        limits, budget = limits or Limits(), budget or Budget()
        price = price or Price(0.0, 0.0, known=False)
        self.stats = JobStats(price_known=price.known)
        self.cache = ResponseCache.in_store(settings.synth_dir)
        self.client = LLMClient(endpoint, limits, budget, price, self.cache, self.stats)
        self.store = SynthStore(settings.synth_dir)
        self.novelty = NoveltyIndex()
        self.batcher = SignatureBatcher(self.novelty)
        self.checks = CheckQueue()
        self.limits = limits
        self.on_progress = on_progress or (lambda stats: None)
        self._ids: set[str] = set()
        self._stored_items: set[tuple[str, int]] = set()  # (cache key, item) of records in the store
        self._exemplars: dict[tuple[str, str], list[Exemplar]] = {}
        self._pairs: list[_Pair] = []
        self._changed = asyncio.Condition()
        self._processing: set[asyncio.Task[None]] = set()  # records being checked after their request returned
        self._crash: BaseException | None = None
        self._stopping = False
        self._cursor = 0
        self.schema_mode = "strict"
        self._unshaped_in_a_row = 0
        self.deferred: dict[str, str] = {}  # defer mode: cache key → canonical request, for the next batch

    @property
    def json_in_prompt(self) -> bool:
        return self.schema_mode == "prompt"

    # --- set-up --------------------------------------------------------------------------------------------

    def _load(self) -> None:
        """Count what the store holds; for the pairs still short, index what exists and pick the exemplars."""
        self.store.open()
        synthesized = read_existing([self.settings.synth_dir], self.catalog)
        have: dict[tuple[str, str], set[str]] = {}
        for record in synthesized:
            have.setdefault((record.task, record.lang), set()).add(record.id)
        per_request = self.config.options.records_per_request
        for spec in self.config.tasks:
            for lang in (lang for lang in self.config.langs if lang in spec.languages):
                count = len(have.get((spec.id, lang), ()))
                self.stats.targets[(spec.id, lang)] = self.config.per_task
                if weights := spec.label_weights("en"):
                    total = sum(w for _, w in weights)
                    self.stats.label_targets[(spec.id, lang)] = {label: w / total for label, w in weights}
                self.stats.existing[(spec.id, lang)] = count
                if count < self.config.per_task:
                    slots = SLOT_HEADROOM * math.ceil(self.config.per_task / per_request) + 2
                    self._pairs.append(_Pair(spec, lang, self.config.per_task, count, slots))
        if not self._pairs:
            return  # every target met: a re-run reads nothing more and sends nothing
        wanted = {(p.spec.id, p.lang) for p in self._pairs}
        seeds = read_existing([self.settings.seeds_dir], self.catalog)
        by_pair: dict[tuple[str, str], list[Existing]] = {}
        for record in seeds + synthesized:
            self._ids.add(record.id)
            if (record.task, record.lang) in wanted:
                by_pair.setdefault((record.task, record.lang), []).append(record)
        for (task, lang), records in by_pair.items():
            self.novelty.add_many(task, lang, [r.input for r in records], [r.where for r in records])
        self._stored_items = self._items_in_store()
        self._exemplars = self._exemplar_pools(wanted)
        self._warm_up()
        url, model = self.endpoint.public_url, self.endpoint.model
        if self.cache.capability(url, model, JSON_MODE_CAPABILITY) in ("unsupported", "ignored"):
            self.schema_mode = "prompt"
        elif self.cache.capability(url, model, STRICT_CAPABILITY) == "unsupported":
            self.schema_mode = "schema"

    def _warm_up(self) -> None:
        """The checks' one-time set-up now (the language screens' patterns; each task's compiled output schema, by
        checking one exemplar of each pair without languages, which would load lingua for a text only it decides):
        ~0.3 s before the first requests, not while their answers wait to be read."""
        prepare_language_checks()
        for pair in self._pairs:
            for exemplar in self._exemplars.get((pair.spec.id, pair.lang), [])[:1]:
                row = {"task": pair.spec.id, "lang": pair.lang, "input": exemplar.input, "output": exemplar.output}
                row["instruction"] = pair.spec.instructions_for(pair.lang)[0]
                check_record(row, self.catalog, languages=False)

    def _items_in_store(self) -> set[tuple[str, int]]:
        """(cache key, item) of every stored record, from its provenance: a re-read answer's records that are
        there already are recognised as the same records, not as duplicates."""
        found: set[tuple[str, int]] = set()
        for path in sorted(self.settings.synth_dir.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    provenance = json.loads(line).get("provenance") or {}
                    found.add((provenance["cache_key"], int(provenance["item"])))
                except (json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
                    continue
        return found

    def _exemplar_pools(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], list[Exemplar]]:
        """Seeds with role `exemplar` only: gold seeds are for evaluation and are never shown to the model."""
        pools: dict[tuple[str, str], list[Exemplar]] = {}
        for task in sorted({task for task, _ in wanted}):
            path = self.settings.seeds_dir / f"{task}.jsonl"
            if not path.exists():
                continue
            frame = read_record_file(path, self.catalog).frame
            for row in frame.filter(frame["role"] == "exemplar").iter_rows(named=True):
                if (row["task"], row["lang"]) in wanted:
                    pools.setdefault((row["task"], row["lang"]), []).append(
                        Exemplar(row["id"], row["input"], row["output"])
                    )
        return pools

    # --- the loop -------------------------------------------------------------------------------------------

    async def run(self) -> JobStats:
        self._load()
        self.stats.load_s = self.stats.elapsed
        self.stats.started = time.monotonic()  # elapsed_s measures the generation loop; load_s the reading before
        # What is loaded lives as long as the job (modules, catalog, seeds, the novelty index): frozen, the cyclic
        # collector's full passes stop walking it (they stalled the loop up to 0.17 s: at 0.5 s latency the p99 of
        # a request was 785 ms, 600 ms frozen).
        gc.freeze()
        try:
            workers = [asyncio.create_task(self._worker()) for _ in range(max(1, self.limits.concurrency))]
            await asyncio.gather(*workers)
            await asyncio.gather(*self._processing, return_exceptions=True)
            if self._crash is not None:
                raise self._crash
        finally:
            gc.unfreeze()
            await self.checks.close()
            await self.client.close()
            self.store.close()
            self.cache.close()
        short = [p for p in self._pairs if p.stored < p.target]
        if short and self.stats.stopped is None:
            names = ", ".join(f"{p.spec.id}/{p.lang}" for p in short[:5])
            if self.config.defer and self.deferred:
                pass  # not short: waiting for the batch that will carry self.deferred
            elif self.config.cache_only:
                self._stop(f"cache-only: the cache holds too few answers for {names}", "cache")
            else:
                self._stop(f"too many rejects: gave up on {names} after {short[0].max_slots} slots", "rejects")
        self.on_progress(self.stats)
        return self.stats

    async def _worker(self) -> None:
        while (work := await self._next()) is not None:
            pair, slot = work
            processing = await self._guarded(pair, slot, self._run_slot(pair, slot))
            if processing is None:
                await self._settled(pair)
            else:
                # The reply is in: this worker (one request's worth of concurrency) asks again at once, while the
                # records are checked in their own task. The pair counts the slot as in flight until they are.
                task = asyncio.create_task(self._process(pair, slot, processing))
                self._processing.add(task)
                task.add_done_callback(self._processed)

    def _processed(self, task: asyncio.Task[None]) -> None:
        self._processing.discard(task)
        if not task.cancelled() and task.exception() is not None and self._crash is None:
            self._crash = task.exception()  # a bug, not a bad answer: re-raised by run() once the workers stop
            self._stop("internal error while checking records", "error")

    async def _process(self, pair: _Pair, slot: int, processing: Coroutine[Any, Any, None]) -> None:
        try:
            await self._guarded(pair, slot, processing)
        finally:
            await self._settled(pair)

    async def _guarded(self, pair: _Pair, slot: int, step: Awaitable[Any]) -> Any:
        """Await one step of a slot; the failures that end a slot, or the job, are recorded rather than raised."""
        try:
            return await step
        except BudgetSpent as stop:
            self._stop(str(stop), "budget")
        except (CircuitOpen, EndpointRejected) as stop:
            self._stop(self.endpoint.redact(str(stop)), "endpoint")
        except EndpointUnavailable as stop:
            self._stop(self.endpoint.redact(str(stop)), "unavailable")
        except RequestFailed as failed:
            self.stats.rejected["request_failed"] += 1
            self.store.reject(
                pair.spec.id,
                f"failed:{pair.spec.id}:{pair.lang}:{slot}",
                {
                    "reason": "request_failed",
                    "detail": str(failed),
                    "task": pair.spec.id,
                    "lang": pair.lang,
                    "slot": slot,
                },
            )
        return None

    async def _settled(self, pair: _Pair) -> None:
        async with self._changed:
            pair.in_flight -= 1
            # A settled slot opens at most one more: its pair was covered with it in flight, and it accepted at most
            # its own records. So one waiting worker is woken (waking all of them to scan every pair cost more CPU
            # than the rest of the job), and all of them once nothing is in flight or the job stops, to see it end.
            if self._stopping or not any(p.in_flight for p in self._pairs):
                self._changed.notify_all()
            else:
                self._changed.notify(1)
        self.on_progress(self.stats)

    async def _next(self) -> tuple[_Pair, int] | None:
        """The next slot to run: round-robin over the pairs that still need records beyond what is in flight."""
        per_request = self.config.options.records_per_request
        async with self._changed:
            while not self._stopping:
                for offset in range(len(self._pairs)):
                    pair = self._pairs[(self._cursor + offset) % len(self._pairs)]
                    coming = (pair.in_flight + pair.deferred) * per_request
                    if pair.done or pair.stored + coming >= pair.target:
                        continue
                    if pair.next_slot >= pair.max_slots:
                        if pair.in_flight == 0:
                            pair.gave_up = True
                        continue
                    self._cursor = (self._cursor + offset + 1) % len(self._pairs)
                    pair.in_flight += 1
                    pair.next_slot += 1
                    return pair, pair.next_slot - 1
                if not any(p.in_flight for p in self._pairs):
                    return None
                await self._changed.wait()
        return None

    def _stop(self, reason: str, kind: str) -> None:
        if self.stats.stopped is None:
            self.stats.stopped, self.stats.stop_kind = reason, kind
        self._stopping = True

    # --- one slot -------------------------------------------------------------------------------------------

    async def _run_slot(self, pair: _Pair, slot: int) -> Coroutine[Any, Any, None] | None:
        """Send the slot's request(s); return the (not yet started) checking of the records that came back."""
        spec, lang, options = pair.spec, pair.lang, self.config.options
        plan = plan_slot(spec, lang, slot, self._exemplars.get((spec.id, lang), []), options)
        model = self.endpoint.model
        if options.two_stage:
            first = await self._ask(lambda j: inputs_request(spec, plan, model, options, j))
            if first is None:
                return self._unanswered(pair)
            inputs = read_items(read_message(first.body), "inputs")
            texts = [t for t in inputs.items if isinstance(t, str) and t.strip()]
            if not texts:
                self._reject_answer(pair, plan, first, inputs, stage="inputs")
                return None
            second = await self._ask(lambda j: outputs_request(spec, plan, texts, model, options, j))
            if second is None:
                return self._unanswered(pair)
            outputs = read_items(read_message(second.body), "outputs")
            items = [{"input": text, "output": out} for text, out in zip(texts, outputs.items, strict=False)]
            if len(outputs.items) < len(texts):
                outputs.problem = outputs.problem or "wrong_shape"
                outputs.detail = outputs.detail or f"{len(outputs.items)} outputs for {len(texts)} inputs"
            self._reject_answer(pair, plan, second, outputs, stage="outputs")
            stages = {"inputs_request_id": first.request_id, "inputs_cache_key": first.key}
            return self._consider(pair, plan, second, items, stages)
        else:
            reply = await self._ask(lambda j: records_request(spec, plan, model, options, j))
            if reply is None:
                return self._unanswered(pair)
            answer = read_items(read_message(reply.body), "records")
            self._reject_answer(pair, plan, reply, answer, stage="records")
            return self._consider(pair, plan, reply, answer.items, {})

    def _unanswered(self, pair: _Pair) -> None:
        """A slot whose request the cache cannot answer: in defer mode it counts as records to come."""
        if self.config.defer:
            pair.deferred += 1

    async def _ask(self, build: Callable[[bool], dict[str, Any]]) -> Reply | None:
        """Send (or find in the cache) the request `build` makes; None when cache-only and not cached."""
        mode = self.schema_mode
        body = _strict(build(mode == "prompt")) if mode == "strict" else build(mode == "prompt")
        if self.config.cache_only or self.config.defer:
            return self._from_cache(body)
        try:
            reply = await self.client.complete(body)
        except ResponseFormatUnsupported:
            self._step_down(mode)
            return await self._ask(build)  # at most twice: prompt mode sends no response_format to reject
        if mode != "prompt":
            self._watch_shape(mode, reply)
        return reply

    def _from_cache(self, body: dict[str, Any]) -> Reply | None:
        """The cached answer to `body`; without one, None, and in defer mode the request is kept for the batch."""
        reply = self.client.cached(body)
        if reply is not None:
            self.stats.cache_hits += 1
        elif self.config.defer:
            canonical = canonical_request(self.client.ledger.bounded(body))
            self.deferred[key_of(canonical)] = canonical
        return reply

    def _step_down(self, failed: str) -> None:
        """The server rejected the schema sent the `failed` way: use the next way from now on (once, however many
        requests in flight come back with the same rejection)."""
        if self.schema_mode != failed:
            return
        self.schema_mode = SCHEMA_MODES[SCHEMA_MODES.index(failed) + 1]
        capability = STRICT_CAPABILITY if failed == "strict" else JSON_MODE_CAPABILITY
        self.cache.set_capability(self.endpoint.public_url, self.endpoint.model, capability, "unsupported")
        if failed == "strict":
            self.stats.strict_fallbacks += 1
        else:
            self.stats.mode_fallbacks += 1

    def _watch_shape(self, mode: str, reply: Reply) -> None:
        """Count answers to a structured request that are not JSON; enough in a row and the server ignores
        response_format, so the schema goes into the prompt from now on (and for the next job: it is remembered).
        An empty answer or a refusal says nothing either way."""
        message = read_message(reply.body)
        text = (message.content or "").lstrip()
        if not text or message.refusal or self.schema_mode != mode:
            return
        if text.startswith(("{", "[")):
            self._unshaped_in_a_row = 0
            return
        self._unshaped_in_a_row += 1
        if self._unshaped_in_a_row >= UNSHAPED_ANSWERS_TO_STEP_DOWN:
            self.schema_mode = "prompt"
            self.cache.set_capability(self.endpoint.public_url, self.endpoint.model, JSON_MODE_CAPABILITY, "ignored")
            self.stats.response_format_ignored = True

    def _reject_answer(self, pair: _Pair, plan: SlotPlan, reply: Reply, answer: Items, stage: str) -> None:
        """Quarantine what an answer lost as a whole: a refusal, unreadable JSON, a cut-off tail."""
        if answer.problem is None:
            return
        message = read_message(reply.body)
        self._reject(
            pair,
            f"{reply.key}:answer:{answer.problem}",
            answer.problem,
            answer.detail,
            {
                "slot": plan.slot,
                "stage": stage,
                "cache_key": reply.key,
                "request_id": reply.request_id,
                "finish_reason": message.finish_reason,
                "raw": (message.content or message.refusal or "")[:2000],
            },
        )

    def _reject(self, pair: _Pair, key: str, reason: str, detail: str, extra: dict[str, Any]) -> None:
        entry = {"reason": reason, "detail": detail, "task": pair.spec.id, "lang": pair.lang, **extra}
        if self.store.reject(pair.spec.id, key, entry):  # a re-read answer's rejects are counted once, ever
            self.stats.rejected[reason] += 1

    # --- records --------------------------------------------------------------------------------------------

    async def _consider(
        self, pair: _Pair, plan: SlotPlan, reply: Reply, items: list[Any], stages: dict[str, Any]
    ) -> None:
        candidates = await self._signed(pair, self._candidates(pair, plan, reply, items, stages))
        passed, faulty = [], []
        problems = await self.checks.run(lambda: [self._problem(pair, c) for c in candidates])
        for candidate, problem in zip(candidates, problems, strict=True):
            if problem is None:
                passed.append(candidate)
            elif problem[0] == "invalid" and self.config.repair and not self.config.options.two_stage:
                faulty.append((candidate, problem[1]))  # fixable by the model: sent back once, below
            else:
                self._reject_record(pair, reply, candidate, *problem)
        await self._keep(pair, reply, passed)  # what passed is kept before the repair turn is even asked
        if faulty:
            await self._repair(pair, plan, reply, faulty)

    async def _signed(self, pair: _Pair, candidates: list[_Candidate]) -> list[_Candidate]:
        if candidates:
            signatures = await self.batcher.signatures(pair.lang, [c.row["input"] for c in candidates])
            for candidate, signature, bands in zip(
                candidates, signatures, self.novelty.band_keys(signatures), strict=True
            ):
                candidate.signature, candidate.bands = signature, bands
        return candidates

    async def _keep(self, pair: _Pair, reply: Reply, candidates: list[_Candidate]) -> int:
        """Judge (where asked) and accept `candidates`; how many were stored."""
        if candidates and self.config.judge is not None:
            candidates = await self._judged(pair, reply, candidates)
        return await self.checks.run(lambda: self._accept(pair, reply, candidates))

    async def _repair(self, pair: _Pair, plan: SlotPlan, reply: Reply, faulty: list[tuple[_Candidate, str]]) -> None:
        """The repair turn: the records that failed the contract go back once with their errors; each corrected
        record is checked like any other and kept with `repair_of` in its provenance. An original whose correction
        does not pass is quarantined as `invalid`, with what the repair turn made of it."""
        spec, model, options = pair.spec, self.endpoint.model, self.config.options
        sent = [(c.row["input"], c.row["output"], errors) for c, errors in faulty]
        fixed = await self._ask(lambda j: repair_request(spec, plan, sent, model, options, j))
        if fixed is None and self.config.defer:
            return  # the repair turn goes out with the batch; this answer is re-read and repaired next round
        why: dict[int, str] = {}  # position in `faulty` → why its correction was not kept
        handled: set[int] = set()  # corrections that passed the checks (kept, judged, or surplus to the target)
        if fixed is not None:
            self.stats.repair_requests += 1
            answer = read_items(read_message(fixed.body), "records")
            items = answer.items[: len(faulty)]
            why.update({i: "no corrected record came back" for i in range(len(items), len(faulty))})
            passed = []
            for candidate in await self._signed(pair, self._candidates(pair, plan, fixed, items, {})):
                original, errors = faulty[candidate.item]
                candidate.provenance["repair_of"] = {"cache_key": reply.key, "item": original.item, "errors": errors}
                problem = self._problem(pair, candidate)
                if problem is None:
                    passed.append(candidate)
                else:
                    why[candidate.item] = f"{problem[0]}: {problem[1]}"
            # A correction the judge drops is quarantined there, as itself. Counted from what this call stored:
            # other slots' records are accepted while it waits its turn.
            kept = await self._keep(pair, fixed, passed)  # not `repaired += await ...`: that reads before it waits
            self.stats.repaired += kept
            stored = {i for i in range(len(items)) if (fixed.key, i) in self._stored_items}  # earlier runs too
            handled = stored | {c.item for c in passed}
        for position, (original, errors) in enumerate(faulty):
            if position not in handled:
                reason = why.get(position, "wrong shape" if fixed is not None else "not asked: cache-only")
                self._reject_record(pair, reply, original, "invalid", f"{errors} (repair turn: {reason})")

    def _candidates(
        self, pair: _Pair, plan: SlotPlan, reply: Reply, items: list[Any], stages: dict[str, Any]
    ) -> list[_Candidate]:
        spec, lang = pair.spec, pair.lang
        message, options = read_message(reply.body), self.config.options
        share = max(1, len(items))
        provenance_base = {
            "model": self.endpoint.model,
            "response_model": message.model,
            "params": {**options.sampling(), "records_per_request": options.records_per_request},
            "template": TEMPLATE_VERSION,
            "template_hash": TEMPLATE_HASH,
            "mode": reply.mode,
            "two_stage": self.config.options.two_stage,
            "exemplars": [e.id for e in plan.exemplars],
            "scenario": plan.scenario,
            "persona": plan.persona,
            "slot": plan.slot,
            "request_id": reply.request_id,
            "completion_id": message.completion_id,
            "created": message.created,
            "cache_key": reply.key,
            "usage": {
                "prompt_tokens": message.prompt_tokens,
                "completion_tokens": message.completion_tokens,
                "records_in_response": len(items),
                "tokens_per_record": round((message.prompt_tokens + message.completion_tokens) / share, 1),
            },
            **stages,
        }
        candidates: list[_Candidate] = []
        for index, item in enumerate(items):
            if (reply.key, index) in self._stored_items:
                self.stats.already_stored += 1
                continue
            if not isinstance(item, dict) or not isinstance(item.get("input"), str) or "output" not in item:
                where = {"slot": plan.slot, "item": index, "cache_key": reply.key, "raw": compact_json(item)[:2000]}
                detail = "an item needs a string `input` and an `output`"
                self._reject(pair, f"{reply.key}:{index}:wrong_shape", "wrong_shape", detail, where)
                continue
            text = item["input"].strip()
            instruction = plan.instruction
            row = {
                "id": record_id(spec.id, lang, text),
                "task": spec.id,
                "domain": spec.domain,
                "lang": lang,
                "instruction": instruction,
                "input": text,
                "output": output_string(spec, item["output"]),
                "source": "synth",
                "generator": message.model or self.endpoint.model,
            }
            candidates.append(_Candidate(index, row, provenance={**provenance_base, "item": index}))
        return candidates

    def _problem(self, pair: _Pair, candidate: _Candidate) -> tuple[str, str] | None:
        """What keeps a record out: the record contract, personal data, or novelty; None when it passes."""
        row = candidate.row
        if problems := check_record(row, self.catalog):
            language_only = all(is_language_reason(r) for _, r in problems)
            return ("language" if language_only else "invalid"), "; ".join(f"{f}: {r}" for f, r in problems)
        if _PII_HINT.search(text := row["input"] + "\n" + row["output"]) and (found := find_pii(text)):
            return "pii", ", ".join(map(str, found))
        return self._novelty_problem(pair, candidate)

    def _novelty_problem(self, pair: _Pair, candidate: _Candidate) -> tuple[str, str] | None:
        if candidate.row["id"] in self._ids:
            return "duplicate", "the same task, language and input exist already"
        assert candidate.signature is not None
        near = self.novelty.nearest(pair.spec.id, pair.lang, candidate.signature, candidate.bands)
        if near is not None:
            return "near_duplicate", f"similarity {near[1]:.2f} to {near[0]}"
        return None

    def _reject_record(self, pair: _Pair, reply: Reply, candidate: _Candidate, reason: str, detail: str) -> None:
        row = candidate.row
        self._reject(
            pair,
            f"{reply.key}:{candidate.item}:{reason}",
            reason,
            detail,
            {
                "slot": candidate.provenance.get("slot"),
                "item": candidate.item,
                "cache_key": reply.key,
                "request_id": reply.request_id,
                "id": row["id"],
                "instruction": row["instruction"],
                "input": row["input"],
                "output": row["output"],
            },
        )

    async def _judged(self, pair: _Pair, reply: Reply, candidates: list[_Candidate]) -> list[_Candidate]:
        judge = self.config.judge
        assert judge is not None
        body = judge_request(pair.spec, pair.lang, [c.row for c in candidates], judge)
        if self.json_in_prompt:
            body = judge_without_schema(body)
        elif self.schema_mode == "strict":
            body = _strict(body)
        if self.config.cache_only or self.config.defer:
            answer = self._from_cache(body)
            if answer is None:
                return []  # in defer mode the judge's answer comes with the batch: these are judged next round
        else:
            try:
                answer = await self.client.complete(body)
            except ResponseFormatUnsupported:
                answer = await self.client.complete(judge_without_schema(body))
        kept = []
        for candidate, verdict in zip(candidates, read_verdicts(answer.body, len(candidates)), strict=True):
            candidate.provenance["judge"] = {
                "model": judge.model,
                "score": verdict.score,
                "threshold": judge.threshold,
                "rubric_hash": rubric_hash(pair.spec, pair.lang),
                "request_id": answer.request_id,
            }
            if verdict.score is not None and verdict.score >= judge.threshold:
                kept.append(candidate)
            else:
                reason = "judge_low_score" if verdict.score is not None else "judge_unreadable"
                detail = f"score {verdict.score} < {judge.threshold}: {verdict.reason}"
                self._reject_record(pair, reply, candidate, reason, detail)
        return kept

    def _accept(self, pair: _Pair, reply: Reply, candidates: list[_Candidate]) -> int:
        """Accept in order until the pair's target, and say how many: no await in here, so no other slot
        interleaves."""
        accepted = []
        for candidate in candidates:
            if pair.stored >= pair.target:
                break  # surplus of a response that finished after the target was met: left in the cache
            verdict = self._novelty_problem(pair, candidate)  # again: another slot may have accepted a twin
            if verdict is not None:
                self._reject_record(pair, reply, candidate, *verdict)
                continue
            row = {**candidate.row, "provenance": candidate.provenance}
            assert candidate.signature is not None
            self.novelty.add(
                pair.spec.id, pair.lang, candidate.signature, f"{pair.spec.id}.jsonl (this run)", candidate.bands
            )
            self._ids.add(row["id"])
            self._stored_items.add((reply.key, candidate.item))
            accepted.append(row)
            pair.stored += 1
            self.stats.accepted[(pair.spec.id, pair.lang)] += 1
            if (label_set := pair.spec.label_set) is not None:
                label = pair.spec.canonical_label(label_set, pair.lang, row["output"])
                self.stats.labels.setdefault((pair.spec.id, pair.lang), Counter())[label or "?"] += 1
        self.store.append(pair.spec.id, accepted)
        return len(accepted)


def _strict(body: dict[str, Any]) -> dict[str, Any]:
    """`body` with `strict: true` in its response_format's json_schema (where it has one)."""
    if "response_format" not in body:
        return body
    form = body["response_format"]
    return {**body, "response_format": {**form, "json_schema": {**form["json_schema"], "strict": True}}}
