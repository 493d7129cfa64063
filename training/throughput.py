"""Throughput of a training run, measured on the run itself: non-padding tokens per second and MFU.

FLOPs convention (model FLOPs, as in PaLM's MFU, not hardware FLOPs): per token, a weight matrix of N parameters costs
2N in the forward pass, 2N more in the backward pass for the activation gradient, and 2N more for its own gradient
only when it is trained; LoRA freezes the base weights, so they count 4N and the adapters 6N. Weight matrices are
every `nn.Linear` (the LM head included, the embedding lookup excluded). Attention scores and the weighted sum add
12·L·d·S per token over the forward and backward passes (L layers, d = heads × head size, S the token's own sequence
length; the causal half is not discounted, as in PaLM). Recomputation by activation checkpointing is not counted, and
neither are padding tokens: only the work the data needs. MFU divides these FLOPs per second by the device's peak:
the dense bf16 tensor-core figure of a known GPU, or on CPU a fp32 matmul rate measured in the same process.
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import TrainerCallback

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, TFLOP/s; matched on the device name.
GPU_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10", 125.0),
)


@dataclass(frozen=True)
class ModelShape:
    layers: int
    attention_width: int  # heads × head size of the queries
    frozen_matmul_params: int
    trainable_matmul_params: int


def model_shape(model: torch.nn.Module) -> ModelShape:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    frozen = trainable = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            if module.weight.requires_grad:
                trainable += module.weight.numel()
            else:
                frozen += module.weight.numel()
    return ModelShape(config.num_hidden_layers, config.num_attention_heads * head_dim, frozen, trainable)


def training_flops(shape: ModelShape, sequence_lengths: list[int]) -> float:
    """Model FLOPs of one forward and backward pass over sequences of these lengths (see the module docstring)."""
    tokens = sum(sequence_lengths)
    dense = (4 * shape.frozen_matmul_params + 6 * shape.trainable_matmul_params) * tokens
    attention = 12 * shape.layers * shape.attention_width * sum(n * n for n in sequence_lengths)
    return float(dense + attention)


def sequence_lengths(batch: dict[str, Any]) -> list[int]:
    """Lengths of the real sequences in a collated batch: attention-mask rows, or packed runs of `position_ids`."""
    if batch.get("attention_mask") is not None:
        return [int(n) for n in batch["attention_mask"].sum(dim=1).tolist()]
    lengths: list[int] = []
    for row in batch["position_ids"]:
        starts = [*(row == 0).nonzero().flatten().tolist(), row.numel()]
        lengths.extend(b - a for a, b in itertools.pairwise(starts))
    return lengths


@functools.cache
def peak_flops(device: str) -> tuple[float, str]:
    """The peak FLOP/s MFU is measured against, and where the figure comes from; measured once per process, so
    runs compared in one process share one denominator."""
    if device == "cuda":
        name = torch.cuda.get_device_name()
        for key, tflops in GPU_PEAK_TFLOPS:
            if key in name:
                return tflops * 1e12, f"{name}: dense bf16 data-sheet peak"
        return measured_matmul_flops(torch.bfloat16, "cuda"), f"{name}: measured bf16 matmul rate"
    return measured_matmul_flops(torch.float32, "cpu"), "CPU: measured fp32 matmul rate"


def measured_matmul_flops(dtype: torch.dtype, device: str, size: int = 1024, repeats: int = 8) -> float:
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    torch.matmul(a, b)  # warm-up
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    _synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@dataclass(frozen=True)
class Throughput:
    tokens: int
    seconds: float
    tokens_per_second: float
    model_tflops_per_second: float
    mfu: float
    peak_tflops: float
    peak_source: str
    measured_steps: int
    processes: int = 1  # tokens and FLOPs summed over them, the slowest one's time, peak times their number
    peak_memory_gb: float | None = None  # GPU memory allocated at most on one device (None on CPU)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (
            f"{self.tokens_per_second:,.0f} tokens/s (non-padding), {self.model_tflops_per_second:.3g} model TFLOP/s, "
            f"MFU {self.mfu:.2%} of {self.peak_tflops:.3g} TFLOP/s ({self.peak_source}); "
            f"{self.tokens:,} tokens over {self.measured_steps} steps"
            + (f" on {self.processes} processes" if self.processes > 1 else "")
            + (f"; peak GPU memory {self.peak_memory_gb:.1f} GB" if self.peak_memory_gb is not None else "")
        )


class ThroughputMeter(TrainerCallback):
    """Counts the tokens and FLOPs of every micro-batch and times optimizer steps, after `warmup_steps` of them."""

    def __init__(self, shape: ModelShape, device: str, warmup_steps: int = 1):
        self.shape, self.device, self.warmup_steps = shape, device, warmup_steps
        self.tokens, self.flops, self.seconds, self.steps = 0, 0.0, 0.0, 0
        self._pending_tokens, self._pending_flops, self._last = 0, 0.0, 0.0

    def add_batch(self, batch: dict[str, Any]) -> None:
        lengths = sequence_lengths(batch)
        self._pending_tokens += sum(lengths)
        self._pending_flops += training_flops(self.shape, lengths)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.device == "cuda":  # this run's peak, not an earlier one's in the same process
            torch.cuda.reset_peak_memory_stats()

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # Timed from here, not from the last step's end: an evaluation or a log in between is not training time.
        _synchronize(self.device)
        self._last = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        _synchronize(self.device)
        now = time.perf_counter()
        if state.global_step > self.warmup_steps:
            self.tokens += self._pending_tokens
            self.flops += self._pending_flops
            self.seconds += now - self._last
            self.steps += 1
        self._pending_tokens, self._pending_flops, self._last = 0, 0.0, now

    def _over_ranks(self) -> tuple[int, float, float, int]:
        """Tokens and FLOPs summed over the processes, the slowest one's seconds, and how many there are. Every rank
        must call it (a collective) when a process group is up."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return self.tokens, self.flops, self.seconds, 1
        device = torch.device("cuda", torch.cuda.current_device()) if self.device == "cuda" else torch.device("cpu")
        totals = torch.tensor([self.tokens, self.flops], dtype=torch.float64, device=device)
        slowest = torch.tensor([self.seconds], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(totals)
        torch.distributed.all_reduce(slowest, op=torch.distributed.ReduceOp.MAX)
        return int(totals[0].item()), float(totals[1].item()), float(slowest.item()), torch.distributed.get_world_size()

    def result(self) -> Throughput | None:
        """None when no step was measured (a run shorter than its warm-up)."""
        tokens, flops, seconds, processes = self._over_ranks()
        if self.steps == 0 or seconds == 0:
            return None
        peak, source = peak_flops(self.device)
        flops_per_second = flops / seconds
        return Throughput(
            tokens=tokens,
            seconds=seconds,
            tokens_per_second=tokens / seconds,
            model_tflops_per_second=flops_per_second / 1e12,
            mfu=flops_per_second / (peak * processes),
            peak_tflops=peak * processes / 1e12,
            peak_source=source,
            measured_steps=self.steps,
            processes=processes,
            peak_memory_gb=torch.cuda.max_memory_allocated() / 2**30 if self.device == "cuda" else None,
        )
