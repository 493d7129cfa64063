"""A training run as written in `configs/train/*.yaml`: what to train, on what, with which LoRA and schedule.

A file may name a `base:` file (relative to itself) whose values it overrides, so the paper's runs share one set of
hyperparameters and differ only in their tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = "Qwen/Qwen2-7B"
    model_revision: str | None = None
    release: str = "datasets/build/anytasktune"
    release_revision: str | None = None
    tasks: list[str] = Field(min_length=1)
    langs: list[Literal["en", "zh"]] = ["en", "zh"]
    general: str | None = None  # Alpaca-form JSON/JSONL/Parquet mixed into the training set
    general_share: float = Field(0.0, ge=0, lt=1)
    max_length: int = Field(2048, gt=0)
    epochs: float = Field(3.0, gt=0)
    token_budget: int | None = Field(None, gt=0)  # training tokens (non-padding, all ranks); overrides epochs
    max_steps: int = -1  # > 0 overrides epochs, the token budget and min_steps
    min_steps: int = Field(30, gt=0)  # a small release still trains: accumulation lowered, then passes added
    learning_rate: float = Field(2e-4, gt=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    # The attention kernel; default FlashAttention 2 on a GPU when installed, else SDPA. Another (flex_attention, a
    # kernel from the Hub) is checked before training: one that lets packed sequences see each other is refused.
    attn_implementation: str | None = None
    liger_kernel: bool = False  # Liger's fused RMSNorm, RoPE, SwiGLU and linear cross-entropy (the gpu extra)
    micro_batch_size: int = Field(4, gt=0)  # sequences (padded) or packed rows per device and step
    gradient_accumulation_steps: int = Field(4, gt=0)
    lora: LoraSettings = LoraSettings()
    seed: int = 42
    output_dir: str = "runs/train"  # the run writes to <output_dir>/<name>
    logging_steps: int = Field(10, gt=0)  # at most; a short run logs about twenty times

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name


class RunConfigError(ValueError):
    """A run config that cannot be read; the message names the file and field."""


def load_run_config(path: Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """A run config file with its `base:` chain applied, then the command line's overrides."""
    raw = _read_with_bases(path, seen=())
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors())
        raise RunConfigError(f"{path}: {problems}") from None


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path.resolve() in seen:
        raise RunConfigError(f"{path}: `base:` chain loops back to this file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise RunConfigError(f"{path}: no such run config") from None
    except yaml.YAMLError as err:
        raise RunConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise RunConfigError(f"{path}: a run config must be a YAML mapping")
    base = raw.pop("base", None)
    if base is None:
        return raw
    merged = _read_with_bases(path.parent / base, (*seen, path.resolve()))
    for key, value in raw.items():
        merged[key] = (
            {**merged[key], **value} if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged
