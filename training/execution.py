"""How a run uses its hardware: precision, attention kernel, activation checkpointing and batching.

The GPU path and the CPU path differ only here. Packing (best-fit decreasing, TRL's `bfd`) is on everywhere and makes
batches padding-free: sequences are laid end to end and `position_ids` restart at each one. A varlen kernel
(FlashAttention) keeps them apart natively, so several packed rows share a micro-batch. SDPA and eager keep them apart
through the block-diagonal mask transformers derives from `position_ids`, which costs attention over the whole
flattened micro-batch, so those kernels get one packed row per micro-batch and more accumulation steps instead.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

VARLEN_KERNELS = frozenset({"flash_attention_2", "flash_attention_3"})


@dataclass(frozen=True)
class ExecutionPlan:
    device: str  # "cuda" or "cpu"
    dtype: str  # torch dtype name of the weights and the autocast
    attn_implementation: str
    gradient_checkpointing: bool
    micro_batch_size: int  # packed rows per device and micro-step
    gradient_accumulation_steps: int

    @property
    def bf16(self) -> bool:
        return self.dtype == "bfloat16"


def best_attention(device: str) -> str:
    """FlashAttention 2 when it is installed and there is a GPU, else PyTorch's SDPA."""
    if device == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def plan_execution(
    device: str, micro_batch_size: int, gradient_accumulation_steps: int, attn_implementation: str | None = None
) -> ExecutionPlan:
    """The plan for `device` that keeps the optimizer's batch (rows × accumulation) as configured."""
    attention = attn_implementation or best_attention(device)
    rows, accumulation = micro_batch_size, gradient_accumulation_steps
    if attention not in VARLEN_KERNELS:
        rows, accumulation = 1, micro_batch_size * gradient_accumulation_steps
    if device == "cuda":
        # bf16 weights and autocast; checkpointing trades a second forward for activations a 7B model cannot keep.
        return ExecutionPlan("cuda", "bfloat16", attention, True, rows, accumulation)
    # CPU (tests, the tiny model): fp32 (bf16 autocast is emulated and slow on most CPUs), nothing to checkpoint.
    return ExecutionPlan("cpu", "float32", attention, False, rows, accumulation)


def current_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def launched_processes() -> int:
    """How many processes the launcher started (torchrun, accelerate, deepspeed all set WORLD_SIZE). Read from the
    environment because the schedule is planned before the trainer sets up the process group."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
