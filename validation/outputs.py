"""The per-task output check: parse a record's output by its task's format and hold it to the task's schema."""

from __future__ import annotations

import json
from typing import Any

import fastjsonschema
import jsonschema

from catalog.records import compact_json
from catalog.spec import TaskSpec


class OutputError(ValueError):
    """An output that does not parse or breaks its task's schema; `field` points into the output."""

    def __init__(self, field: str, reason: str):
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


def parse_output(spec: TaskSpec, output: str) -> Any:
    """The value an output string holds: the string itself for text and label, parsed JSON otherwise."""
    if not spec.is_structured:
        return output
    try:
        return json.loads(output)
    except json.JSONDecodeError as err:
        raise OutputError(
            "output", f"not valid JSON for format {spec.output.format!r}: {err.msg} at char {err.pos}"
        ) from None


def check_output(spec: TaskSpec, lang: str, output: str) -> list[OutputError]:
    """Every way `output` breaks the task's output contract in language `lang`; empty when it is well-formed."""
    try:
        value = parse_output(spec, output)
    except OutputError as err:
        return [err]
    try:
        # Compiled validation first: most outputs are valid, and it is ~20x faster than the detailed path.
        _compiled(spec, lang)(value)
        problems = []
    except fastjsonschema.JsonSchemaException:
        problems = [
            OutputError(_pointer(error.absolute_path), _schema_message(error))
            for error in sorted(
                _validator(spec, lang).iter_errors(value), key=lambda e: list(map(str, e.absolute_path))
            )
        ]
    if spec.output.format == "labels" and isinstance(value, list):
        repeated = sorted({str(v) for v in value if value.count(v) > 1})
        if repeated:
            problems.append(OutputError("output", f"labels repeated: {', '.join(repeated)}"))
    if not problems and isinstance(value, dict):
        for rule in spec.output.constraints:
            low, high = (value.get(key) for key in rule.lte)
            if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
                problems.append(
                    OutputError(f"output.{rule.lte[0]}", f"{rule.lte[0]}={low} exceeds {rule.lte[1]}={high}")
                )
    if not problems and spec.is_structured and compact_json(value) != output:
        problems.append(
            OutputError("output", "structured output is not stored as compact JSON (no spaces, not ASCII-escaped)")
        )
    return problems


def output_texts(spec: TaskSpec, output: str) -> list[str]:
    """The natural-language strings of an output (not JSON keys or closed-set labels), for language checks."""
    value = parse_output(spec, output)
    if spec.output.format == "text":
        return [value]
    if spec.output.format == "items":
        return [v for v in value if isinstance(v, str)]
    return []


_VALIDATORS: dict[tuple[int, str], tuple[TaskSpec, Any]] = {}


def _cached(kind: str, spec: TaskSpec, lang: str) -> Any:
    # Keyed by object identity (specs are frozen); the entry keeps its spec alive so the id stays its own.
    key = (id(spec), f"{kind}:{lang}")
    if key not in _VALIDATORS:
        schema = spec.output_schema(lang)
        built = fastjsonschema.compile(schema) if kind == "fast" else jsonschema.Draft202012Validator(schema)
        _VALIDATORS[key] = (spec, built)
    return _VALIDATORS[key][1]


def _compiled(spec: TaskSpec, lang: str) -> Any:
    """A compiled (fastjsonschema) check of the output schema: raises on any violation, says little about it."""
    return _cached("fast", spec, lang)


def _validator(spec: TaskSpec, lang: str) -> jsonschema.protocols.Validator:
    """The reference validator (jsonschema, draft 2020-12): slower, but names every violation and where."""
    return _cached("full", spec, lang)


def _pointer(path: Any) -> str:
    return "output" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{error.instance!r} is not in the closed set ({allowed})"
    return error.message


def output_labels(spec: TaskSpec, lang: str, output: str) -> list[str]:
    """The closed-set labels an output holds, as their English labels so both languages count together."""
    value = parse_output(spec, output)
    schema = spec.output.schema_
    if spec.output.format in ("label", "labels"):
        sets, values = spec.label_sets_of(None), (value if isinstance(value, list) else [value])
        return _canonical(spec, sets, lang, values)
    found: list[str] = []
    if isinstance(value, dict):
        for key in schema.get("properties", {}):
            sets = spec.label_sets_of(key)
            if sets and key in value:
                item = value[key]
                found.extend(_canonical(spec, sets, lang, item if isinstance(item, list) else [item]))
    return found


def _canonical(spec: TaskSpec, sets: list[str], lang: str, values: list[Any]) -> list[str]:
    labels = []
    for value in values:
        if isinstance(value, dict):  # labels inside a list of objects (an aspect and its score)
            labels.extend(_canonical(spec, sets, lang, list(value.values())))
            continue
        for set_name in sets:
            if isinstance(value, str) and (label := spec.canonical_label(set_name, lang, value)) is not None:
                labels.append(label)
                break
    return labels
