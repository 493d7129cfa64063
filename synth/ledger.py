"""Budgets that are never overrun: what a request may still cost is reserved before it is sent.

A request's worst case is bounded: its prompt cannot be more tokens than the UTF-8 bytes of what it sends (byte-level
BPE tokenizers, as OpenAI's, Qwen's and Llama's, never make more tokens than bytes), plus a few tokens of chat
template per message; its answer cannot be more than its `max_tokens`. That bound is reserved against the token and
cost budgets before the request goes out and replaced by the `usage` the server reports when it comes back (the
bound itself stays spent where a server reports no usage). A request that does not fit waits for those in flight to
settle, and once nothing is in flight and it still does not fit the budget is spent. So used ≤ budget always, and
what is left unused at the end is less than one request's bound.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from synth.config import Budget
from synth.prices import Price
from synth.report import JobStats

TEMPLATE_TOKENS_PER_MESSAGE = 8  # role markers and separators of a chat template, generously
TEMPLATE_TOKENS = 16  # the assistant header and anything a template adds once
BUDGETED_MAX_TOKENS = 4096  # sent as max_tokens when a token or cost budget is set and no --max-output-tokens is


class BudgetSpent(RuntimeError):
    """A budget is used up: no new request may go out."""


@dataclass(frozen=True)
class Reservation:
    prompt_tokens: int
    completion_tokens: int
    cost: float

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def answer_bound(body: dict[str, Any]) -> int | None:
    """The most tokens the answer to `body` may have, or None when the request sets no limit."""
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return int(value) if value is not None else None


def prompt_bound(body: dict[str, Any]) -> int:
    """An upper bound on the prompt tokens of `body`: UTF-8 bytes of every message and of the response_format
    (structured-output schemas are billed as prompt), plus the chat template's tokens."""
    messages = body.get("messages", [])
    sent = sum(len(str(m.get("content", "")).encode()) for m in messages)
    if "response_format" in body:
        sent += len(json.dumps(body["response_format"], ensure_ascii=False).encode())
    return sent + TEMPLATE_TOKENS_PER_MESSAGE * len(messages) + TEMPLATE_TOKENS


class BudgetLedger:
    """Used (from `stats`) plus reserved (in flight), checked against the budget before every request."""

    def __init__(self, budget: Budget, price: Price, stats: JobStats):
        self.budget, self.price, self.stats = budget, price, stats
        self.reserved_requests = 0
        self.reserved_tokens = 0
        self.reserved_cost = 0.0
        self._settled = asyncio.Condition()

    @property
    def bounds_answers(self) -> bool:
        """Whether every request must carry max_tokens: a token or cost budget needs each answer's worst case."""
        return self.budget.max_tokens is not None or self.budget.max_cost is not None

    def bounded(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` with a max_tokens where a token or cost budget needs one and the request has none."""
        if self.bounds_answers and answer_bound(body) is None:
            return {**body, "max_tokens": BUDGETED_MAX_TOKENS}
        return body

    def worst_case(self, body: dict[str, Any]) -> Reservation:
        prompt, answer = prompt_bound(body), answer_bound(body) or 0
        return Reservation(prompt, answer, self.price.cost(prompt, answer))

    async def reserve(self, body: dict[str, Any]) -> Reservation:
        """Reserve what `body` may cost, waiting while requests in flight may still free some; BudgetSpent when
        nothing is in flight and it does not fit."""
        wanted = self.worst_case(body)
        async with self._settled:
            while (refused := self._refusal(wanted)) is not None:
                if self.reserved_requests == 0:
                    raise BudgetSpent(refused)
                await self._settled.wait()
            self.take(wanted)
        return wanted

    def try_reserve(self, body: dict[str, Any]) -> Reservation | None:
        """Reserve what `body` may cost if the budget holds it now (a batch is planned whole, nothing to wait for)."""
        wanted = self.worst_case(body)
        if self._refusal(wanted) is not None:
            return None
        self.take(wanted)
        return wanted

    async def settle(self, reservation: Reservation, usage: dict[str, Any] | None) -> None:
        """The request is back: its reservation is replaced by what it used (nothing for an attempt that got no
        answer; the whole reservation for an answer that reports no usage)."""
        async with self._settled:
            self.settle_now(reservation, usage)
            self._settled.notify_all()

    def settle_now(self, reservation: Reservation, usage: dict[str, Any] | None) -> None:
        """`settle`, for a caller that holds no event loop's turn to wait on (a batch's answers, read at once)."""
        self.stats.requests += 1  # counted as the reservation ends, so no check sees it twice or not at all
        self.reserved_requests -= 1
        self.reserved_tokens -= reservation.tokens
        self.reserved_cost -= reservation.cost
        if not self.reserved_requests:  # nothing in flight: clear the float drift of many additions
            self.reserved_cost = 0.0
        if usage is not None:
            prompt = int(usage.get("prompt_tokens") or 0)
            completion = int(usage.get("completion_tokens") or 0)
            if not prompt and not completion:  # no usage reported: the worst case is what it may have cost
                prompt, completion = reservation.prompt_tokens, reservation.completion_tokens
            self.stats.prompt_tokens += prompt
            self.stats.completion_tokens += completion
            self.stats.cost += self.price.cost(prompt, completion)
        self._show()

    def take(self, wanted: Reservation) -> Reservation:
        """Reserve `wanted` unconditionally (a request already sent, such as a resumed batch's)."""
        self.reserved_requests += 1
        self.reserved_tokens += wanted.tokens
        self.reserved_cost += wanted.cost
        self._show()
        return wanted

    def _show(self) -> None:
        self.stats.reserved_tokens, self.stats.reserved_cost = self.reserved_tokens, self.reserved_cost

    def _refusal(self, wanted: Reservation) -> str | None:
        stats, budget = self.stats, self.budget
        if budget.max_requests is not None and stats.requests + self.reserved_requests + 1 > budget.max_requests:
            return f"request budget ({budget.max_requests}) reached"
        if budget.max_tokens is not None and stats.tokens + self.reserved_tokens + wanted.tokens > budget.max_tokens:
            return (
                f"token budget ({budget.max_tokens:,}) reached: {stats.tokens:,} used, the next request may need "
                f"up to {wanted.tokens:,}"
            )
        if budget.max_cost is not None and stats.cost + self.reserved_cost + wanted.cost > budget.max_cost:
            return (
                f"cost budget (${budget.max_cost:.4f}) reached: ${stats.cost:.4f} used, the next request may cost "
                f"up to ${wanted.cost:.4f}"
            )
        return None
