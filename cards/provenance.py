"""Where the records came from: seed and synthesized counts, generator models, sampling parameters, cost, and the
filter funnel of the build (`build_report.json`)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from catalog.records import HUMAN_GENERATOR

# Keys the synthesizer may record in a record's provenance: sampling parameters, and what a request cost.
PARAMETER_KEYS = ("temperature", "top_p", "max_tokens", "seed", "n_exemplars", "presence_penalty", "frequency_penalty")
COST_KEYS = ("cost_usd", "cost")
# ... and how it asked: the prompt template, the answer mode, records per request (the recipe's synth settings).
SETTING_KEYS = ("template", "template_hash", "mode", "records_per_request", "two_stage")
NESTED_KEYS = ("sampling", "params", "parameters", "usage")


@dataclass
class Provenance:
    seed_records: int = 0
    synth_records: int = 0
    generators: Counter = field(default_factory=Counter)  # model id → synthesized records
    drafted_seeds: Counter = field(default_factory=Counter)  # model id → seeds it drafted and a person kept
    parameters: dict[str, set[str]] = field(default_factory=dict)  # parameter → values seen
    settings: dict[str, set[str]] = field(default_factory=dict)  # synthesizer setting → values seen
    cost_usd: float | None = None


def summarize(records: pl.DataFrame) -> Provenance:
    """Counts by source, and what the synthesizer recorded about its models, parameters and cost."""
    summary = Provenance()
    if records.is_empty():
        return summary
    seeds = records.filter(pl.col("source") == "seed")
    summary.seed_records = seeds.height
    summary.drafted_seeds.update(seeds.filter(pl.col("generator") != HUMAN_GENERATOR)["generator"].to_list())
    synth = records.filter(pl.col("source") == "synth")
    summary.synth_records = synth.height
    summary.generators.update(synth["generator"].to_list())
    cost = 0.0
    costed = False
    for text in synth["provenance"]:
        for key, value in _flatten(_loads(text)).items():
            if key in PARAMETER_KEYS and value is not None:
                summary.parameters.setdefault(key, set()).add(str(value))
            elif key in SETTING_KEYS and value is not None:
                summary.settings.setdefault(key, set()).add(str(value))
            elif key in COST_KEYS and isinstance(value, int | float):
                cost += float(value)
                costed = True
    summary.cost_usd = round(cost, 4) if costed else None
    return summary


def _loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _flatten(value: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys, plus those one level down under the usual grouping keys (`sampling`, `params`, …)."""
    flat = {k: v for k, v in value.items() if not isinstance(v, dict)}
    for key in NESTED_KEYS:
        if isinstance(value.get(key), dict):
            flat.update({k: v for k, v in value[key].items() if not isinstance(v, dict)})
    return flat


def funnel(build_report: dict[str, Any] | None) -> list[tuple[str, int]]:
    """(stage, records) from the build report's totals: what came in, what each filter dropped, what went out."""
    if not build_report or "totals" not in build_report:
        return []
    totals = build_report["totals"]
    ordered = ["in", *[k for k in totals if k not in ("in", "out", "train", "validation", "test")], "out"]
    return [(key, int(totals[key])) for key in ordered if key in totals]


def thresholds(build_report: dict[str, Any] | None) -> dict[str, Any]:
    """The filter thresholds the build recorded, if it recorded them."""
    if not build_report:
        return {}
    found = build_report.get("thresholds") or build_report.get("config") or {}
    return {k: v for k, v in found.items() if isinstance(v, int | float | str)}
