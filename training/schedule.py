"""How long a run trains, sized by its data: optimizer steps, warmup and the logging interval.

A per-task release is small (a few hundred records pack into a handful of 2,048-token rows), so "3 epochs" can mean
3 optimizer steps, the first at learning rate 0, with no training loss logged. The plan here counts the packed rows,
turns epochs (or a token budget) into optimizer steps, raises them to `min_steps`, and warms up over at least one
step whose learning rate is already above zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Schedule:
    steps: int  # optimizer steps
    accumulation: int  # micro-batches per optimizer step
    warmup_steps: int
    logging_steps: int
    steps_per_epoch: int
    tokens_per_step: float  # non-padding tokens an optimizer step sees, on average, over all ranks
    sized_by: str  # "epochs", "token budget", "max_steps" or "min_steps"

    @property
    def epochs(self) -> float:
        return self.steps / self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "epochs": round(self.epochs, 3)}


def plan_schedule(
    rows: int,
    tokens: int,
    micro_rows: int,
    accumulation: int,
    *,
    epochs: float,
    max_steps: int = -1,
    token_budget: int | None = None,
    min_steps: int = 1,
    warmup_ratio: float = 0.0,
    logging_steps: int = 10,
) -> Schedule:
    """The schedule for `rows` packed rows holding `tokens` tokens, `micro_rows` rows per micro-step over all ranks.

    `max_steps` > 0 is taken as given. Otherwise the token budget, else the epochs, decide; when that makes fewer than
    `min_steps` optimizer steps, accumulation is lowered first (the same data in more, smaller steps) and only then
    are steps added (more passes over the data). Warmup is a share of the steps; the loss is logged about twenty
    times a run, never less often than every `logging_steps`."""
    if rows <= 0:
        raise ValueError("nothing to train on: the training set packs into 0 rows")
    row_tokens = tokens / rows
    for acc in range(accumulation, 0, -1):
        rows_per_step = micro_rows * acc
        steps_per_epoch = math.ceil(rows / rows_per_step)
        tokens_per_step = row_tokens * min(rows_per_step, rows)
        if max_steps > 0:
            steps, sized_by = max_steps, "max_steps"
            break
        if token_budget:
            steps, sized_by = math.ceil(token_budget / tokens_per_step), "token budget"
        else:
            steps, sized_by = math.ceil(epochs * steps_per_epoch), "epochs"
        if steps >= min_steps:
            break
    else:
        steps, sized_by = min_steps, "min_steps"
    warmup = min(math.ceil(warmup_ratio * steps), steps - 1)
    logging = max(1, min(logging_steps, steps // 20))
    return Schedule(steps, acc, warmup, logging, steps_per_epoch, tokens_per_step, sized_by)


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """The learning-rate factor of optimizer step `step` (0-based): a linear warmup whose first step already moves the
    weights (1/(w+1), ..., w/(w+1)), then a cosine decay to 0 over the remaining steps."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        decay_steps = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / decay_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
