"""Each task's metric (catalog `metric`: name, field, parts), scoring one prediction against one reference.

Scores lie in [0, 1]. The reference is a published output (well-formed by construction); the prediction is whatever
the model wrote, read leniently (code fences, text around the JSON) and scored 0 when it cannot be read.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from catalog.spec import MetricSpec, TaskSpec
from catalog.text_units import text_units, unit_key
from validation.lenient_json import parse_json_lenient, strip_fences
from validation.outputs import parse_output

MBTI_LETTERS = 4
SPAN_MATCH_MIN = 0.5  # the least unit F1 at which two spans are the same span found with other boundaries
# A number as a text: digits with an optional sign, thousands commas and decimals ("3,856.20", "-12", "0.5").
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def read_prediction(spec: TaskSpec, prediction: str) -> Any | None:
    """The value a prediction holds for the task's output format, or None when it cannot be read."""
    if not spec.is_structured:
        return strip_fences(prediction)
    expected = list if spec.output.format in ("items", "labels") else dict
    return parse_json_lenient(prediction, expected)


def score(spec: TaskSpec, prediction: str, reference: str) -> float:
    """The task's metric for one record, a closed-set label named by one of its aliases read as the label."""
    value = read_prediction(spec, prediction)
    if value is None:
        return 0.0
    return metric_score(spec.metric, with_labels_for_aliases(spec, value), parse_output(spec, reference))


def with_labels_for_aliases(spec: TaskSpec, value: Any) -> Any:
    """`value` with each text the schema takes from a closed set, where it is an alias of a label (compared by
    units), replaced by that label in the alias's language."""
    names = {
        name: {
            unit_key(alias): getattr(label, lang)
            for label in labels
            for lang in spec.languages
            for alias in getattr(label.aliases, lang)
        }
        for name, labels in spec.closed_sets.items()
        if any(label.aliases.en or label.aliases.zh for label in labels)
    }
    return _relabel(spec.output.schema_, value, names) if names else value


def _relabel(schema: Any, value: Any, names: dict[str, dict[str, str]]) -> Any:
    if not isinstance(schema, dict):
        return value
    ref = schema.get("$ref")
    if isinstance(ref, str) and isinstance(value, str):
        return names.get(ref.rsplit("/", 1)[-1], {}).get(unit_key(value), value)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        return {k: _relabel(properties.get(k), v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_relabel(schema.get("items"), v, names) for v in value]
    return value


def metric_score(metric: MetricSpec, predicted: Any, reference: Any) -> float:
    if metric.name == "mean":
        return sum(metric_score(part, predicted, reference) for part in metric.parts) / len(metric.parts)
    if metric.field is not None:
        if not isinstance(predicted, dict) or not isinstance(reference, dict):
            return 0.0
        predicted, reference = predicted.get(metric.field), reference.get(metric.field)
    return _METRICS[metric.name](predicted, reference)


def accuracy(predicted: Any, reference: Any) -> float:
    """1 when the prediction is the reference label (case, width, spacing and punctuation aside)."""
    if not isinstance(predicted, str) or not isinstance(reference, str):
        return float(predicted == reference and predicted is not None)
    return float(unit_key(predicted) == unit_key(reference) and unit_key(reference) != "")


def f1(precision_credit: float, predicted_count: int, reference_count: int) -> float:
    """F1 from the summed credit of matches and the sizes of both sides; two empty sides agree perfectly."""
    if predicted_count == 0 and reference_count == 0:
        return 1.0
    if predicted_count == 0 or reference_count == 0 or precision_credit == 0:
        return 0.0
    precision, recall = precision_credit / predicted_count, precision_credit / reference_count
    return 2 * precision * recall / (precision + recall)


def set_f1(predicted: Any, reference: Any) -> float:
    """F1 of two sets of strings, each item compared by its units (Chinese at character level)."""
    if not isinstance(predicted, list) or not isinstance(reference, list):
        return 0.0
    pred = {unit_key(v) for v in predicted if isinstance(v, str) and unit_key(v)}
    ref = {unit_key(v) for v in reference if isinstance(v, str) and unit_key(v)}
    return f1(len(pred & ref), len(pred), len(ref))


def span_f1(predicted: Any, reference: Any) -> float:
    """Sets of free-text spans with partial credit. Spans pair off one to one, the most alike pair first (ties by
    position); a pair earns its unit F1 (characters for Chinese, words otherwise) when that is at least
    SPAN_MATCH_MIN, so "very disappointed" found as "disappointed" earns 2/3 and 太失望了 found as 失望 earns 2/3,
    while two spans that share only a word or a character earn nothing. F1 over the summed credit."""
    if not isinstance(predicted, list) or not isinstance(reference, list):
        return 0.0
    pred = list(dict.fromkeys(unit_key(v) for v in predicted if isinstance(v, str) and unit_key(v)))
    ref = list(dict.fromkeys(unit_key(v) for v in reference if isinstance(v, str) and unit_key(v)))
    pairs = sorted(
        ((unit_f1(p, r), i, j) for i, p in enumerate(pred) for j, r in enumerate(ref)),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    used_pred: set[int] = set()
    used_ref: set[int] = set()
    credit = 0.0
    for similarity, i, j in pairs:
        if similarity < SPAN_MATCH_MIN:
            break
        if i not in used_pred and j not in used_ref:
            used_pred.add(i)
            used_ref.add(j)
            credit += similarity
    return f1(credit, len(pred), len(ref))


def as_number(value: Any) -> float | None:
    """A JSON number, or a text that is only a number ("3856.20", "3,856.2"), as a float; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value.strip().replace(",", ""))
    return None


def unit_f1(predicted: str, reference: str) -> float:
    """F1 of the bags of units of two texts (SQuAD-style; characters for Chinese)."""
    pred, ref = Counter(text_units(predicted)), Counter(text_units(reference))
    return f1(sum((pred & ref).values()), sum(pred.values()), sum(ref.values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, one row of the table at a time."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(predicted: Any, reference: Any) -> float:
    """ROUGE-L F1 over units: words for English, characters for Chinese."""
    if not isinstance(predicted, str) or not isinstance(reference, str):
        return 0.0
    pred, ref = text_units(predicted), text_units(reference)
    return f1(lcs_length(pred, ref), len(pred), len(ref))


def rouge_l_best_match(predicted: Any, reference: Any) -> float:
    """Lists of texts: precision is the mean best ROUGE-L of each predicted item against the references, recall the
    mean best of each reference against the predictions; the score is their F1."""
    if not isinstance(predicted, list) or not isinstance(reference, list):
        return 0.0
    pred = [v for v in predicted if isinstance(v, str) and text_units(v)]
    ref = [v for v in reference if isinstance(v, str) and text_units(v)]
    if not pred or not ref:
        return float(not pred and not ref)
    table = [[rouge_l(p, r) for r in ref] for p in pred]
    precision = sum(max(row) for row in table) / len(pred)
    recall = sum(max(table[i][j] for i in range(len(pred))) for j in range(len(ref))) / len(ref)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _field_credit(predicted: Any, reference: Any) -> float:
    if isinstance(reference, list):
        return set_f1(predicted if isinstance(predicted, list) else [str(predicted)], reference)
    predicted_number, reference_number = as_number(predicted), as_number(reference)
    if predicted_number is not None and reference_number is not None:
        return float(math.isclose(predicted_number, reference_number, rel_tol=1e-9, abs_tol=1e-9))
    return unit_f1(str(predicted), str(reference))


def field_f1(predicted: Any, reference: Any) -> float:
    """Fixed-key objects: each non-empty field is one item. A predicted field earns its value's similarity to the
    reference (unit F1 for text, set F1 for lists, equality for numbers, a number written as text included: 3856.2
    and "3856.20" are equal, 3856.2 and 3856.3 are not); precision divides the credit by the predicted
    non-empty fields (unknown keys count), recall by the reference's non-empty fields."""
    if not isinstance(predicted, dict) or not isinstance(reference, dict):
        return 0.0
    credit = sum(
        _field_credit(predicted[key], value)
        for key, value in reference.items()
        if not _empty(value) and not _empty(predicted.get(key))
    )
    predicted_count = sum(1 for value in predicted.values() if not _empty(value))
    reference_count = sum(1 for value in reference.values() if not _empty(value))
    return f1(credit, predicted_count, reference_count)


def sentence_range(predicted: Any, reference: Any) -> float:
    """0 when the charge is wrong; else 1 − (mean absolute error of the two bounds / the reference's upper bound)."""
    if not isinstance(predicted, dict) or not isinstance(reference, dict):
        return 0.0
    if not accuracy(predicted.get("charge"), reference.get("charge")):
        return 0.0
    bounds = ("months_low", "months_high")
    if not all(isinstance(predicted.get(b), int | float) and not isinstance(predicted.get(b), bool) for b in bounds):
        return 0.0
    error = sum(abs(predicted[b] - reference[b]) for b in bounds) / 2
    return max(0.0, 1.0 - error / max(reference["months_high"], 1))


def aspect_score_f1(predicted: Any, reference: Any) -> float:
    """Aspects matched by name (units); each match earns 1 − |score difference| / 100; F1 over both lists."""
    if not isinstance(predicted, list) or not isinstance(reference, list):
        return 0.0

    def by_name(items: list[Any]) -> dict[str, Any]:
        named: dict[str, Any] = {}
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("aspect"), str) and unit_key(item["aspect"]):
                named.setdefault(unit_key(item["aspect"]), item.get("score"))
        return named

    pred, ref = by_name(predicted), by_name(reference)
    credit = 0.0
    for name, ref_score in ref.items():
        pred_score = pred.get(name)
        if name in pred and isinstance(pred_score, int | float) and not isinstance(pred_score, bool):
            credit += max(0.0, 1.0 - abs(pred_score - ref_score) / 100)
    return f1(credit, len(pred), len(ref))


def mbti_dimension_accuracy(predicted: str, reference: str) -> float:
    """Share of the four MBTI letters (E/I, S/N, T/F, J/P) a predicted type gets right."""
    pred, ref = unit_key(strip_fences(predicted)).upper(), unit_key(reference).upper()
    if len(pred) != MBTI_LETTERS or len(ref) != MBTI_LETTERS:
        return 0.0
    return sum(p == r for p, r in zip(pred, ref, strict=True)) / MBTI_LETTERS


_METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy,
    "set_f1": set_f1,
    "span_f1": span_f1,
    "field_f1": field_f1,
    "rouge_l": rouge_l,
    "rouge_l_best_match": rouge_l_best_match,
    "sentence_range": sentence_range,
    "aspect_score_f1": aspect_score_f1,
}

# Secondary figures a task reports beside its metric (TASKS.md: MBTI identification also by dimension).
EXTRA_METRICS: dict[str, dict[str, Callable[[str, str], float]]] = {
    "rp_mbti_identify": {"dimension_accuracy": mbti_dimension_accuracy},
}
