"""Every task's schema accepts its well-formed outputs and rejects malformed ones, for every output format."""

from __future__ import annotations

import json
from typing import Any

import pytest

from catalog import Catalog
from catalog.records import compact_json
from catalog.spec import LANGS
from tests.conftest import seed_records
from validation.outputs import check_output, output_labels

FORMATS = ("text", "label", "items", "labels", "fields", "object")


def _reasons(catalog: Catalog, task: str, lang: str, output: str) -> list[str]:
    return [f"{p.field}: {p.reason}" for p in check_output(catalog.get(task), lang, output)]


def test_the_catalog_uses_every_output_format(catalog: Catalog) -> None:
    assert {t.output.format for t in catalog} == set(FORMATS)


def _malformed(spec: Any, lang: str, value: Any) -> list[str]:
    """Outputs that break the contract of the task's format, built from a well-formed value."""
    other = "zh" if lang == "en" else "en"
    fmt = spec.output.format
    if fmt == "text":
        return ["", "   " if spec.output.schema_.get("pattern") else ""]
    if fmt == "label":
        set_name = spec.label_sets_of(None)[0]
        wrong = [label for label in spec.labels(set_name, other) if label not in spec.labels(set_name, lang)]
        return ["not-a-label", *wrong[:1]]
    if fmt in ("items", "labels"):
        return [
            "not json",
            compact_json("a bare string"),
            compact_json([1, 2]),
            compact_json([*value, *value[:1]] or ["x", "x"]),
        ]
    key = next(iter(value))
    missing = {k: v for k, v in value.items() if k != key}
    return [
        compact_json(missing),
        compact_json({**value, "unexpected": "x"}),
        json.dumps(value, ensure_ascii=True, indent=1),
    ]


@pytest.mark.parametrize("lang", LANGS)
def test_every_task_accepts_its_seeds_and_rejects_malformed_outputs(catalog: Catalog, lang: str) -> None:
    for spec in catalog:
        seeds = [r for r in seed_records(spec.id) if r["lang"] == lang]
        assert seeds, f"{spec.id} has no {lang} seed"
        for record in seeds:
            assert _reasons(catalog, spec.id, lang, record["output"]) == [], (spec.id, record["output"])
        value = json.loads(seeds[0]["output"]) if spec.is_structured else seeds[0]["output"]
        for bad in _malformed(spec, lang, value):
            assert _reasons(catalog, spec.id, lang, bad), f"{spec.id} ({lang}) accepted {bad!r}"


def test_label_outputs_count_as_their_english_label(catalog: Catalog) -> None:
    spec = catalog.get("fin_news_sentiment")
    zh = compact_json({"sentiment": "负面", "reason": "业绩预减。"})
    assert output_labels(spec, "zh", zh) == ["negative"]
    labels_task = catalog.get("hr_exit_reasons")
    two = labels_task.labels(labels_task.label_sets_of(None)[0], "zh")[:2]
    assert (
        output_labels(labels_task, "zh", compact_json(two))
        == labels_task.labels(labels_task.label_sets_of(None)[0], "en")[:2]
    )


def test_cross_field_constraints_hold(catalog: Catalog) -> None:
    spec = catalog.get("law_sentence_prediction")
    charge = spec.labels(spec.label_sets_of("charge")[0], "en")[0]
    assert _reasons(catalog, spec.id, "en", compact_json({"charge": charge, "months_low": 6, "months_high": 12})) == []
    assert _reasons(catalog, spec.id, "en", compact_json({"charge": charge, "months_low": 12, "months_high": 6})) == [
        "output.months_low: months_low=12 exceeds months_high=6"
    ]


def test_structured_outputs_must_be_compact_json(catalog: Catalog) -> None:
    loose = json.dumps({"sentiment": "负面", "reason": "业绩预减。"}, ensure_ascii=True)
    assert _reasons(catalog, "fin_news_sentiment", "zh", loose) == [
        "output: structured output is not stored as compact JSON (no spaces, not ASCII-escaped)"
    ]
