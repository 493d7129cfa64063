"""LLM-as-judge: score candidate records against a per-task rubric; those under the threshold are dropped.

The rubric is built from the task's own catalog entry (its instruction, input, output format and metric), so every
task gets criteria that fit what its metric rewards, without a hand-written rubric per task to keep in sync.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from catalog.spec import TaskSpec
from synth.parsing import read_items, read_message

JUDGE_VERSION = "1"
SCORE_MIN, SCORE_MAX = 1, 5

_FORMAT_CRITERIA = {
    "text": "the output text is faithful to the input, complete for what the instruction asks, and in the right "
    "tone and register; nothing invented",
    "label": "the chosen label is the one an expert would choose from the input",
    "labels": "the chosen labels are exactly those an expert would choose: none missing, none unsupported",
    "items": "every item is grounded in the input, none is missing or invented, items do not overlap",
    "fields": "every field holds what the input states, and null where the input says nothing",
    "object": "every part of the output is what an expert would give for this input: labels chosen correctly, "
    "lists grounded in the input, numbers plausible",
}
_DOMAIN_CRITERIA = {
    "medical": "medically sound and cautious; red flags sent to emergency care",
    "finance": "financially accurate; amounts, products and institutions plausible for the setting",
    "law": "legally sound for the jurisdiction of the language (PRC law for Chinese, common law for English)",
    "psychology": "supportive and safe; risk is not understated",
    "consumer": "fair to the customer and the business; realistic for e-commerce and services",
    "hr": "realistic for recruiting and employment; no discriminatory criteria",
    "roleplay": "consistent with the named personality type",
}


@dataclass(frozen=True)
class JudgeConfig:
    model: str
    threshold: float = 4.0  # records scoring below this are dropped (scores run 1 to 5)


@dataclass(frozen=True)
class Verdict:
    score: int | None
    reason: str


def _lowered(text: str) -> str:
    return text[:1].lower() + text[1:]


def rubric(spec: TaskSpec, lang: str) -> str:
    criteria = [
        f"The input is a realistic {_lowered(spec.input.en or spec.input.zh or '')} It is written natively in "
        f"{'Chinese' if lang == 'zh' else 'English'}; names and numbers are fictitious.",
        f"The output follows the instruction exactly; {_FORMAT_CRITERIA[spec.output.format]}.",
        f"Domain: {_DOMAIN_CRITERIA.get(spec.domain, 'accurate for the domain')}.",
        f"The record is useful for training and scored by {spec.metric.name}"
        + (f" on `{spec.metric.field}`" if spec.metric.field else "")
        + ": an output that would score badly against a careful expert's answer is a bad record.",
    ]
    listed = "\n".join(f"{i}. {c}" for i, c in enumerate(criteria, start=1))
    return (
        f"You review training records for the task {spec.title('en')!r} ({spec.id}).\nCriteria:\n{listed}\n"
        f"Score each record from {SCORE_MIN} (unusable) to {SCORE_MAX} (excellent) and give a one-line reason. "
        'Answer with JSON only: {"scores": [{"score": <int>, "reason": "..."}, ...]}, one entry per record, in order.'
    )


def rubric_hash(spec: TaskSpec, lang: str) -> str:
    return hashlib.sha256(f"{JUDGE_VERSION}\x1e{rubric(spec, lang)}".encode()).hexdigest()[:16]


def judge_request(spec: TaskSpec, lang: str, records: list[dict[str, Any]], config: JudgeConfig) -> dict[str, Any]:
    listed = "\n\n".join(
        f"Record {i}:\ninstruction: {r['instruction']}\ninput: {r['input']}\noutput: {r['output']}"
        for i, r in enumerate(records, start=1)
    )
    n = len(records)
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["scores"],
        "properties": {
            "scores": {
                "type": "array",
                "minItems": n,
                "maxItems": n,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["score", "reason"],
                    "properties": {
                        "score": {"type": "integer", "minimum": SCORE_MIN, "maximum": SCORE_MAX},
                        "reason": {"type": "string"},
                    },
                },
            }
        },
    }
    return {
        "model": config.model,
        "messages": [{"role": "system", "content": rubric(spec, lang)}, {"role": "user", "content": listed}],
        "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "scores", "schema": schema}},
    }


def judge_without_schema(body: dict[str, Any]) -> dict[str, Any]:
    """The same judge request for a server that rejects response_format: the schema goes into the prompt."""
    schema = body["response_format"]["json_schema"]["schema"]
    messages = [dict(m) for m in body["messages"]]
    messages[-1]["content"] += "\n\nSchema of the answer:\n```json\n" + json.dumps(schema) + "\n```"
    return {k: v for k, v in body.items() if k != "response_format"} | {"messages": messages}


def read_verdicts(body: dict[str, Any], count: int) -> list[Verdict]:
    """One verdict per record; a record the answer does not score gets score None (and is dropped)."""
    items = read_items(read_message(body), "scores").items
    verdicts = []
    for index in range(count):
        item = items[index] if index < len(items) else None
        score = item.get("score") if isinstance(item, dict) else None
        if isinstance(score, float) and score.is_integer():
            score = int(score)
        if not isinstance(score, int) or isinstance(score, bool) or not SCORE_MIN <= score <= SCORE_MAX:
            verdicts.append(Verdict(None, "the judge gave no readable score"))
        else:
            verdicts.append(Verdict(score, str(item.get("reason", ""))[:300]))
    return verdicts
