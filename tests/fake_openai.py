"""An OpenAI-compatible Chat Completions server on loopback, for tests, the benchmark and the README example.

It speaks the real protocol over real HTTP/1.1 (keep-alive, JSON bodies, `usage`, `x-request-id`, `Retry-After`)
and answers from the request itself: the JSON schema of `response_format` (or, when a client falls back to JSON in
the prompt, the schema the prompt quotes) is filled with text in the target language the prompt names. Answers are
a pure function of the request body, so a repeated request gets the same answer.

Capacity and latency model a real endpoint: at most `capacity` requests are served at once (more get 429 with
Retry-After) and each takes `latency` seconds. Faults are injected by request number: `--fault 500:7` answers every
7th request with a 500.

    python -m tests.fake_openai --port 8765 --latency 0.5 --capacity 128
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

FAULTS = (
    "429",
    "quota",
    "500",
    "fixable",
    "slow",
    "invalid_json",
    "length",
    "refusal",
    "parrot",
    "pii",
    "wrong_language",
    "bad_draft",
)
_EN_TEXT = (
    "the patient said pain started after dinner last week and it got worse at night while walking to work with "
    "family history of problems bank account transfer fee card loan insurance claim policy refund delayed order "
    "hotel room noisy staff friendly manager contract tenant landlord deposit court employer salary overtime "
    "interview project team python data analysis senior engineer customer support reply sorry apology weekend "
    "morning tired anxious worried sleep stress exam deadline colleague friend mother brother doctor nurse clinic "
    "pharmacy dose tablet fever cough headache stomach knee back shoulder rash itchy swollen dizzy breath chest"
)
_EN_WORDS = _EN_TEXT.split()
# English as a model writes it has function words between the content words (about every third word), and so
# reads as English without a language model (validation.language); a bag of content words alone would not.
_EN_FUNCTION_WORDS = ("the", "and", "with", "that", "for", "about", "but", "when", "which")
_ZH_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多"
    "定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由"
    "其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意"
    "建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统"
    "接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府研质信医院病痛药治疗银行贷款保险合同"
)
_ZH_CHARS = "".join(dict.fromkeys(_ZH_CHARS))
_TARGET_LANG = re.compile(r"(?:Target language:|目标语言：)[^\n]*[(（](en|zh)[)）]")
_STEERED = re.compile(r"correct outputs, in this order: (.+?)\. Write each input|正确输出依次是：(.+?)。请这样写输入")
_REPAIR_TURN = re.compile(r"^ +(?:errors: |错误：)", re.M)  # a request listing records with their errors
_EXAMPLE_INPUT = re.compile(r"^(?:input: |输入：)(.+)$", re.M)
_SCHEMA_BLOCK = re.compile(r"```json\s*(\{.*?\})\s*```", re.S)


@dataclass
class FakeConfig:
    latency: float = 0.0
    capacity: int = 1024
    faults: dict[str, int] = field(default_factory=dict)  # fault kind → every n-th request gets it
    slow_seconds: float = 5.0  # how long a "slow" fault keeps the client waiting
    retry_after: float = 0.2  # seconds, sent in Retry-After (rounded up) and retry-after-ms
    reject_response_format: bool = False  # answer 400 to json_schema response_format, as some servers do
    reject_message: str = "response_format json_schema is not supported"  # ... with this message
    reject_param: str | None = None  # ... and this `param` (OpenAI names the parameter at fault)
    reject_strict: bool = False  # answer 400 to `strict: true` (as servers without constrained decoding may)
    ignore_response_format: bool = False  # take response_format without a word and answer prose, as `transformers
    # serve` does: only a schema quoted in the prompt shapes the answer then
    api_key: str | None = None  # when set, other bearer tokens get 401
    fixes_when_told: bool = True  # a "fixable" slip is not repeated in a request that lists records' errors
    judge_score: int | None = None  # fixes every judge score (the `score` fields) to this value
    fence_answers: bool = False  # wrap every JSON answer in a ```json fence, with a line of chatter before it


@dataclass
class Stats:
    """What the server saw; read from tests while it runs (plain counters, the GIL keeps them consistent)."""

    received: int = 0
    served: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    bodies: Counter[str] = field(default_factory=Counter)  # sha256 of each chat request body → times received
    auth_headers: set[str] = field(default_factory=set)
    in_flight: int = 0
    peak_in_flight: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "served": self.served,
            "faults": dict(self.faults),
            "repeated": self.repeated(),
            "peak_in_flight": self.peak_in_flight,
        }

    def repeated(self) -> int:
        """Requests whose exact body was received more than once (each counts its extra copies)."""
        return sum(n - 1 for n in self.bodies.values() if n > 1)


class FakeOpenAI:
    """The server; `serve_in_thread()` for tests, `serve_forever()` for a standalone process."""

    def __init__(self, config: FakeConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.config = config or FakeConfig()
        self.host, self.port = host, port
        self.stats = Stats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._connection, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        print(f"fake OpenAI-compatible server on {self.base_url}", flush=True)
        await self._server.serve_forever()

    def serve_in_thread(self) -> FakeOpenAI:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:  # open keep-alive connections: end them before the loop goes
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            self._loop.stop()  # type: ignore[union-attr]

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        if self._thread is not None:
            self._thread.join(10)

    # --- HTTP/1.1 -------------------------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, extra, payload = await self._handle(method, path.split("?")[0], headers, body)
                raw = isinstance(payload, bytes)  # a file's content, as GET /files/{id}/content sends it
                data = payload if raw else json.dumps(payload, ensure_ascii=False).encode()
                kind = "application/octet-stream" if raw else "application/json"
                out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}", f"content-type: {kind}"]
                out += [f"{k}: {v}" for k, v in extra.items()] + [f"content-length: {len(data)}", "", ""]
                writer.write("\r\n".join(out).encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping: end the connection quietly
        finally:
            writer.close()

    async def _handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, Any]:
        request_id = "req_" + hashlib.sha256(body + str(self.stats.received).encode()).hexdigest()[:20]
        extra = {"x-request-id": request_id}
        auth = headers.get("authorization", "")
        self.stats.auth_headers.add(auth)
        if self.config.api_key is not None and auth != f"Bearer {self.config.api_key}":
            return 401, extra, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        if method == "GET" and path.endswith("/_stats"):  # not OpenAI's: lets a benchmark count what arrived
            return 200, extra, self.stats.summary()
        if method == "GET" and path.endswith("/models"):
            return 200, extra, {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "me"}]}
        if method != "POST" or not path.endswith("/chat/completions"):
            return 404, extra, _error(f"no route {method} {path}", "invalid_request_error", None)
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            return 400, extra, _error("body is not JSON", "invalid_request_error", None)
        self.stats.received += 1
        self.stats.bodies[hashlib.sha256(body).hexdigest()] += 1
        number = self.stats.received
        fault = next((kind for kind, every in self.config.faults.items() if every and number % every == 0), None)
        if fault:
            self.stats.faults[fault] += 1
        response_format = request.get("response_format") or {}
        if self.config.reject_strict and (response_format.get("json_schema") or {}).get("strict"):
            self.stats.faults["strict_rejected"] += 1
            error = _error("strict mode is not supported", "invalid_request_error", None, "response_format")
            return 400, extra, error
        if self.config.reject_response_format and response_format.get("type") == "json_schema":
            error = _error(self.config.reject_message, "invalid_request_error", None, self.config.reject_param)
            return 400, extra, error
        if fault == "quota":  # OpenAI's answer once the account's credit is used up: a 429 no waiting cures
            message = "You exceeded your current quota, please check your plan and billing details."
            return 429, extra, _error(message, "insufficient_quota", "insufficient_quota")
        if fault == "429" or self.stats.in_flight >= self.config.capacity:
            self.stats.faults["over_capacity"] += fault != "429"
            retry = {
                "retry-after": str(max(1, round(self.config.retry_after))),
                "retry-after-ms": str(int(self.config.retry_after * 1000)),
            }
            return 429, extra | retry, _error("Rate limit reached; retry later.", "requests", "rate_limit_exceeded")
        self.stats.in_flight += 1
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
        try:
            await asyncio.sleep(self.config.slow_seconds if fault == "slow" else self.config.latency)
        finally:
            self.stats.in_flight -= 1
        if fault == "500":
            return 500, extra, _error("The server had an error while processing your request.", "server_error", None)
        self.stats.served += 1
        return 200, extra, self._completion(request, body, request_id, fault)

    # --- answers --------------------------------------------------------------------------------------------

    def _completion(self, request: dict[str, Any], body: bytes, request_id: str, fault: str | None) -> dict:
        rng = random.Random(hashlib.sha256(body).digest())
        prompt = "\n".join(str(m.get("content", "")) for m in request.get("messages", []))
        lang_match = _TARGET_LANG.search(prompt)
        lang = lang_match.group(1) if lang_match else "en"
        schema = _schema_of({} if self.config.ignore_response_format else request, prompt)
        value = _Filler(schema, lang, rng, self.config.judge_score).value(schema) if schema else {"text": "ok"}
        examples = _EXAMPLE_INPUT.findall(prompt)
        if fault == "parrot" and examples and isinstance(value, dict) and isinstance(value.get("records"), list):
            # A model that copies its exemplars with a word changed: near-duplicates of the seeds.
            for record in value["records"]:
                record["input"] = examples[0] + (" 好" if lang == "zh" else " ok")
        steered = _STEERED.search(prompt)
        if steered and isinstance(value, dict) and isinstance(value.get("records"), list):
            # A model that follows the instruction to give the records these outputs, in order.
            wanted = re.split(r"; |；", steered.group(1) or steered.group(2))
            for record, label in zip(value["records"], wanted, strict=False):
                record["output"] = label
        told = _REPAIR_TURN.search(prompt) is not None and self.config.fixes_when_told
        if _is_task_draft(value):
            self._spoil_draft(value, fault, told)
        if fault == "fixable" and not told and isinstance(value, dict) and value.get("records"):
            # A model that slips on one record in a way the checks catch, and fixes it when shown the errors.
            self.stats.faults["fixable_slips"] += 1
            first = value["records"][0]
            first["output"] = {} if isinstance(first.get("output"), dict) else ""
        if fault in ("pii", "wrong_language") and isinstance(value, dict) and isinstance(value.get("records"), list):
            for record in value["records"]:
                if fault == "pii":  # a model that leaks a phone number into its record
                    record["input"] = str(record.get("input", "")) + (
                        " 电话13912345678。" if lang == "zh" else " Call 415-555-2671."
                    )
                else:  # a model that answers in the wrong language
                    record["input"] = (
                        "東京の自動車部品メーカーは、海外需要の減少により通期の業績予想を下方修正したと発表した。"
                    )
        content: str | None = json.dumps(value, ensure_ascii=False)
        if schema is None and self.config.ignore_response_format:  # told no format at all: a chatty answer
            content = "Of course! Here are a few examples you could use:\n1. A customer asks about a fee."
        finish, refusal = "stop", None
        if self.config.fence_answers and content is not None:
            content = f"Here is the JSON you asked for:\n```json\n{content}\n```"
        if fault == "invalid_json":
            content = "Sure! Here are the records: {records: [oops, " + content[:40]
        elif fault == "length":
            content, finish = content[: len(content) * 2 // 3], "length"
        elif fault == "refusal":
            content, refusal = None, "I'm sorry, but I can't help with that request."
        prompt_tokens = max(1, len(prompt) // 4)
        completion_tokens = max(1, len(content or refusal or "") // 4)
        limit = request.get("max_completion_tokens", request.get("max_tokens"))
        if limit is not None and content is not None and completion_tokens > int(limit):  # cut off, as servers do
            content, finish, completion_tokens = content[: int(limit) * 4], "length", int(limit)
        return {
            "id": "chatcmpl-" + request_id[4:],
            "object": "chat.completion",
            "created": 1_700_000_000 + int.from_bytes(hashlib.sha256(body).digest()[:3], "big"),
            "model": str(request.get("model", "fake-model")),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _spoil_draft(self, value: dict[str, Any], fault: str | None, told: bool) -> None:
        """A model drafting a task: one that repeats a label and fixes it when shown the error (`fixable`), or one whose
        drafts never have a usable output, repair turn or not (`bad_draft`)."""
        output = value["output"]
        if fault == "fixable" and not told and len(output.get("labels", [])) >= 2:
            self.stats.faults["fixable_slips"] += 1
            output["labels"][1] = dict(output["labels"][0])
        if fault == "bad_draft":
            output["labels"], output["fields"] = [], []


def _is_task_draft(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("output"), dict) and "scenarios" in value


def _schema_of(request: dict[str, Any], prompt: str) -> dict[str, Any] | None:
    """The schema the answer must fill: response_format's, else the last JSON schema quoted in the prompt."""
    response_format = request.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        return response_format["json_schema"]["schema"]
    blocks = [b for b in _SCHEMA_BLOCK.findall(prompt) if '"type"' in b]
    for block in reversed(blocks):
        try:
            return json.loads(block)
        except json.JSONDecodeError:
            continue
    return None


class _Filler:
    """A value that satisfies a JSON schema, with novel text in the target language for every string."""

    def __init__(self, root: dict[str, Any], lang: str, rng: random.Random, judge_score: int | None):
        self.root, self.lang, self.rng, self.judge_score = root, lang, rng, judge_score

    def value(self, schema: dict[str, Any], key: str = "") -> Any:
        if key in ("en", "zh") and key != self.lang:  # a per-language object's value is in that language
            saved, self.lang = self.lang, key
            try:
                return self.value(schema, key)
            finally:
                self.lang = saved
        if "$ref" in schema:
            return self.value(self.root.get("$defs", {})[schema["$ref"].rsplit("/", 1)[-1]], key)
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        if "anyOf" in schema or "oneOf" in schema:
            options = [s for s in schema.get("anyOf", schema.get("oneOf")) if s.get("type") != "null"]
            return self.value(options[0], key)
        kind = schema.get("type", "string")
        if isinstance(kind, list):
            if "null" in kind and "pattern" in schema:
                return None
            kind = next(k for k in kind if k != "null")
        if kind == "object":
            return {name: self.value(sub, name) for name, sub in schema.get("properties", {}).items()}
        if kind == "array":
            return self._array(schema, key)
        if kind in ("integer", "number"):
            if key == "score" and self.judge_score is not None:
                return self.judge_score
            low = schema.get("minimum", 0)
            high = schema.get("maximum", low + 5)
            return low if key != "score" else self.rng.randint(low, high)
        if kind == "boolean":
            return True
        if "pattern" in schema:
            return self._matching(schema["pattern"], schema.get("maxLength", 40))
        return self._text(schema.get("minLength", 1), schema.get("maxLength", 400))

    def _matching(self, pattern: str, max_length: int) -> str:
        """A string for the patterns a model is asked for: snake_case ids and short capital codes."""
        if pattern.startswith("^[A-Z]"):
            return self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + str(self.rng.randint(1, 9))
        words = [w for w in _EN_WORDS if w.isalpha()]
        return "_".join(self.rng.sample(words, 2))[:max_length]

    def _array(self, schema: dict[str, Any], key: str = "") -> list[Any]:
        items = schema.get("items", {})
        count = max(schema.get("minItems", 1), 1)
        count = min(count, schema.get("maxItems", count))
        target = self.root.get("$defs", {}).get(items.get("$ref", "#/").rsplit("/", 1)[-1], items)
        if "enum" in target:
            return self.rng.sample(target["enum"], min(count, len(target["enum"])))
        return [self.value(items, key) for _ in range(count)]

    def _text(self, min_length: int, max_length: int) -> str:
        if self.lang == "zh":
            text = "".join(self.rng.choice(_ZH_CHARS) for _ in range(max(min_length, 24) + self.rng.randint(0, 30)))
            return text[:max_length] + "。"[: max(0, max_length - len(text[:max_length]))]
        words = [self.rng.choice(_EN_WORDS), self.rng.choice(_EN_FUNCTION_WORDS)]  # the first one is capitalised
        while len(" ".join(words)) < max(min_length, 90) + self.rng.randint(0, 90):
            words.append(self.rng.choice(_EN_WORDS if self.rng.random() < 0.7 else _EN_FUNCTION_WORDS))
        text = " ".join(words).capitalize() + "."
        if len(text) > max_length:  # whole words, as a model keeping to a length writes (a cut "che" is Italian)
            text = text[: max_length + 1].rsplit(" ", 1)[0][:max_length]
        return text


def _error(message: str, kind: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests"}
_REASONS[500] = "Internal Server Error"


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible Chat Completions server on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each request takes")
    parser.add_argument("--capacity", type=int, default=1024, help="requests served at once; more get 429")
    parser.add_argument("--fault", action="append", default=[], help=f"KIND:EVERY, KIND one of {', '.join(FAULTS)}")
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument("--reject-response-format", action="store_true")
    parser.add_argument("--api-key", default=None, help="accept only this bearer token")
    args = parser.parse_args()
    faults = {}
    for item in args.fault:
        kind, _, every = item.partition(":")
        if kind not in FAULTS or not every.isdigit():
            parser.error(f"--fault {item!r}: expected KIND:EVERY with KIND in {', '.join(FAULTS)}")
        faults[kind] = int(every)
    config = FakeConfig(
        latency=args.latency,
        capacity=args.capacity,
        faults=faults,
        slow_seconds=args.slow_seconds,
        reject_response_format=args.reject_response_format,
        api_key=args.api_key,
    )
    server = FakeOpenAI(config, args.host, args.port)
    started = time.monotonic()
    try:
        asyncio.run(server.serve_forever())
    except KeyboardInterrupt:
        print(f"served {server.stats.served} in {time.monotonic() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
