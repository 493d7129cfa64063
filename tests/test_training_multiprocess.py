"""A two-process training run, launched as on a multi-GPU machine (torchrun; gloo on CPU): the schedule counts both
processes, only the main one writes and reports, the adapter is saved, and throughput sums the tokens of both ranks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.tiny_model import seed_release, tiny_model_dir

REPOSITORY = Path(__file__).resolve().parent.parent


def test_a_two_process_run_is_planned_saved_and_measured_as_one(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "two",
                "model": str(tiny_model_dir()),
                "release": str(seed_release()),
                "tasks": ["fin_intent"],
                "max_length": 320,
                "max_steps": 3,
                "micro_batch_size": 1,
                "gradient_accumulation_steps": 1,
                "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
                "output_dir": str(tmp_path / "runs"),
            }
        ),
        encoding="utf-8",
    )
    with socket.socket() as probe:  # a free port for the rendezvous: tests may run side by side
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*launch, "-m", "cli", "train", "--config", str(config)],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("adapter:") == 1, result.stdout  # the main process reports, once

    run_dir = tmp_path / "runs" / "two"
    assert (run_dir / "adapter" / "adapter_model.safetensors").exists()
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert run["processes"] == 2
    steps = [entry for entry in run["log_history"] if "loss" in entry]
    # Planned for two ranks: the epochs the schedule promised are the epochs the trainer ran.
    assert abs(steps[-1]["epoch"] - run["schedule"]["epochs"]) < 1e-6, (run["schedule"], steps[-1])
    # TRL counts the tokens of all ranks itself; the meter skips the first step and must sum both ranks.
    throughput = run["throughput"]
    assert throughput["processes"] == 2
    assert throughput["tokens"] == steps[-1]["num_tokens"] - steps[0]["num_tokens"]
