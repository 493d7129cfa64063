"""Kill the job with SIGKILL mid-run (a real subprocess) and run it again: exactly N per task and language."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.conftest import DATA, REPO
from tests.fake_openai import FakeConfig, FakeOpenAI

TASKS = ["med_triage", "fin_intent", "hr_exit_reasons"]
PER_TASK = 24
CONCURRENCY = 6
RECORDS_PER_REQUEST = 2


def synth_command(base_url: str) -> list[str]:
    return [
        sys.executable, "-m", "cli", "synth", "--tasks", ",".join(TASKS), "--per-task", str(PER_TASK),
        "--records-per-request", str(RECORDS_PER_REQUEST), "--concurrency", str(CONCURRENCY),
        "--model", "fake-model", "--base-url", base_url, "--no-progress", "--json",
    ]  # fmt: skip


def test_sigkill_mid_run_then_resume_loses_at_most_the_requests_in_flight(data_dir: Path):
    for task in TASKS:
        shutil.copy(DATA / "seeds" / f"{task}.jsonl", data_dir / "seeds")
    server = FakeOpenAI(FakeConfig(latency=0.05)).serve_in_thread()
    env = {**os.environ, "ANYTASKTUNE_DATA_DIR": str(data_dir), "OPENAI_API_KEY": "sk-crash-test"}
    env.pop("OPENAI_BASE_URL", None)
    try:
        total_requests = len(TASKS) * 2 * PER_TASK // RECORDS_PER_REQUEST
        job = subprocess.Popen(synth_command(server.base_url), cwd=REPO, env=env, stdout=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while server.stats.received < total_requests // 3 and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert job.poll() is None, "the job ended before it could be killed"
        job.send_signal(signal.SIGKILL)
        job.wait()
        sent_before_kill = server.stats.received
        assert 0 < sent_before_kill < total_requests

        done = subprocess.run(synth_command(server.base_url), cwd=REPO, env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        report = json.loads(done.stdout)
        assert report["complete"] and report["requests"] < total_requests
    finally:
        server.stop()

    rows = []
    for path in sorted((data_dir / "synth").glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert Counter((r["task"], r["lang"]) for r in rows) == {
        (t, lang): PER_TASK for t in TASKS for lang in ("en", "zh")
    }
    assert len({r["id"] for r in rows}) == len(rows), "no duplicates"
    # Every answer that arrived before the kill is in the cache: only the requests in flight are asked again.
    assert server.stats.repeated() <= CONCURRENCY
