"""A task from a sketch: the one place a catalog file is put together, for `task new` (flags) and `task draft` (an
LLM's draft) alike.

A sketch names the output shape in a few words (a format, label sets, fields of a kind); the JSON Schema, the
closed sets and the default metric follow from it, so a drafted or scaffolded task cannot disagree with itself.
What a sketch leaves open is written as a `TODO: …` text that `validate` names as left to fill.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from catalog.spec import LANG_NAMES, MIN_SCENARIOS

TODO = "TODO"  # a text starting with this is a part of a task left to fill
FieldKind = Literal["text", "list", "label", "labels"]
FIELD_KINDS: tuple[str, ...] = ("text", "list", "label", "labels")
DEFAULT_METRIC = {"text": "rouge_l", "items": "rouge_l_best_match", "label": "accuracy", "labels": "set_f1"}


@dataclass(frozen=True)
class FieldSketch:
    """One key of a `fields` or `object` output: free text, a list of texts, or one or several labels of its own
    closed set (named after the field)."""

    name: str
    kind: FieldKind
    labels: tuple[dict[str, str], ...] = ()  # language → label text, for `label` and `labels` fields


@dataclass(frozen=True)
class TaskSketch:
    id: str
    code: str
    domain: str
    languages: tuple[str, ...]
    format: str  # text | items | label | labels | fields | object
    labels: tuple[dict[str, str], ...] = ()  # the closed set of a `label` or `labels` task
    set_name: str = "label"
    fields: tuple[FieldSketch, ...] = ()  # the keys of a `fields` or `object` task
    name: dict[str, str] = field(default_factory=dict)
    input: dict[str, str] = field(default_factory=dict)
    instructions: dict[str, list[str]] = field(default_factory=dict)
    scenarios: dict[str, list[str]] = field(default_factory=dict)
    metric: dict[str, Any] | None = None  # default: follows from the format


def sketch_problems(sketch: TaskSketch) -> list[tuple[str, str]]:
    """(field, reason) for what a sketch gets wrong before it becomes a document (repeated labels or fields, a
    label format without labels): the catalog loader would report these less directly."""
    found: list[tuple[str, str]] = []
    if sketch.format in ("label", "labels") and len(sketch.labels) < 2:
        found.append(("labels", f"a {sketch.format} task needs at least two labels"))
    if sketch.format in ("fields", "object") and not sketch.fields:
        found.append(("fields", f"a {sketch.format} task needs at least one field"))
    names = [f.name for f in sketch.fields]
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        found.append(("fields", f"field names repeated: {', '.join(repeated)}"))
    sets = [("labels", sketch.labels)] + [(f"fields.{f.name}.labels", f.labels) for f in sketch.fields]
    for where, labels in sets:
        for lang in sketch.languages:
            texts = [label.get(lang, "") for label in labels]
            if repeated := sorted({t for t in texts if t and texts.count(t) > 1}):
                found.append((where, f"{lang} labels repeated: {', '.join(repeated)}"))
    for f in sketch.fields:
        if f.kind in ("label", "labels") and len(f.labels) < 2:
            found.append((f"fields.{f.name}.labels", f"a {f.kind} field needs at least two labels"))
    return found


def task_document(sketch: TaskSketch) -> dict[str, Any]:
    """The catalog file's content, in the order FORMAT.md shows; TODO texts where the sketch says nothing."""
    langs = sketch.languages
    bilingual = sketch.languages == ("en", "zh")
    schema, closed_sets = _output_schema(sketch)
    document: dict[str, Any] = {"id": sketch.id, "code": sketch.code, "domain": sketch.domain}
    if not bilingual:
        document["languages"] = list(langs)
    document["name"] = {
        lang: sketch.name.get(lang) or _todo(f"the task's name in {LANG_NAMES[lang]}") for lang in langs
    }
    document["instructions"] = {
        lang: sketch.instructions.get(lang)
        or [
            _todo(f"a directive instruction in {LANG_NAMES[lang]}{_placeholder_hint(closed_sets)}"),
            _todo("a paraphrase of it"),
        ]
        for lang in langs
    }
    document["input"] = {
        lang: sketch.input.get(lang) or _todo(f"what the input is, one {LANG_NAMES[lang]} sentence") for lang in langs
    }
    document["output"] = {"format": sketch.format, "schema": schema}
    if closed_sets:
        document["closed_sets"] = closed_sets
    document["metric"] = sketch.metric or default_metric(sketch)
    document["scenarios"] = {
        lang: sketch.scenarios.get(lang)
        or [_todo(f"at least {MIN_SCENARIOS} {LANG_NAMES[lang]} scenarios (sub-topics, personas, settings)")]
        for lang in langs
    }
    return document


def default_metric(sketch: TaskSketch) -> dict[str, Any]:
    """The metric a format is scored by unless the task says otherwise."""
    if sketch.format in DEFAULT_METRIC:
        return {"name": DEFAULT_METRIC[sketch.format]}
    return {"name": "field_f1"}


def _output_schema(sketch: TaskSketch) -> tuple[dict[str, Any], dict[str, list[dict[str, str]]]]:
    text = {"type": "string", "minLength": 1}
    texts = {"type": "array", "minItems": 1, "maxItems": 10, "items": text}
    if sketch.format == "text":
        return text, {}
    if sketch.format == "items":
        return texts, {}
    if sketch.format in ("label", "labels"):
        closed = {sketch.set_name: _labels(sketch.labels, sketch.languages)}
        ref = {"$ref": f"#/$defs/{sketch.set_name}"}
        if sketch.format == "label":
            return ref, closed
        return {"type": "array", "minItems": 1, "uniqueItems": True, "items": ref}, closed
    nullable = sketch.format == "fields"  # fixed keys: a value absent from the input is null
    properties: dict[str, Any] = {}
    closed_sets: dict[str, list[dict[str, str]]] = {}
    for f in sketch.fields:
        if f.kind == "text":
            properties[f.name] = {"type": ["string", "null"], "minLength": 1} if nullable else text
        elif f.kind == "list":
            properties[f.name] = {**texts, "minItems": 0} if nullable else texts
        else:
            closed_sets[f.name] = _labels(f.labels, sketch.languages)
            ref = {"$ref": f"#/$defs/{f.name}"}
            if f.kind == "label":
                properties[f.name] = {"anyOf": [ref, {"type": "null"}]} if nullable else ref
            else:
                properties[f.name] = {
                    "type": "array",
                    "minItems": 0 if nullable else 1,
                    "uniqueItems": True,
                    "items": ref,
                }
    schema = {
        "type": "object",
        "required": [f.name for f in sketch.fields],
        "additionalProperties": False,
        "properties": properties,
    }
    return schema, closed_sets


def _labels(labels: tuple[dict[str, str], ...], languages: tuple[str, ...]) -> list[dict[str, str]]:
    return [
        {
            lang: label.get(lang) or _todo(f"{LANG_NAMES[lang]} for {next(iter(label.values()), '')!r}")
            for lang in languages
        }
        for label in labels
    ]


def _placeholder_hint(closed_sets: dict[str, Any]) -> str:
    if not closed_sets:
        return ""
    return "; `{" + next(iter(closed_sets)) + "}` stands for that set's labels"


def _todo(what: str) -> str:
    return f"{TODO}: {what}"


def todo_paths(node: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Where a raw task document still holds TODO texts: (path, the text)."""
    found: list[tuple[tuple[str, ...], str]] = []
    if isinstance(node, str) and node.startswith(TODO):
        found.append((path, node))
    elif isinstance(node, dict):
        for key, value in node.items():
            found.extend(todo_paths(value, (*path, str(key))))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(todo_paths(value, (*path, str(index))))
    return found


def task_yaml(document: dict[str, Any], comment: str = "") -> str:
    """The catalog file's text: the document in its given key order, with a comment on top."""
    header = "".join(f"# {line}\n" if line else "#\n" for line in comment.splitlines())
    return header + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=120)


def write_atomically(path: Path, text: str) -> None:
    """`path` holds `text` whole or is left as it was: written beside it, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
