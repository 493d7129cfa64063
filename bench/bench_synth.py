"""`make bench-synth`: the synthesizer's throughput, memory and re-run cost against the loopback server.

The server (tests/fake_openai.py, its own process) answers each request after a fixed latency and serves `capacity`
requests at once, so no client can exceed capacity / latency requests/s. Two settings, each one run:
  - 0.5 s and 128 at once (limit 256 req/s), 5,000 requests: the engine must reach 0.95 of the limit;
  - 0.1 s and 64 at once (limit 640 req/s), 3,000 requests: the client's CPU per request is the bound there, and
    the engine must be at least as fast as the bare loop.
In each: the baseline, a bare AsyncOpenAI loop with a semaphore of `capacity` (bench/synth_baseline.py) sending the
engine's own first requests; with --peers (`make bench-synth-peers`) Curator sending the same requests from its own
environment (bench/synth_curator.py); then the engine, `anytasktune synth` over every task and language until that
many requests' worth of records are accepted (4 records a request), with the loop's rate from its report. In the first
setting also the engine's peak memory (the process's max RSS) and the same job again, which must send zero requests
and finish in under 5 s. Last, the repair turn: against a server whose every other answer has one record with an empty
output (and which fixes it when shown the error), the same small job with --no-repair and with --repair: records
accepted per record asked in first-turn requests, and requests sent per record accepted.
Each figure is printed as a ratio against its limit, and the engine's against the baseline's of the same run.
BENCH_SYNTH_SCALE=0.2 runs a fifth of the requests, for a quick look.
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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("BENCH_SYNTH_SCALE", "1"))  # a fraction for a quick look; the figures are at 1
RECORDS_PER_REQUEST = 4
LANGS = ("en", "zh")
TASKS = 25
MEMORY_LIMIT_MB = 300
CURATOR_PYTHON = REPO / ".venv-curator" / "bin" / "python"  # Curator in its own environment (its pins are not ours)
RERUN_LIMIT_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Scenario:
    latency: float  # seconds the server takes per answer
    capacity: int  # answers it works on at once (and the clients' concurrency)
    requests: int
    min_of_limit: float | None  # the engine's rate must reach this share of the limit
    min_of_baseline: float | None  # ... and this multiple of the bare loop's rate in the same run

    @property
    def limit(self) -> float:
        return self.capacity / self.latency  # requests/s no client can beat


SCENARIOS = (
    Scenario(0.5, 128, round(5000 * SCALE), min_of_limit=0.95, min_of_baseline=None),
    Scenario(0.1, 64, round(3000 * SCALE), min_of_limit=None, min_of_baseline=1.0),  # CPU per request counts here
)


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
    work, env = fresh_store()
    with FakeServer("--latency", "0.05", "--fault", "fixable:2") as server:
        out, _, _ = run_measured(
            [sys.executable, "-m", "cli", "synth", "--tasks", REPAIR_TASKS, "--per-task", str(REPAIR_PER_TASK),
             "--records-per-request", str(RECORDS_PER_REQUEST), "--concurrency", "16", "--model", "fake-model",
             "--base-url", server.base_url, "--json", "--no-progress", mode],
            env,
        )  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return json.loads(out)


class FakeServer:
    """tests/fake_openai.py in its own process, so the client's CPU is not shared with the server's event loop."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.args = args

    def __enter__(self) -> FakeServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_openai", "--port", str(self.port), *self.args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.process.stdout.readline()  # "fake OpenAI-compatible server on ..." once it listens
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()

    def received(self) -> int:
        return server_stats(self.base_url)["received"]


def fresh_store() -> tuple[Path, dict[str, str]]:
    work = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    shutil.copytree(REPO / "datasets" / "tasks", work / "tasks")
    shutil.copytree(REPO / "datasets" / "seeds", work / "seeds")
    env = {**os.environ, "ANYTASKTUNE_DATA_DIR": str(work), "OPENAI_API_KEY": "bench"}
    env.pop("OPENAI_BASE_URL", None)
    return work, env


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def run_scenario(scenario: Scenario, peers: bool, full: bool) -> None:
    """Baseline, engine (and peers) against one server; with `full`, the re-run and the memory too."""
    per_task = scenario.requests * RECORDS_PER_REQUEST // (TASKS * len(LANGS))
    work, env = fresh_store()
    args = ("--latency", str(scenario.latency), "--capacity", str(scenario.capacity))
    with FakeServer(*args) as server:
        common = [
            "--base-url", server.base_url, "--requests", str(scenario.requests),
            "--concurrency", str(scenario.capacity), "--records-per-request", str(RECORDS_PER_REQUEST),
        ]  # fmt: skip
        baseline = json.loads(run_measured([sys.executable, "bench/synth_baseline.py", *common], env)[0])
        peer = None
        if peers:
            curator = [str(CURATOR_PYTHON), "bench/synth_curator.py", *common, "--work", str(work / "curator")]
            peer = json.loads(run_measured(curator, env)[0])
        synth = [
            sys.executable, "-m", "cli", "synth", "--tasks", "all", "--langs", ",".join(LANGS),
            "--per-task", str(per_task), "--records-per-request", str(RECORDS_PER_REQUEST),
            "--concurrency", str(scenario.capacity), "--model", "fake-model", "--base-url", server.base_url,
            "--json", "--no-progress",
        ]  # fmt: skip
        before = server.received()
        engine_out, engine_wall, engine_peak = run_measured(synth, env)
        engine, received = json.loads(engine_out), server.received() - before
        if full:
            before = server.received()
            rerun_out, rerun_wall, _ = run_measured(synth, env)
            rerun, rerun_received = json.loads(rerun_out), server.received() - before
    shutil.rmtree(work, ignore_errors=True)

    limit, loop_s = scenario.limit, engine["elapsed_s"]
    rps, base_rps = engine["requests"] / loop_s, baseline["requests_per_s"]
    records_rps = engine["accepted"] / loop_s / RECORDS_PER_REQUEST
    goals = []
    if scenario.min_of_limit is not None:
        goals.append(f">= {scenario.min_of_limit:.2f} of limit {verdict(rps / limit >= scenario.min_of_limit)}")
    if scenario.min_of_baseline is not None:
        ok = rps / base_rps >= scenario.min_of_baseline
        goals.append(f">= {scenario.min_of_baseline:.2f}x baseline {verdict(ok)}")
    print(f"bench-synth: {scenario.requests} requests, latency {scenario.latency}s, capacity {scenario.capacity} "
          f"-> limit {limit:.0f} req/s, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"  baseline  bare AsyncOpenAI + semaphore: {base_rps:7.1f} req/s = {base_rps / limit:.2f} of limit "
          f"({baseline['cpu_s'] / baseline['requests'] * 1000:.2f} ms CPU per request)")  # fmt: skip
    if peer is not None:
        peer_rps = peer["requests_per_s"]
        print(f"  peer      Curator {peer['version']:<18}: {peer_rps:7.1f} req/s = {peer_rps / limit:.2f} of limit; "
              f"engine {rps / peer_rps:.2f}x Curator")  # fmt: skip
    print(f"  engine    requests/s:                    {rps:7.1f} req/s = {rps / limit:.2f} of limit "
          f"({'; '.join(goals)}), {rps / base_rps:.2f}x baseline  "
          f"[{engine['requests']} sent, server saw {received}]")  # fmt: skip
    print(f"  engine    accepted records/s per asked:  {records_rps:7.1f}       = {records_rps / limit:.2f} of limit  "
          f"[{engine['accepted']} accepted, rejected {engine['rejected'] or 'none'}]")  # fmt: skip
    print(f"  engine    whole process incl. start-up and load: {engine_wall:.1f}s "
          f"(load {engine['load_s']:.1f}s, loop {loop_s:.1f}s)")  # fmt: skip
    if full:
        print(f"  memory    peak RSS {engine_peak:6.1f} MB = {engine_peak / MEMORY_LIMIT_MB:.2f} of "
              f"{MEMORY_LIMIT_MB} MB ({verdict(engine_peak < MEMORY_LIMIT_MB)})")  # fmt: skip
        print(f"  re-run    {rerun['requests']} requests (server saw {rerun_received}), {rerun_wall:.2f}s = "
              f"{rerun_wall / RERUN_LIMIT_S:.2f} of {RERUN_LIMIT_S:.0f}s "
              f"({verdict(rerun_received == 0 and rerun_wall < RERUN_LIMIT_S)})")  # fmt: skip


def main() -> None:
    peers = "--peers" in sys.argv
    if peers and not CURATOR_PYTHON.exists():
        sys.exit(f"bench-synth: --peers needs Curator's environment at {CURATOR_PYTHON}: make bench-synth-peers")
    for index, scenario in enumerate(SCENARIOS):
        run_scenario(scenario, peers, full=index == 0)
    for mode, report in {mode: repair_run(mode) for mode in ("--no-repair", "--repair")}.items():
        first_turn = report["requests"] - report["repair_requests"]
        acceptance = report["accepted"] / (first_turn * RECORDS_PER_REQUEST)
        print(f"  repair    {mode:<11} accepted {report['accepted']} of {first_turn * RECORDS_PER_REQUEST} asked in "
              f"first turns = {acceptance:.3f}; {report['requests'] / report['accepted']:.3f} requests per record "
              f"({report['repair_requests']} repair turns, {report['repaired']} records fixed)")  # fmt: skip


if __name__ == "__main__":
    main()
