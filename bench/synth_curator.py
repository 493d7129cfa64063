"""The Curator peer of `make bench-synth-peers`: the baseline's requests sent through Bespoke Labs' Curator.

It runs with Curator's own environment (.venv-curator, made by make/peers.mk), which cannot import this repo's
packages, so the request bodies come from bench/synth_baseline.py's `bodies()` run by the repo's venv in a child
process, before any timing. Curator then sends them with its OpenAI online backend to --base-url: the same model,
messages, temperature and response_format per request (the last two as Curator's per-row generation_params), the
same concurrency, no retries. Its rate limiter is set far above anything the loopback server can serve, so only the
concurrency bounds it. Timed: the one LLM call, from its request file through the requests to the Arrow dataset of
answers (the part around the request loop is about a tenth of it at 600 requests); not the imports, the bodies or
the probe request Curator sends when it is set up. Prints one JSON line: requests answered, elapsed seconds,
requests/s, CPU seconds, version, and what the server counted. Curator's own log and progress go to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REPO_PYTHON = REPO / ".venv" / "bin" / "python"

# Set before Curator, litellm, posthog or datasets are imported: they read these at import time.
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm fetches its model cost map from the web otherwise
    "TELEMETRY_ENABLED": "false",  # Curator's PostHog events at the end of every run
    "CURATOR_VIEWER": "0",  # no hosted viewer session (the default, pinned in case the caller's env sets it)
    "CURATOR_DISABLE_RICH_DISPLAY": "1",  # a plain tqdm bar and log lines on stderr, not a live rich panel
    "HF_HUB_OFFLINE": "1",  # `datasets` holds the rows; nothing is to be looked up on the Hub
    "HF_DATASETS_OFFLINE": "1",
}

# Builds the bodies with the repo's own code; argv: repo root, out path, count, model, records per request.
BODIES_CODE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from bench.synth_baseline import bodies
with open(sys.argv[2], "w") as out:
    json.dump(bodies(int(sys.argv[3]), sys.argv[4], int(sys.argv[5])), out, ensure_ascii=False)
"""

# Far above the 640 req/s the bench's fastest server allows (38,400 a minute), and the tokens Curator reserves for
# each request (its tiktoken count of the prompt plus 4,096 assumed output tokens), so they never hold a request back.
MAX_REQUESTS_PER_MINUTE = 100_000_000
MAX_TOKENS_PER_MINUTE = 1_000_000_000_000


def bundled_tiktoken_dir() -> str:
    """litellm's copy of tiktoken's encodings: Curator counts tokens with cl100k_base, which tiktoken downloads
    unless its cache dir has it (litellm points the cache here only when its own tokenizer module is imported)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("synth_curator: litellm (a Curator dependency) is not installed here")
    return str(Path(spec.submodule_search_locations[0]) / "litellm_core_utils" / "tokenizers")


def guard_network() -> list[str]:
    """Refuse any connection or name lookup off loopback, so a lookup Curator or a dependency tries fails at once.

    Returns the list the refused targets are noted in, for the report on stderr.
    """
    refused: list[str] = []
    local = ("127.", "::1", "localhost")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
        elif event == "socket.connect" and isinstance(args[1], tuple):
            host = str(args[1][0])
        else:
            return
        if not host.startswith(local):
            refused.append(f"{event} {host}")
            raise OSError(f"synth_curator: offline benchmark, refused {event} to {host}")

    sys.addaudithook(hook)
    return refused


def build_bodies(work: Path, count: int, model: str, records_per_request: int) -> list[dict[str, Any]]:
    """The baseline's request bodies, made by the repo's venv (this interpreter cannot import the repo)."""
    path = work / "bodies.json"
    command = [str(REPO_PYTHON), "-c", BODIES_CODE, str(REPO), str(path), str(count), model, str(records_per_request)]
    subprocess.run(command, check=True, cwd=REPO, stdout=sys.stderr)
    return json.loads(path.read_text())


def received(base_url: str) -> int:
    """Chat requests the fake server has counted (its own /_stats endpoint, not OpenAI's)."""
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/_stats", timeout=10) as response:
        return int(json.loads(response.read())["received"])


def run(args: argparse.Namespace, refused: list[str]) -> dict[str, Any]:
    requests = build_bodies(args.work, args.requests, args.model, args.records_per_request)
    if {body["model"] for body in requests} != {args.model}:
        sys.exit("synth_curator: the bodies name another model than --model")

    from bespokelabs import curator
    from datasets import Dataset

    class Replay(curator.LLM):
        """Sends each row's messages as they are and keeps the answer's text; no parsing, as the baseline."""

        def prompt(self, row: dict[str, Any]) -> list[dict[str, Any]]:
            return json.loads(row["messages"])

        def parse(self, row: dict[str, Any], response: str) -> dict[str, Any]:
            return {"response": response}

    # Messages as JSON text, so Arrow cannot reshape them. Everything else in a body (temperature, response_format)
    # goes in the row's `generation_params`, a JSON string Curator merges into that request's top level: each task
    # has its own response schema, and Curator's one-per-LLM `response_format` (a pydantic model) cannot carry that.
    rows = [
        {
            "messages": json.dumps(body["messages"], ensure_ascii=False),
            "generation_params": json.dumps({k: v for k, v in body.items() if k not in ("model", "messages")}),
        }
        for body in requests
    ]
    dataset = Dataset.from_list(rows)
    seen_at_start = received(args.base_url)
    llm = Replay(
        model_name=args.model,
        backend="openai",  # Curator's own aiohttp client for OpenAI-compatible servers (not litellm)
        backend_params={
            "base_url": args.base_url,
            "api_key": os.environ.get("OPENAI_API_KEY", "bench"),
            "max_concurrent_requests": args.concurrency,  # the same bound as the baseline's semaphore
            "max_requests_per_minute": MAX_REQUESTS_PER_MINUTE,
            "max_tokens_per_minute": MAX_TOKENS_PER_MINUTE,
            "max_retries": 0,  # as the baseline: a failure is a failure, and the server counts each request once
            "require_all_responses": True,  # any failed request fails the run (exit 1) rather than a short count
        },
    )
    # Building the processor sends one probe request (an empty chat, to read rate-limit headers); not timed.
    seen_before = received(args.base_url)
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=args.work))  # a fresh cache: never a cached answer
    started, cpu = time.monotonic(), time.process_time()
    result = llm(dataset, working_dir=str(cache))
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    sent = received(args.base_url) - seen_before
    answered = len(result.dataset)
    if sent != args.requests or answered != args.requests:
        sys.exit(f"synth_curator: asked {args.requests}, the server received {sent}, Curator answered {answered}")
    if refused:
        print(f"synth_curator: refused off-loopback lookups: {sorted(set(refused))}", file=sys.stderr)
    return {
        "requests": answered,
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(answered / elapsed, 2),
        "cpu_s": round(cpu, 3),
        "version": curator.__version__,
        "server_received": sent,
        "setup_requests": seen_before - seen_at_start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--records-per-request", type=int, default=4)
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--work", type=Path, required=True, help="a folder for the bodies and Curator's cache")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ.update(OFFLINE_ENV)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", bundled_tiktoken_dir())
    os.environ["CURATOR_CACHE_DIR"] = str(args.work / "curator-cache")  # anything not given working_dir stays here
    # Only the result line goes to the real stdout: Curator, tqdm and the child print to what is then stderr.
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    refused = guard_network()
    result = run(args, refused)
    print(json.dumps(result), file=result_out, flush=True)


if __name__ == "__main__":
    main()
