"""The same job through a Batch API: collect, submit once, wait, read the answers into the cache, check them.

A round runs the job in defer mode: every answer the cache holds is checked, kept or quarantined exactly as in
the live job, and the requests it does not hold are collected instead of sent. Those go out as one batch
(OpenAI's Batch API or any server with the same routes: upload the requests file, create the batch, poll it,
download the output and error files); each answer goes into the response cache under its request's key (the
`custom_id`), and the next round reads them like any cached answer. Rounds repeat until every target is met,
nothing more is asked, or a budget is spent (each request's worst case is reserved before it joins a batch).

The batch in progress is written down (`_batches/current.json`) before anything is submitted and as it moves, so a
job killed while waiting resumes that batch: it finds the uploaded file and the created batch again (by the
requests file's hash in the batch's metadata) and submits nothing twice. A batch that fails, expires or is
cancelled is reported; what it answered is kept, and its other requests are asked again in the next round.

Offline, the requests file is the input of vLLM's batch runner (`python -m vllm.entrypoints.openai.run_batch -i
requests.jsonl -o results.jsonl --model M`), and its output file is read back with `--batch-import`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog import Catalog
from catalog.settings import Settings
from synth.cache import ResponseCache, canonical_request, key_of
from synth.config import Budget, Endpoint, Limits
from synth.job import JobConfig, SynthJob
from synth.ledger import BudgetLedger, Reservation
from synth.prices import Price
from synth.report import JobStats

BATCH_DIR = "_batches"
ENDPOINT = "/v1/chat/completions"
TERMINAL = ("completed", "failed", "expired", "cancelled")
MAX_ROUNDS = 5  # a round's rejects are asked for again in the next: a few rounds meet any sane target


@dataclass(frozen=True)
class BatchOptions:
    poll_seconds: float = 30.0
    completion_window: str = "24h"
    max_rounds: int = MAX_ROUNDS


@dataclass
class BatchReport:
    rounds: int = 0
    batches: list[dict[str, Any]] = field(default_factory=list)  # id, status, requests, answered, failed
    not_submitted: int = 0  # requests left out of a batch because the budget could not hold their worst case

    def to_dict(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "batches": self.batches, "not_submitted_for_budget": self.not_submitted}


class BatchFolder:
    """`synth/_batches/`: the requests file of each round and the state of the batch in progress."""

    def __init__(self, synth_dir: Path):
        self.root = synth_dir / BATCH_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_path = self.root / "current.json"

    def state(self) -> dict[str, Any] | None:
        if not self.state_path.exists():
            return None
        try:
            return json.loads(self.state_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise RuntimeError(f"{self.state_path}: not JSON ({err.msg}); delete it to start a new batch") from err

    def save(self, state: dict[str, Any]) -> None:
        partial = self.state_path.with_suffix(".json.partial")
        partial.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        partial.replace(self.state_path)  # atomic: a kill leaves the old state or the new one

    def done(self) -> None:
        self.state_path.unlink(missing_ok=True)

    def write_requests(self, requests: dict[str, str]) -> tuple[Path, str]:
        """The requests as a Batch API input file; its path and the SHA-256 that names it."""
        lines = []
        for key, canonical in sorted(requests.items()):
            line = {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": json.loads(canonical)}
            lines.append(json.dumps(line, ensure_ascii=False) + "\n")
        content = "".join(lines).encode()
        sha = hashlib.sha256(content).hexdigest()
        path = self.root / f"requests-{sha[:16]}.ndjson"  # not *.jsonl: no build or validate reads it as records
        path.write_bytes(content)
        return path, sha


def requests_in(path: Path) -> dict[str, str]:
    """custom_id → canonical request of a requests file; a line whose body no longer hashes to its custom_id (an
    edited file) is refused, since its answer would be cached under a request nobody asked."""
    found = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
            canonical = canonical_request(row["body"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{number}: not a Batch API request line ({err})") from err
        if key_of(canonical) != row.get("custom_id"):
            raise ValueError(f"{path}:{number}: custom_id does not match the request body (was the file edited?)")
        found[row["custom_id"]] = canonical
    return found


def read_results(text: str, requests: dict[str, str], cache: ResponseCache, source: str) -> tuple[int, dict[str, str]]:
    """Put each answered line of a Batch output (or error) file into the cache under its custom_id (the request's
    cache key). Returns how many answers were stored, and the custom_ids that got no answer, with why."""
    stored, failed = 0, {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = row["custom_id"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{source}:{number}: not a Batch API result line ({err})") from err
        response = row.get("response") or {}
        if key not in requests:
            failed[key] = f"{source}:{number}: no request of this job has this custom_id"
        elif response.get("status_code") == 200 and isinstance(response.get("body"), dict):
            body = json.dumps(response["body"], ensure_ascii=False)
            cache.put(key, requests[key], body, response.get("request_id"))
            stored += 1
        else:
            error = row.get("error") or (response.get("body") or {}).get("error") or {}
            failed[key] = f"{response.get('status_code', '-')} {error.get('code') or ''}: {error.get('message') or ''}"
    return stored, failed


class BatchJob:
    """Rounds of defer-mode jobs and batches until the targets are met."""

    def __init__(
        self,
        catalog: Catalog,
        settings: Settings,
        endpoint: Endpoint,
        config: JobConfig,
        limits: Limits,
        budget: Budget,
        price: Price,
        options: BatchOptions = BatchOptions(),
        on_status: Callable[[str], None] | None = None,
    ):
        self.catalog, self.settings, self.endpoint, self.config = catalog, settings, endpoint, config
        self.limits, self.budget, self.price, self.options = limits, budget, price, options
        self.folder = BatchFolder(settings.synth_dir)
        self.totals = JobStats()  # what the batches cost: requests, tokens and cost over every round
        self.ledger = BudgetLedger(budget, price, self.totals)
        self.report = BatchReport()
        self.on_status = on_status or (lambda message: print(message, file=sys.stderr, flush=True))
        import openai  # here, not at the top: the SDK's types take a second to import, which other commands need not

        self._sdk = openai.AsyncOpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=3)
        self._reserved: dict[str, Reservation] = {}  # custom_id → its reservation, until its answer is read
        self._deferred: dict[str, str] = {}
        self._rounds_total = JobStats()  # the records side, summed over the rounds' jobs
        self._existing: Counter[tuple[str, str]] | None = None

    async def run(self) -> JobStats:
        """Rounds of check-what-is-cached and batch-what-is-not, until the targets are met."""
        import openai

        stats = JobStats()
        try:
            if (state := self.folder.state()) is not None:  # a batch of an earlier, interrupted job
                self.on_status(f"batch: resuming {state.get('batch_id') or 'the upload of ' + state['requests']}")
                await self._finish(state)
            stats = await self._round()
            while stats.stopped is None and self._deferred and self.report.rounds < self.options.max_rounds:
                if (state := self._next_batch()) is None:
                    stats.stopped, stats.stop_kind = self._budget_stop(), "budget"
                    break
                await self._finish(state)
                stats = await self._round()
            if stats.stopped is None and self._deferred:
                stats.stopped, stats.stop_kind = f"still short after {self.report.rounds} batch rounds", "rejects"
        except openai.APIConnectionError as err:
            stats.stopped, stats.stop_kind = f"{self.endpoint.public_url} could not be reached ({err})", "unavailable"
        except openai.APIStatusError as err:
            what = f"{err.response.request.method} {err.response.request.url.path}"
            message = self.endpoint.redact(str(err.message))[:300]
            stats.stopped, stats.stop_kind = f"the Batch API refused {what} ({err.status_code}): {message}", "endpoint"
        finally:
            await self._sdk.close()
        return self._combined(stats)

    async def export(self, target: Path) -> JobStats:
        """Offline: check what the cache holds and write what it does not as a requests file for a batch runner
        (vLLM's `run_batch`), to `target`; nothing is sent."""
        stats = await self._round()
        if self._deferred and (state := self._next_batch()) is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((self.folder.root / state["requests"]).read_bytes())
            self.folder.done()  # not submitted here: nothing to resume
            self.report.batches.append({"exported": str(target), "requests": state["count"]})
            self.on_status(f"batch: {state['count']} requests written to {target}")
        await self._sdk.close()
        return self._combined(stats)

    async def import_results(self, results: Path) -> JobStats:
        """Offline: read a batch runner's output file into the cache (against every requests file this store
        wrote), then check the answers like any cached ones."""
        requests: dict[str, str] = {}
        for path in sorted(self.folder.root.glob("requests-*.ndjson")):
            requests |= requests_in(path)
        stored, failed = self.ingest([(results.read_text(encoding="utf-8"), str(results))], requests)
        self.report.batches.append({"imported": str(results), "answered": stored, "failed": len(failed)})
        self.on_status(f"batch: {stored} answers read from {results}, {len(failed)} without an answer")
        stats = await self._round()
        await self._sdk.close()
        return self._combined(stats)

    def _next_batch(self) -> dict[str, Any] | None:
        """The next round's requests file (those the budget holds), written down before anything is sent."""
        requests = self._affordable(self._deferred)
        if not requests:
            return None
        path, sha = self.folder.write_requests(requests)
        state = {"requests": path.name, "sha": sha, "count": len(requests)}
        self.folder.save(state)
        return state

    def _budget_stop(self) -> str:
        left = len(self._deferred)
        return f"budget reached: {left} requests' worst case no longer fits ({self.report.not_submitted} left out)"

    # --- rounds ---------------------------------------------------------------------------------------------

    async def _round(self) -> JobStats:
        """A defer-mode job: check what the cache answers, collect what it does not."""
        config = JobConfig(**{**vars(self.config), "defer": True})
        job = SynthJob(self.catalog, self.settings, self.endpoint, config, self.limits, Budget(), self.price)
        stats = await job.run()
        self._deferred = job.deferred
        total = self._rounds_total
        total.accepted.update(stats.accepted)
        total.rejected.update(stats.rejected)
        total.repaired += stats.repaired
        total.repair_requests += stats.repair_requests
        total.already_stored += stats.already_stored
        if self._existing is None:
            self._existing = stats.existing  # what the store held before this job's first round
        return stats

    def _affordable(self, requests: dict[str, str]) -> dict[str, str]:
        """The requests whose worst case the budget still holds, in key order; each one's reservation taken."""
        chosen = {}
        for key in sorted(requests):
            reservation = self.ledger.try_reserve(json.loads(requests[key]))
            if reservation is None:
                self.report.not_submitted += 1
                continue
            self._reserved[key], chosen[key] = reservation, requests[key]
        return chosen

    async def _finish(self, state: dict[str, Any]) -> None:
        """Upload, create, wait for and read one batch, resuming from whatever `state` says was done."""
        path = self.folder.root / state["requests"]
        if not state.get("input_file_id"):
            uploaded = await self._sdk.files.create(file=(path.name, path.read_bytes()), purpose="batch")
            state["input_file_id"] = uploaded.id
            self.folder.save(state)
        if not state.get("batch_id"):
            existing = await self._created_before(state["sha"])
            batch = existing or await self._sdk.batches.create(
                input_file_id=state["input_file_id"],
                endpoint=ENDPOINT,
                completion_window=self.options.completion_window,
                metadata={"anytasktune_requests": state["sha"]},
            )
            state["batch_id"] = batch.id
            self.folder.save(state)
            self.on_status(f"batch: {batch.id} submitted, {state.get('count', '?')} requests")
        batch = await self._wait(state["batch_id"])
        files = [await self._sdk.files.content(f) for f in (batch.output_file_id, batch.error_file_id) if f]
        stored, failed = self.ingest([(f.text, f"batch {batch.id}") for f in files], requests_in(path))
        entry = {"id": batch.id, "status": batch.status, "requests": state.get("count"), "answered": stored,
                 "failed": len(failed)}  # fmt: skip
        if batch.status != "completed":
            errors = getattr(batch, "errors", None)
            entry["errors"] = [e.message for e in (errors.data or [])] if errors and errors.data else []
            self.on_status(f"batch: {batch.id} ended {batch.status}; its unanswered requests go in the next round")
        self.report.batches.append(entry)
        self.report.rounds += 1
        self.folder.done()

    def ingest(self, results: list[tuple[str, str]], requests: dict[str, str]) -> tuple[int, dict[str, str]]:
        """Read result files (text, where from) of a batch over `requests` into the cache, and charge each request
        what it used in place of its reservation."""
        stored, failed = 0, {}
        cache = ResponseCache.in_store(self.settings.synth_dir)
        try:
            for text, source in results:
                got, lost = read_results(text, requests, cache, source)
                stored, failed = stored + got, failed | lost
            for key, canonical in requests.items():
                answer = cache.get(key)
                usage = (json.loads(answer[0]).get("usage") or {}) if answer else None
                # A resumed batch was reserved by the job that submitted it: it is sent, so it is charged here.
                reserved = self._reserved.pop(key, None)
                self.ledger.settle_now(
                    reserved or self.ledger.take(self.ledger.worst_case(json.loads(canonical))), usage
                )
                self.totals.responses += answer is not None
        finally:
            cache.close()
        return stored, failed

    async def _created_before(self, sha: str) -> Any:
        """A batch this job created for the same requests file before it was interrupted, or None."""
        async for batch in self._sdk.batches.list(limit=100):
            # One that failed, expired or was cancelled is done with: its requests go in a new batch.
            usable = batch.status not in ("failed", "expired", "cancelled", "cancelling")
            if (batch.metadata or {}).get("anytasktune_requests") == sha and usable:
                return batch
        return None

    async def _wait(self, batch_id: str) -> Any:
        last = None
        while True:
            batch = await self._sdk.batches.retrieve(batch_id)
            if batch.status != last:
                counts = batch.request_counts
                done = f" ({counts.completed}/{counts.total} done)" if counts else ""
                self.on_status(f"batch: {batch_id} {batch.status}{done}")
                last = batch.status
            if batch.status in TERMINAL:
                return batch
            await asyncio.sleep(self.options.poll_seconds)

    def _combined(self, last: JobStats) -> JobStats:
        """One report for the whole job: the records of every round, the requests and cost of every batch."""
        stats = self._rounds_total
        stats.requests, stats.responses, stats.cost = self.totals.requests, self.totals.responses, self.totals.cost
        stats.prompt_tokens, stats.completion_tokens = self.totals.prompt_tokens, self.totals.completion_tokens
        stats.cache_hits, stats.load_s, stats.started = last.cache_hits, last.load_s, self.totals.started
        stats.targets, stats.existing, stats.price_known = last.targets, self._existing or Counter(), last.price_known
        stats.stopped, stats.stop_kind = last.stopped, last.stop_kind
        stats.batch = self.report.to_dict()
        return stats
