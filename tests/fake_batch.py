"""The loopback server with OpenAI's Batch API as well: files and batches, over the same real HTTP.

`POST /v1/files` (multipart, purpose `batch`) stores a requests file; `POST /v1/batches` starts a batch over it that
moves validating → in_progress → completed after `batch_seconds`, answering every line as the chat endpoint would
(same answers, same `usage`); `GET /v1/batches/{id}`, `GET /v1/batches` (newest first), `POST /v1/batches/{id}/cancel`
and `GET /v1/files/{id}/content` behave as OpenAI's. Faults: `outcome` makes a batch end `failed` (no output),
`expired` (the first half answered, as OpenAI returns the part done in the window) or `cancelled`;
`error_every` sends every n-th request to the error file with a 500.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.fake_openai import FakeConfig, FakeOpenAI, _error


@dataclass
class BatchConfig:
    batch_seconds: float = 0.2  # how long a batch takes from creation to its end
    outcome: str = "completed"  # completed | failed | expired | cancelled
    outcomes: list[str] = field(default_factory=list)  # the first batches' outcomes, in order; then `outcome`
    error_every: int = 0  # every n-th request of a batch fails into the error file (0: none)


@dataclass
class BatchStats:
    uploads: int = 0
    batches_created: int = 0
    polls: int = 0
    lines_answered: int = 0
    created_ids: list[str] = field(default_factory=list)
    answered: Counter[str] = field(default_factory=Counter)  # custom_id → times answered, over every batch


class FakeBatchServer(FakeOpenAI):
    def __init__(self, config: FakeConfig | None = None, batch: BatchConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.batch = batch or BatchConfig()
        self.batch_stats = BatchStats()
        self.files: dict[str, tuple[str, bytes]] = {}  # id → (purpose, content)
        self.batches: dict[str, dict[str, Any]] = {}

    async def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, Any]:
        route = path.split("/v1", 1)[-1]
        if route == "/files" and method == "POST":
            return self._upload(headers, body)
        if route.startswith("/files/") and route.endswith("/content") and method == "GET":
            found = self.files.get(route.split("/")[2])
            return (200, {}, found[1]) if found else (404, {}, _error("no such file", "invalid_request_error", None))
        if route == "/batches" and method == "POST":
            return self._create(json.loads(body))
        if route == "/batches" and method == "GET":
            newest = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)
            return 200, {}, {"object": "list", "data": newest, "has_more": False}
        if route.startswith("/batches/"):
            batch = self.batches.get(route.split("/")[2])
            if batch is None:
                return 404, {}, _error("no such batch", "invalid_request_error", None)
            if route.endswith("/cancel") and method == "POST":
                batch["status"] = "cancelled" if batch["status"] in ("completed", "failed") else "cancelling"
                return 200, {}, batch
            self.batch_stats.polls += 1
            return 200, {}, batch
        return await super()._handle(method, path, headers, body)

    def _upload(self, headers: dict[str, str], body: bytes) -> tuple[int, dict, Any]:
        fields = _multipart(headers.get("content-type", ""), body)
        if "file" not in fields or fields.get("purpose", b"").decode() != "batch":
            return 400, {}, _error("a file with purpose batch is required", "invalid_request_error", None, "file")
        file_id = "file-" + hashlib.sha256(fields["file"]).hexdigest()[:24]
        self.files[file_id] = ("batch", fields["file"])
        self.batch_stats.uploads += 1
        return 200, {}, _file_object(file_id, "batch", len(fields["file"]))

    def _create(self, request: dict[str, Any]) -> tuple[int, dict, Any]:
        if request.get("input_file_id") not in self.files:
            return 400, {}, _error("input_file_id not found", "invalid_request_error", None, "input_file_id")
        number = len(self.batches) + 1
        batch_id = f"batch_{number:04d}"
        lines = self.files[request["input_file_id"]][1].decode().splitlines()
        now = int(time.time())
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": request.get("endpoint"),
            "errors": None,
            "input_file_id": request["input_file_id"],
            "completion_window": request.get("completion_window", "24h"),
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now + number,  # strictly increasing, so "newest first" is well defined
            "in_progress_at": None,
            "completed_at": None,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": request.get("metadata"),
        }
        self.batch_stats.batches_created += 1
        self.batch_stats.created_ids.append(batch_id)
        asyncio.get_running_loop().create_task(self._run(batch_id, lines))
        return 200, {}, self.batches[batch_id]

    async def _run(self, batch_id: str, lines: list[str]) -> None:
        batch = self.batches[batch_id]
        await asyncio.sleep(self.batch.batch_seconds / 2)
        batch["status"], batch["in_progress_at"] = "in_progress", int(time.time())
        await asyncio.sleep(self.batch.batch_seconds / 2)
        if batch["status"] == "cancelling":
            batch["status"] = "cancelled"
            return
        number = self.batch_stats.created_ids.index(batch_id)
        outcome = self.batch.outcomes[number] if number < len(self.batch.outcomes) else self.batch.outcome
        if outcome == "failed":
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "batch failed"}]}
            return
        answered = lines[: len(lines) // 2] if outcome == "expired" else lines
        output, errors = [], []
        for number, line in enumerate(answered, start=1):
            request = json.loads(line)
            body = json.dumps(request["body"], ensure_ascii=False).encode()
            request_id = "req_" + hashlib.sha256(body + batch_id.encode()).hexdigest()[:20]
            entry = {"id": f"batch_req_{number}", "custom_id": request["custom_id"]}
            if self.batch.error_every and number % self.batch.error_every == 0:
                failure = _error("The server had an error while processing your request.", "server_error", None)
                errors.append(entry | {"response": {"status_code": 500, "request_id": request_id, "body": failure}})
                continue
            answer = self._completion(request["body"], body, request_id, None)
            output.append(entry | {"response": {"status_code": 200, "request_id": request_id, "body": answer}})
            self.batch_stats.lines_answered += 1
            self.batch_stats.answered[request["custom_id"]] += 1
        batch["output_file_id"] = self._store_result(batch_id, "output", output)
        batch["error_file_id"] = self._store_result(batch_id, "errors", errors) if errors else None
        batch["request_counts"] = {"total": len(lines), "completed": len(output), "failed": len(errors)}
        batch["status"] = {"expired": "expired", "cancelled": "cancelled"}.get(outcome, "completed")
        batch["completed_at"] = int(time.time())

    def _store_result(self, batch_id: str, kind: str, rows: list[dict[str, Any]]) -> str:
        content = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
        file_id = f"file-{batch_id}-{kind}"
        self.files[file_id] = ("batch_output", content)
        return file_id


def _file_object(file_id: str, purpose: str, size: int) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "bytes": size, "created_at": int(time.time()), "filename": "requests.jsonl",
            "purpose": purpose, "status": "processed"}  # fmt: skip


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name."""
    boundary = content_type.split("boundary=", 1)[-1].strip('"').encode()
    fields = {}
    for part in body.split(b"--" + boundary):
        head, _, value = part.partition(b"\r\n\r\n")
        if b'name="' not in head:
            continue
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        fields[name] = value.removesuffix(b"\r\n")
    return fields
