"""`make bench-synth`: the synthesizer's throughput, memory and re-run cost against the loopback server.

The server (tests/fake_openai.py, its own process) answers in 0.5 s and serves 128 requests at once, so no client
can exceed 256 requests/s. In one run this measures:
  1. the baseline: a bare AsyncOpenAI loop with a semaphore of 128 (bench/synth_baseline.py), 5,000 requests;
  2. the engine: `anytasktune synth` over every task and language until 5,000 requests' worth of records are
     accepted (concurrency 128, 4 records a request), with its peak memory (the process's max RSS);
  3. the same job again: it must send zero requests and finish in under 5 s;
  4. the repair turn: against a server whose every other answer has one record with an empty output (and which fixes
     it when shown the error), the same small job with --no-repair and with --repair: records accepted per record
     asked in first-turn requests, and requests sent per record accepted.
Each figure is printed as a ratio against its limit, and the engine's against the baseline's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LATENCY, CAPACITY = 0.5, 128
LIMIT = CAPACITY / LATENCY  # requests/s no client can beat
REQUESTS = int(os.environ.get("BENCH_SYNTH_REQUESTS", "5000"))
RECORDS_PER_REQUEST = 4
LANGS = ("en", "zh")
TASKS = 25
MEMORY_LIMIT_MB = 300
RERUN_LIMIT_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_stats(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/_stats", timeout=10) as response:
        return json.loads(response.read())


def run_measured(command: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """stdout, wall seconds, and peak RSS in MB of one child process (its own rusage, not the sum of children)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # reaps the child itself, so its rusage is its own
        wall = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            sys.exit(f"bench-synth: {' '.join(command[:4])} failed:\n{err.read()[-2000:]}")
        return out.read(), wall, usage.ru_maxrss / 1024


REPAIR_TASKS, REPAIR_PER_TASK = "fin_intent,med_triage,law_sentence_prediction,hr_resume_parse", 60


def repair_run(mode: str) -> dict:
    """One small job against a server that slips on every other answer; its JSON report."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--port", str(port), "--latency", "0.05", "--fault", "fixable:2"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench-repair-"))
    try:
        server.stdout.readline()
        shutil.copytree(REPO / "datasets" / "tasks", work / "tasks")
        shutil.copytree(REPO / "datasets" / "seeds", work / "seeds")
        env = {**os.environ, "ANYTASKTUNE_DATA_DIR": str(work), "OPENAI_API_KEY": "bench"}
        env.pop("OPENAI_BASE_URL", None)
        out, _, _ = run_measured(
            [sys.executable, "-m", "cli", "synth", "--tasks", REPAIR_TASKS, "--per-task", str(REPAIR_PER_TASK),
             "--records-per-request", str(RECORDS_PER_REQUEST), "--concurrency", "16", "--model", "fake-model",
             "--base-url", base_url, "--json", "--no-progress", mode],
            env,
        )  # fmt: skip
        return json.loads(out)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    per_task = REQUESTS * RECORDS_PER_REQUEST // (TASKS * len(LANGS))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--port", str(port), "--latency", str(LATENCY),
         "--capacity", str(CAPACITY)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    try:
        server.stdout.readline()  # "fake OpenAI-compatible server on ..." once it listens
        shutil.copytree(REPO / "datasets" / "tasks", work / "tasks")
        shutil.copytree(REPO / "datasets" / "seeds", work / "seeds")
        env = {**os.environ, "ANYTASKTUNE_DATA_DIR": str(work), "OPENAI_API_KEY": "bench"}
        env.pop("OPENAI_BASE_URL", None)

        baseline_out, _, _ = run_measured(
            [sys.executable, "bench/synth_baseline.py", "--base-url", base_url, "--requests", str(REQUESTS),
             "--concurrency", str(CAPACITY), "--records-per-request", str(RECORDS_PER_REQUEST)],
            env,
        )  # fmt: skip
        baseline = json.loads(baseline_out)

        synth = [
            sys.executable, "-m", "cli", "synth", "--tasks", "all", "--langs", ",".join(LANGS),
            "--per-task", str(per_task), "--records-per-request", str(RECORDS_PER_REQUEST),
            "--concurrency", str(CAPACITY), "--model", "fake-model", "--base-url", base_url, "--json",
            "--no-progress",
        ]  # fmt: skip
        before = server_stats(base_url)["received"]
        engine_out, engine_wall, engine_peak = run_measured(synth, env)
        engine = json.loads(engine_out)
        received = server_stats(base_url)["received"] - before

        before = server_stats(base_url)["received"]
        rerun_out, rerun_wall, _ = run_measured(synth, env)
        rerun = json.loads(rerun_out)
        rerun_received = server_stats(base_url)["received"] - before
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)

    repair = {mode: repair_run(mode) for mode in ("--no-repair", "--repair")}

    loop_s = engine["elapsed_s"]
    rps = engine["requests"] / loop_s
    records_rps = engine["accepted"] / loop_s / RECORDS_PER_REQUEST
    base_rps = baseline["requests_per_s"]

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISS"

    print(f"bench-synth: {REQUESTS} requests, latency {LATENCY}s, capacity {CAPACITY} -> limit {LIMIT:.0f} req/s, "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(f"  baseline  bare AsyncOpenAI + semaphore: {base_rps:7.1f} req/s = {base_rps / LIMIT:.2f} of limit")
    print(f"  engine    requests/s:                    {rps:7.1f} req/s = {rps / LIMIT:.2f} of limit "
          f"(>= 0.90 {verdict(rps / LIMIT >= 0.9)}), {rps / base_rps:.2f}x baseline  "
          f"[{engine['requests']} sent, server saw {received}]")  # fmt: skip
    print(f"  engine    accepted records/s per asked:  {records_rps:7.1f}       = {records_rps / LIMIT:.2f} of limit "
          f"(>= 0.90 {verdict(records_rps / LIMIT >= 0.9)})  [{engine['accepted']} accepted, "
          f"rejected {engine['rejected'] or 'none'}]")  # fmt: skip
    print(
        f"  engine    whole process incl. start-up and load: {engine_wall:.1f}s "
        f"(load {engine['load_s']:.1f}s, loop {loop_s:.1f}s)"
    )
    print(f"  memory    peak RSS {engine_peak:6.1f} MB = {engine_peak / MEMORY_LIMIT_MB:.2f} of {MEMORY_LIMIT_MB} MB "
          f"({verdict(engine_peak < MEMORY_LIMIT_MB)})")  # fmt: skip
    for mode, report in repair.items():
        first_turn = report["requests"] - report["repair_requests"]
        acceptance = report["accepted"] / (first_turn * RECORDS_PER_REQUEST)
        print(f"  repair    {mode:<11} accepted {report['accepted']} of {first_turn * RECORDS_PER_REQUEST} asked in "
              f"first turns = {acceptance:.3f}; {report['requests'] / report['accepted']:.3f} requests per record "
              f"({report['repair_requests']} repair turns, {report['repaired']} records fixed)")  # fmt: skip
    print(f"  re-run    {rerun['requests']} requests (server saw {rerun_received}), {rerun_wall:.2f}s = "
          f"{rerun_wall / RERUN_LIMIT_S:.2f} of {RERUN_LIMIT_S:.0f}s "
          f"({verdict(rerun_received == 0 and rerun_wall < RERUN_LIMIT_S)})")  # fmt: skip


if __name__ == "__main__":
    main()
