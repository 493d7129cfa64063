"""The baseline of `make bench-synth`: a bare AsyncOpenAI loop with a semaphore, nothing else.

It sends the same requests the engine would send first (slot 0.. of every task and language) with the same
concurrency, and prints one JSON line: requests, elapsed seconds, requests/s. No cache, no checks, no store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx2
import openai

from catalog import load_catalog
from catalog.settings import Settings
from synth.prompts import Options, plan_slot, records_request


def bodies(count: int, model: str, records_per_request: int) -> list[dict]:
    catalog = load_catalog(Settings.from_env().tasks_dir)
    options = Options(records_per_request=records_per_request, exemplars=0)
    pairs = [(spec, lang) for spec in catalog for lang in ("en", "zh")]
    out = []
    for index in range(count):
        spec, lang = pairs[index % len(pairs)]
        plan = plan_slot(spec, lang, index // len(pairs), [], options)
        out.append(records_request(spec, plan, model, options, json_in_prompt=False))
    return out


async def run(base_url: str, count: int, concurrency: int, model: str, records_per_request: int) -> dict:
    requests = bodies(count, model, records_per_request)
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = openai.AsyncOpenAI(
        base_url=base_url,
        api_key="bench",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(limits=limits),
    )
    semaphore = asyncio.Semaphore(concurrency)
    done = 0

    async def one(body: dict) -> None:
        nonlocal done
        async with semaphore:
            await client.chat.completions.create(**body)
            done += 1

    started, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(one(b) for b in requests))
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    await client.close()
    return {
        "requests": done,
        "elapsed_s": round(elapsed, 3),
        "requests_per_s": round(done / elapsed, 2),
        "cpu_s": round(cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--records-per-request", type=int, default=4)
    parser.add_argument("--model", default="fake-model")
    args = parser.parse_args()
    result = asyncio.run(run(args.base_url, args.requests, args.concurrency, args.model, args.records_per_request))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
