"""Benchmark of the review app (`make bench-review`): a 100,000-record build served by `anytasktune review`.

It generates a synth store (bench/build_data.py, the build benchmark's generator, with its injected defects, so the
quarantine is real too), builds it, starts `python -m cli review` in a subprocess and measures, over HTTP on
loopback as a browser would:
- time to first page: from starting the process to the first record list answered (imports, loading the build,
  rendering);
- next record: a reviewer's step, the POST of a decision and the record page it redirects to, over the whole build
  and within one task; a plain move to the next record; a full-text search.

One line per figure: `name value limit ratio pass/FAIL` (ratio = value / limit, ≤ 1 passes).

    python bench/bench_review.py [--records 100000] [--steps 60]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_build import run_build  # noqa: E402
from bench.build_data import write_store  # noqa: E402
from catalog import load_catalog  # noqa: E402

FIRST_PAGE_LIMIT_S = 5.0
STEP_LIMIT_S = 0.25  # p95 of one step: what a keyboard reviewer waits for between records
SEARCH_LIMIT_S = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port: int, method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"content-type": "application/x-www-form-urlencoded"} if body is not None else {}
    connection.request(method, path, body=urlencode(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    answer = response.status, response.getheader("location") or "", response.read().decode()
    connection.close()
    return answer


def line(name: str, seconds: float, limit: float) -> str:
    ratio = seconds / limit
    verdict = "pass" if ratio <= 1 else "FAIL"
    return f"{name} {seconds * 1000:.1f} ms limit {limit * 1000:.0f} ms ratio {ratio:.2f} {verdict}"


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 20 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    catalog = load_catalog(REPO / "datasets" / "tasks")
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(REPO / "datasets" / "tasks", data / "tasks")
        shutil.copytree(REPO / "datasets" / "seeds", data / "seeds")
        shutil.copy(REPO / "datasets" / "anytasktune.yaml", data)
        write_store(catalog, data / "seeds", data / "synth", args.records)
        seconds, _, status, tail = run_build(data)
        if status != 0:
            sys.exit(f"the build failed:\n{tail}")
        print(f"built {args.records:,} generated records in {seconds:.1f} s (not a figure of this benchmark)")

        port = free_port()
        env = {**os.environ, "ANYTASKTUNE_DATA_DIR": str(data)}
        start = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "cli", "review", "--reviewer", "bench", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            while True:
                try:
                    status, _, page = request(port, "GET", "/")
                    break
                except OSError:
                    if server.poll() is not None:
                        sys.exit(f"the review app stopped: {server.stderr.read().decode()[-2000:]}")
                    time.sleep(0.01)
            first_page = time.perf_counter() - start
            total = int(re.search(r'id="total">(\d+)', page).group(1))
            print(f"serving {total:,} records (published and quarantined)")
            print(line("time to first page", first_page, FIRST_PAGE_LIMIT_S))
            for label, query in (("whole build", ""), ("one task", "task=med_key_info")):
                status, _, page = request(port, "GET", f"/?{query}")
                record = re.findall(r'href="/record/([^"?]+)', page)[0]
                _, _, page = request(port, "GET", f"/record/{record}?{query}")
                decide, moves = [], []
                for _ in range(args.steps):
                    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
                    began = time.perf_counter()
                    status, target, _ = request(
                        port, "POST", f"/decide/{record}?{query}", {"verdict": "accept", "csrf": csrf}
                    )
                    status, _, page = request(port, "GET", target)
                    decide.append(time.perf_counter() - began)
                    record = target.split("?")[0].removeprefix("/record/")
                    began = time.perf_counter()
                    following = re.search(r'id="next" href="([^"]+)"', page)
                    request(port, "GET", following.group(1).replace("&amp;", "&"))
                    moves.append(time.perf_counter() - began)
                print(line(f"next record after a decision, {label}, median", statistics.median(decide), STEP_LIMIT_S))
                print(line(f"next record after a decision, {label}, p95", p95(decide), STEP_LIMIT_S))
                print(line(f"next record (j), {label}, p95", p95(moves), STEP_LIMIT_S))
            searches = []
            for word in ("pain", "refund", "合同", "失眠", "interview", "dividend", "xyzzy"):
                began = time.perf_counter()
                request(port, "GET", f"/?{urlencode({'q': word})}")
                searches.append(time.perf_counter() - began)
            print(line("full-text search, slowest of 7", max(searches), SEARCH_LIMIT_S))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
