"""Agreement of blind second annotations with the reference (ANNOTATION.md, steps 3 and 4): the human row of the
matrix, and the records adjudication still has to look at.

Each annotation is scored against the reference with the task's own metric; a `label` task also gets Cohen's kappa
over its labels (English names, so both languages count as one label set). `agreement` is the figure before
adjudication (an adjudicated record is scored against the reference as it was, the log's `before`): what two people
agree on, the human reference row. `adjudicated` is the figure against today's references.

An annotation *disagrees* when its metric (every part of a `mean`) falls below the metric's tolerance
(`TOLERANCE`, or the task's own `metric.tolerance`); every disagreement needs a line in the adjudication log.
Free-text metrics have no default tolerance: two good replies share few words, so ROUGE-L cannot tell a
disagreement from a paraphrase; a task whose rules pin its text down sets one.

A row below the benchmark's bar (`MIN_AGREEMENT`) carries the task's `agreement_note`, why it stays there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from catalog import Catalog
from catalog.errors import Problem
from catalog.settings import Settings
from catalog.spec import MetricSpec, TaskSpec
from validation.adjudication import Adjudications, read_adjudications
from validation.metrics import metric_score, read_prediction, score
from validation.outputs import parse_output
from validation.records import read_record_file
from validation.reviews import read_reviews

MIN_AGREEMENT = 0.6  # a task below it is redefined until it is above, or its row says why not (issue 11)
# Below these scores a second annotation disagrees with the reference (a closed-set answer: any difference).
TOLERANCE: dict[str, float] = {
    "accuracy": 1.0,
    "set_f1": 0.6,
    "span_f1": 0.6,
    "field_f1": 0.6,
    "sentence_range": 0.6,
    "aspect_score_f1": 0.6,
}


@dataclass
class FolderAnnotations:
    """What a data folder holds for the agreement: annotations, gold references, the adjudication log, and the
    lines of reviews/ and adjudication/ that could not be read."""

    annotations: pl.DataFrame
    references: pl.DataFrame
    adjudications: Adjudications
    problems: list[Problem]


def read_folder_annotations(catalog: Catalog, settings: Settings) -> FolderAnnotations:
    reviews = read_reviews(settings.reviews_dir, catalog)
    adjudications = read_adjudications(settings.adjudication_dir, catalog)
    references = gold_references(catalog, settings.seeds_dir, reviews.decisions)
    return FolderAnnotations(reviews.annotations, references, adjudications, reviews.problems + adjudications.problems)


def gold_references(catalog: Catalog, seeds_dir: Path, decisions: pl.DataFrame) -> pl.DataFrame:
    """The gold seeds' references (id, task, lang, instruction, input, output) as the build publishes them: a
    review's `fix` replaces the output, a `reject` takes the record out."""
    columns = ("id", "task", "lang", "instruction", "input", "output")
    frames = [
        read_record_file(path, catalog).frame.filter(pl.col("role") == "gold").select(columns)
        for path in sorted(seeds_dir.glob("*.jsonl"))
    ]
    empty = pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    gold = pl.concat(frames) if frames else empty
    ruled = decisions.select(pl.col("record").alias("id"), "verdict", pl.col("output").alias("fixed"))
    return (
        gold.join(ruled, on="id", how="left")
        .filter(pl.col("verdict").ne_missing("reject"))
        .with_columns(pl.when(pl.col("verdict") == "fix").then("fixed").otherwise("output").alias("output"))
        .select(columns)
    )


def latest_round(annotations: pl.DataFrame) -> pl.DataFrame:
    """The annotations of each task and language's latest blind round: a task redefined after a round (new rules)
    is measured by the round under its current definition; earlier rounds stay in the files and in git."""
    return annotations.filter(pl.col("round") == pl.col("round").max().over("task", "lang"))


def scored_annotations(annotations: pl.DataFrame, references: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """Every annotation whose record has a reference (`references`: id, task, lang, output), with its `score`."""
    joined = annotations.join(
        references.select(pl.col("id").alias("record"), pl.col("output").alias("reference")), on="record"
    )
    return _with_scores(joined, catalog)


def _with_scores(joined: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    scores = [
        score(catalog.get(row["task"]), row["output"], row["reference"]) if row["task"] in catalog else None
        for row in joined.select("task", "output", "reference").iter_rows(named=True)
    ]
    return joined.with_columns(pl.Series("score", scores, dtype=pl.Float64))


def disagrees(spec: TaskSpec, prediction: str, reference: str) -> bool:
    """Whether a second annotation is beyond its metric's tolerance of the reference (see the module docstring)."""
    value = read_prediction(spec, prediction)
    if value is None:
        return True
    return _beyond(spec.metric, value, parse_output(spec, reference))


def _beyond(metric: MetricSpec, predicted: Any, reference: Any) -> bool:
    if metric.name == "mean":
        return any(_beyond(part, predicted, reference) for part in metric.parts)
    limit = metric.tolerance if metric.tolerance is not None else TOLERANCE.get(metric.name)
    return limit is not None and metric_score(metric, predicted, reference) < limit - 1e-9


def annotation_scores(
    annotations: pl.DataFrame, references: pl.DataFrame, adjudications: Adjudications, catalog: Catalog
) -> pl.DataFrame:
    """The latest round's annotations, each scored against the reference it was made against, with whether it
    `disagrees` and the adjudication `outcome` that answered it (null: none). An annotation made before the log's
    line in force on its record met the line's `before` (dropped records included) and is answered by it; one made
    after it (a later round) meets today's reference and needs a line of its own if it disagrees."""
    log = adjudications.outcomes.select("record", "outcome", "before", pl.col("at").alias("adjudicated_at"))
    current = references.select(pl.col("id").alias("record"), pl.col("output").alias("current"))
    answered = pl.col("adjudicated_at").is_not_null() & (pl.col("at") < pl.col("adjudicated_at"))
    joined = (
        latest_round(annotations)
        .join(current, on="record", how="left")
        .join(log, on="record", how="left")
        .with_columns(
            pl.when(answered & pl.col("before").is_not_null()).then("before").otherwise("current").alias("reference"),
            pl.when(answered).then("outcome").alias("outcome"),
        )
        .filter(pl.col("reference").is_not_null())
    )
    raw = _with_scores(joined.drop("current", "before", "adjudicated_at", "outcome"), catalog)
    flags = [
        disagrees(catalog.get(t), o, r) if t in catalog else False
        for t, o, r in raw.select("task", "output", "reference").iter_rows()
    ]
    return raw.with_columns(pl.Series("disagrees", flags, dtype=pl.Boolean), joined["outcome"].alias("outcome"))


def human_agreement(
    annotations: pl.DataFrame, references: pl.DataFrame, adjudications: Adjudications, catalog: Catalog
) -> dict[str, Any]:
    """The agreement table before and after adjudication, and the disagreements the log has no line for.

    `references` (id, output) are today's; the log's `before` restores the reference an adjudicated record had when
    it was annotated; a record whose input was rewritten (`replaced_by`) counts before adjudication only. Only each
    task and language's latest blind round is scored (`earlier_rounds`: how many annotations that leaves out).
    """
    if annotations.is_empty():
        return {"annotations": 0, "earlier_rounds": 0, "scored": 0, "table": [], "open": []}
    raw = annotation_scores(annotations, references, adjudications, catalog)
    log = adjudications.outcomes
    # An annotation of a record whose input was rewritten answered another text: it is not scored against the new one.
    rewritten = log.filter(pl.col("replaced_by").is_not_null()).select("record")
    now = scored_annotations(latest_round(annotations).join(rewritten, on="record", how="anti"), references, catalog)
    after = {row["task"] + "/" + row["lang"]: row["agreement"] for row in agreement_table(now, catalog)}
    table = []
    for row in agreement_table(raw, catalog):
        cell = raw.filter((pl.col("task") == row["task"]) & (pl.col("lang") == row["lang"]) & pl.col("disagrees"))
        outcomes = cell["outcome"].value_counts()
        counts = dict(zip(outcomes["outcome"].to_list(), outcomes["count"].to_list(), strict=True))
        table.append(
            {
                **row,
                "disagreements": cell.height,
                **{outcome: counts.get(outcome, 0) for outcome in ("kept", "fixed", "dropped")},
                "open": counts.get(None, 0),
                "adjudicated": after.get(row["task"] + "/" + row["lang"]),
            }
        )
    unresolved = raw.filter(pl.col("disagrees") & pl.col("outcome").is_null())
    return {
        "annotations": annotations.height,
        "earlier_rounds": annotations.height - latest_round(annotations).height,
        "scored": raw.height,
        "table": table,
        "open": unresolved.select("record", "task", "lang", "reviewer", "output", "reference", "score").to_dicts(),
    }


def agreement_table(scored: pl.DataFrame, catalog: Catalog) -> list[dict[str, Any]]:
    """Per task and language, in catalog order: how many annotations, their mean score, and Cohen's kappa where the
    metric compares single closed-set labels (a `label` task, or the accuracy of a field such as `sentiment`; over
    several such fields, their mean, each field's in `kappa_fields`)."""
    rows = []
    for spec in catalog:
        fields = kappa_fields(spec)
        for lang in spec.languages:
            cell = scored.filter((pl.col("task") == spec.id) & (pl.col("lang") == lang))
            if cell.is_empty():
                continue
            pairs = cell.select("reference", "output").rows()
            by_field = {name: cohen_kappa(_label_pairs(spec, lang, field, pairs)) for name, field in fields.items()}
            known = [k for k in by_field.values() if k is not None]
            row = {
                "task": spec.id,
                "lang": lang,
                "round": int(cell["round"].max()),
                "annotations": cell.height,
                "agreement": float(cell["score"].mean()),
                "kappa": sum(known) / len(known) if known else None,
            }
            if row["agreement"] < MIN_AGREEMENT and spec.agreement_note:
                row["note"] = spec.agreement_note
            if len(by_field) > 1:
                row["kappa_fields"] = by_field
            rows.append(row)
    return rows


def agreement_notes(table: list[dict[str, Any]]) -> list[str]:
    """One line per task whose rows fall below the bar, with its languages and why (the task's agreement_note)."""
    below: dict[str, tuple[list[str], str]] = {}
    for row in table:
        if "note" in row:
            below.setdefault(row["task"], ([], row["note"]))[0].append(row["lang"])
    return [f"below {MIN_AGREEMENT}: {task} ({', '.join(langs)}): {note}" for task, (langs, note) in below.items()]


def kappa_fields(spec: TaskSpec) -> dict[str, str | None]:
    """The single-label parts of a task's metric: name → the output field holding the label (None: the output
    itself, for a `label` task). Set, span and free-text metrics have none."""
    if spec.label_set is not None:
        return {spec.label_set: None}
    parts = spec.metric.parts or [spec.metric]
    return {
        part.field: part.field
        for part in parts
        if part.name == "accuracy" and part.field is not None and len(spec.label_sets_of(part.field)) == 1
    }


def _label_pairs(
    spec: TaskSpec, lang: str, field: str | None, pairs: list[tuple[str, str]]
) -> list[tuple[str | None, str | None]]:
    """(reference, annotation) labels of one field as English label names (None: not a label of the set)."""
    set_name = spec.label_set if field is None else spec.label_sets_of(field)[0]

    def label(value: Any) -> str | None:
        if field is not None:
            value = value.get(field) if isinstance(value, dict) else None
        return spec.canonical_label(set_name, lang, value.strip()) if isinstance(value, str) else None

    return [(label(parse_output(spec, r)), label(read_prediction(spec, a))) for r, a in pairs]


def cohen_kappa(pairs: list[tuple[Any, Any]]) -> float | None:
    """Cohen's kappa of two raters over the same items; None when chance agreement is certain (one label only)."""
    if not pairs:
        return None
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(first[label] * second.get(label, 0) for label in first) / (n * n)
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)
