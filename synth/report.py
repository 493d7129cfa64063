"""What a job did, counted as it goes: requests, tokens, cost, accepted and rejected records."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class JobStats:
    started: float = field(default_factory=time.monotonic)
    load_s: float = 0.0  # reading the seeds, the store and the cache index before the first request
    requests: int = 0  # attempts sent to the endpoint, retries included
    responses: int = 0  # answers received and cached
    cache_hits: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    timeouts: int = 0
    failed_requests: int = 0  # given up after the retries
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    price_known: bool = True
    accepted: Counter[tuple[str, str]] = field(default_factory=Counter)
    already_stored: int = 0  # records of cached answers found in the store already (a resumed job)
    rejected: Counter[str] = field(default_factory=Counter)
    targets: dict[tuple[str, str], int] = field(default_factory=dict)  # per (task, lang): records wanted in all
    existing: Counter[tuple[str, str]] = field(default_factory=Counter)  # per (task, lang): in the store at start
    stopped: str | None = None  # why the job ended before every target was met
    stop_kind: str | None = None  # budget | endpoint | unavailable | rejects | cache
    reserved_tokens: int = 0  # what the requests in flight may still use (synth.ledger); 0 once the job ends
    reserved_cost: float = 0.0
    mode_fallbacks: int = 0  # endpoints found to reject response_format
    response_format_ignored: bool = False  # the endpoint took response_format and answered other than JSON
    strict_fallbacks: int = 0  # endpoints found to reject `strict: true` (response_format without it still used)
    repair_requests: int = 0  # repair turns asked (records that failed the contract, sent back with their errors)
    repaired: int = 0  # records kept from a repair turn
    # Label tasks: per (task, lang) the share each label is steered towards, and the labels of the records accepted.
    label_targets: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    labels: dict[tuple[str, str], Counter[str]] = field(default_factory=dict)
    batch: dict[str, Any] | None = None  # Batch mode: rounds and each batch's id, status and counts

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def accept_rate(self) -> float:
        judged = sum(self.accepted.values()) + sum(self.rejected.values())
        return sum(self.accepted.values()) / judged if judged else 0.0

    def to_dict(self) -> dict[str, Any]:
        rows = [
            {
                "task": task,
                "lang": lang,
                "target": target,
                "existing": self.existing[(task, lang)],
                "accepted": self.accepted[(task, lang)],
                "total": self.existing[(task, lang)] + self.accepted[(task, lang)],
                **self._label_columns(task, lang),
            }
            for (task, lang), target in sorted(self.targets.items())
        ]
        return {
            "requests": self.requests,
            "responses": self.responses,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "server_errors": self.server_errors,
            "timeouts": self.timeouts,
            "failed_requests": self.failed_requests,
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens, "total": self.tokens},
            "cost_usd": round(self.cost, 6),
            "price_known": self.price_known,
            "accepted": sum(self.accepted.values()),
            "already_stored": self.already_stored,
            "rejected": dict(sorted(self.rejected.items())),
            "accept_rate": round(self.accept_rate, 4),
            "elapsed_s": round(self.elapsed, 3),
            "load_s": round(self.load_s, 3),
            "stopped": self.stopped,
            "stop_kind": self.stop_kind,
            "reserved_tokens": self.reserved_tokens,
            "reserved_cost_usd": round(self.reserved_cost, 6),
            "complete": self.stopped is None,
            "response_format_fallbacks": self.mode_fallbacks,
            "strict_fallbacks": self.strict_fallbacks,
            "response_format_ignored": self.response_format_ignored,
            "repair_requests": self.repair_requests,
            "repaired": self.repaired,
            "per_task": rows,
            **({"batch": self.batch} if self.batch is not None else {}),
        }

    def _label_columns(self, task: str, lang: str) -> dict[str, Any]:
        """For a label task: the target share and the accepted count of each label (catalog order)."""
        target = self.label_targets.get((task, lang))
        if not target:
            return {}
        got = self.labels.get((task, lang), Counter())
        return {
            "labels": {label: {"target": round(share, 4), "accepted": got[label]} for label, share in target.items()}
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def render(self) -> str:
        data = self.to_dict()
        rejected = ", ".join(f"{k} {v}" for k, v in data["rejected"].items()) or "none"
        cost = f"${data['cost_usd']:.4f}" + ("" if self.price_known else " (model not in the price table)")
        lines = [
            f"requests {data['requests']} (cache hits {data['cache_hits']}, retries {data['retries']}, "
            f"429s {data['rate_limited']}, failed {data['failed_requests']})",
            f"tokens {self.tokens} (prompt {self.prompt_tokens}, completion {self.completion_tokens})  cost {cost}",
            f"accepted {data['accepted']}  rejected {sum(self.rejected.values())}: {rejected}",
            f"elapsed {data['elapsed_s']:.1f}s  " + (f"stopped: {self.stopped}" if self.stopped else "all targets met"),
        ]
        if self.response_format_ignored:
            lines.append("the endpoint ignores response_format: the schema went into the prompt instead")
        short = [r for r in data["per_task"] if r["total"] < r["target"]]
        lines += [f"  short: {r['task']}/{r['lang']} {r['total']}/{r['target']}" for r in short[:20]]
        return "\n".join(lines)
