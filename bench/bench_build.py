"""Benchmark of the build (`make bench-build`): N realistic records through the whole build, in a subprocess.

Prints wall time and peak memory (the build's whole process tree) against the limits of the build issue, the
near-duplicate recall on injected pairs, and our dedup step against the straightforward way (pandas +
datasketch) on a sample, measured in the same run.

    python bench/bench_build.py [--records 1000000] [--sample 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.build_data import Injected, generate, write_store  # noqa: E402
from catalog import load_catalog  # noqa: E402
from catalog.records import comparison_key  # noqa: E402
from pipeline.build import BuildConfig  # noqa: E402
from pipeline.normalize import comparison_key_expr  # noqa: E402
from validation.near_dup import NGRAM, near_duplicate_pairs  # noqa: E402

TIME_LIMIT_S = 120.0
MEMORY_LIMIT_GB = 4.0
RECALL_TARGET = 0.95


def _tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack.extend(int(c) for c in children.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run_build(data_dir: Path) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of `anytasktune build` on `data_dir`."""
    env = {**os.environ, "ANYTASKTUNE_DATA_DIR": str(data_dir)}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "cli", "build"], cwd=REPO, env=env, stdout=subprocess.PIPE)
    peak = 0

    def sample() -> None:
        nonlocal peak
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    elapsed = time.perf_counter() - start
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"build failed ({process.returncode}):\n{output.decode()[-2000:]}")
    return elapsed, peak


def near_duplicate_recall(data_dir: Path, injected: Injected, per_file: int) -> float:
    """Share of injected near-twin pairs of which the build dropped the copy as a duplicate."""
    quarantine = data_dir / "build" / "_quarantine" / "anytasktune.jsonl"
    dropped = set()
    for line in quarantine.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        name = Path(row["file"]).stem  # bench-0003
        if row["reason"] in ("near_duplicate", "exact_duplicate") and name.startswith("bench-"):
            shard = int(name.split("-")[1])
            dropped.add(shard * per_file + row["line"] - 1)
    found = sum(copy in dropped for _, copy in injected.near_pairs)
    return found / max(1, len(injected.near_pairs))


def dedup_ours(frame: pl.DataFrame, threshold: float) -> tuple[float, int]:
    start = time.perf_counter()
    keyed = frame.with_columns(comparison_key_expr("input").alias("_key"))
    pairs = near_duplicate_pairs(keyed, "_key", threshold)
    return time.perf_counter() - start, pairs.height


def dedup_straightforward(frame: pl.DataFrame, threshold: float) -> tuple[float, int]:
    """The way most pipelines do it: pandas rows, datasketch MinHash and MinHashLSH, one record at a time."""
    import pandas as pd
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    rows = pd.DataFrame(frame.select("task", "lang", "input").to_dicts())
    found = 0
    for (_, lang), group in rows.groupby(["task", "lang"]):
        n = NGRAM[lang]
        lsh = MinHashLSH(threshold=threshold, num_perm=64)
        for index, text in zip(group.index, group["input"], strict=True):
            key = comparison_key(text)
            signature = MinHash(num_perm=64)
            for i in range(max(1, len(key) - n + 1)):
                signature.update(key[i : i + n].encode())
            found += len(lsh.query(signature))
            lsh.insert(str(index), signature)
    return time.perf_counter() - start, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--per-file", type=int, default=125_000)
    args = parser.parse_args()

    catalog = load_catalog(REPO / "datasets" / "tasks")
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        data_dir = Path(scratch) / "datasets"
        shutil.copytree(REPO / "datasets" / "tasks", data_dir / "tasks")
        shutil.copytree(REPO / "datasets" / "seeds", data_dir / "seeds")
        rows, injected = generate(catalog, REPO / "datasets" / "seeds", args.records)
        write_store(rows, data_dir / "synth", per_file=args.per_file)
        size = sum(p.stat().st_size for p in (data_dir / "synth").glob("*.jsonl"))
        cores = os.cpu_count()
        print(f"generated {len(rows):,} records ({size / 2**20:,.0f} MiB of JSONL) on {cores} cores; injected:")
        print(
            f"  {len(injected.near_pairs):,} near-duplicate pairs, {len(injected.exact):,} exact duplicates, "
            f"{len(injected.pii):,} with personal data, {len(injected.wrong_language):,} in the wrong language"
        )
        elapsed, peak = run_build(data_dir)
        recall = near_duplicate_recall(data_dir, injected, args.per_file)
        sample = pl.DataFrame(rows[: args.sample]).select("task", "lang", "input")

    threshold = BuildConfig().near_duplicate_threshold
    ours_s, ours_pairs = dedup_ours(sample, threshold)
    base_s, base_pairs = dedup_straightforward(sample, threshold)
    gb = peak / 2**30
    print(
        f"build time   {elapsed:7.1f} s   limit {TIME_LIMIT_S:.0f} s   ratio {elapsed / TIME_LIMIT_S:.2f} (≤ 1: pass)"
    )
    print(f"peak memory  {gb:7.2f} GB  limit {MEMORY_LIMIT_GB:.0f} GB    ratio {gb / MEMORY_LIMIT_GB:.2f} (≤ 1: pass)")
    print(f"near-dup recall {recall:.3f}   target ≥ {RECALL_TARGET}   {'pass' if recall >= RECALL_TARGET else 'FAIL'}")
    print(
        f"dedup on a {args.sample:,}-record sample: ours {ours_s:.2f} s ({ours_pairs:,} pairs), pandas + datasketch "
        f"{base_s:.2f} s ({base_pairs:,} pairs): ours is {base_s / ours_s:.1f}× faster"
    )


if __name__ == "__main__":
    main()
