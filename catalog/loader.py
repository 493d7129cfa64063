"""Load and check the whole task catalog, reporting every problem of every file at once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from pydantic import ValidationError

from catalog.authoring import todo_paths
from catalog.errors import CatalogError, Problem, display_path
from catalog.settings import Settings
from catalog.spec import LANGS, PER_LANGUAGE_FIELDS, PLACEHOLDER, SET_REF, ClosedLabel, TaskSpec, referenced_sets
from catalog.text_units import unit_key


@dataclass(frozen=True)
class Catalog:
    """The checked sub-tasks, in id order, with lookups by id, code and domain."""

    tasks: tuple[TaskSpec, ...]

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def __contains__(self, task_id: object) -> bool:
        return isinstance(task_id, str) and task_id in self._index and self._index[task_id].id == task_id

    def allows_instruction(self, task_id: str, lang: str, text: str) -> bool:
        """Whether `text` is one of the task's (expanded) instructions in `lang`: a set lookup, for hot loops."""
        return text in self._instruction_sets.get((task_id, lang), ())

    @cached_property
    def _instruction_sets(self) -> dict[tuple[str, str], frozenset[str]]:
        return {(t.id, lang): frozenset(t.instructions_for(lang)) for t in self.tasks for lang in t.languages}

    @property
    def languages(self) -> list[str]:
        """The languages any task of the catalog is written in, in the order of LANGS."""
        return [lang for lang in LANGS if any(lang in t.languages for t in self.tasks)]

    def cells(self) -> list[tuple[str, str]]:
        """(task id, language) for every language of every task, in catalog order."""
        return [(t.id, lang) for t in self.tasks for lang in t.languages]

    @cached_property
    def _index(self) -> dict[str, TaskSpec]:
        return {key: t for t in self.tasks for key in (t.id, t.code)}

    def get(self, key: str) -> TaskSpec:
        """A task by id or by code (case-insensitive for codes)."""
        found = self._index.get(key) or self._index.get(key.upper())
        if found is not None:
            return found
        raise KeyError(f"no task with id or code {key!r}; known: {', '.join(t.id for t in self.tasks)}")

    def by_domain(self, domain: str) -> list[TaskSpec]:
        return [t for t in self.tasks if t.domain == domain]

    @property
    def domains(self) -> list[str]:
        return sorted({t.domain for t in self.tasks})

    def select(self, keys: Iterable[str]) -> list[TaskSpec]:
        """Tasks named by id, code or domain, or all of them for `all`; each once, in catalog order."""
        wanted: set[str] = set()
        for key in keys:
            if key == "all":
                wanted.update(t.id for t in self.tasks)
            elif key in self.domains:
                wanted.update(t.id for t in self.by_domain(key))
            else:
                wanted.add(self.get(key).id)
        return [t for t in self.tasks if t.id in wanted]


def load_catalog(tasks_dir: Path | None = None) -> Catalog:
    """Every `<id>.yaml` under `tasks_dir`, checked; raises CatalogError listing all problems found."""
    tasks_dir = tasks_dir or Settings.from_env().tasks_dir
    paths = sorted(tasks_dir.glob("*.yaml"))
    problems: list[Problem] = []
    if not paths:
        problems.append(Problem(display_path(tasks_dir), None, None, "no task files (*.yaml) found"))
    specs: list[tuple[str, TaskSpec]] = []
    for path in paths:
        spec, found = load_task_file(path)
        problems.extend(found)
        if spec is not None:
            specs.append((display_path(path), spec))
    problems.extend(_cross_file_problems(specs))
    if problems:
        raise CatalogError(problems)
    return Catalog(tuple(sorted((spec for _, spec in specs), key=lambda s: s.id)))


def load_task_file(path: Path, named_by_id: bool = True) -> tuple[TaskSpec | None, list[Problem]]:
    """One task file: the spec if it is valid, and every problem found in it. A catalog file is named by its id
    (`named_by_id`); a draft's `task.yaml` is not."""
    name = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except UnicodeDecodeError as err:
        return None, [Problem(name, None, None, f"not UTF-8 text ({err.reason} at byte {err.start})")]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(name, line, None, f"not valid YAML: {getattr(err, 'problem', None) or err}")]
    return check_task_document(raw, name, node, path.stem if named_by_id else None)


def check_task_document(
    raw: Any, name: str, node: yaml.Node | None = None, file_stem: str | None = None
) -> tuple[TaskSpec | None, list[Problem]]:
    """A task as parsed from YAML (or drafted): the spec if it is valid, and every problem found in it. `node`, the
    composed YAML, gives problems their lines; `file_stem` is the file name the id must equal."""
    if not isinstance(raw, dict):
        return None, [Problem(name, 1, None, "a task file must be a YAML mapping")]
    # Parts a scaffold left to fill are named as such, and what only fails because they are unfilled is not.
    todos = todo_paths(raw)
    left = [
        Problem(name, _line_of(node, list(p)), ".".join(p), "left to fill: " + todo.split(":", 1)[-1].strip())
        for p, todo in todos
    ]
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as err:
        errors = [e for e in err.errors() if not _touches(tuple(str(p) for p in e["loc"]), todos)]
        return None, left + [_pydantic_problem(name, node, e) for e in errors]
    problems = left + [
        Problem(name, _line_of(node, field.split(".")), field, reason)
        for field, reason in _semantic_problems(spec)
        if not _touches(tuple(field.split(".")), todos)
    ]
    if file_stem is not None and spec.id != file_stem:
        problems.append(
            Problem(name, _line_of(node, ["id"]), "id", f"id {spec.id!r} differs from the file name {file_stem!r}")
        )
    return (None if problems else spec), problems


def _touches(location: tuple[str, ...], todos: list[tuple[tuple[str, ...], str]]) -> bool:
    """Whether a problem's location lies on the path to a TODO text, or under it."""
    location = tuple("schema" if part == "schema_" else part for part in location)
    return any(location[: len(p)] == p or p[: len(location)] == location for p, _ in todos)


def _alias_problems(set_name: str, labels: list[ClosedLabel], lang: str) -> Iterator[tuple[str, str]]:
    """An alias names one label only: not another label, not another label's alias (compared as the metric does)."""
    owner: dict[str, int] = {}
    for index, label in enumerate(labels):
        if getattr(label, lang):
            owner.setdefault(unit_key(getattr(label, lang)), index)
    for index, label in enumerate(labels):
        for alias in getattr(label.aliases, lang):
            key = unit_key(alias)
            if not key:
                yield f"closed_sets.{set_name}.{index}.aliases.{lang}", f"alias {alias!r} is empty"
            elif owner.setdefault(key, index) != index:
                other = getattr(labels[owner[key]], lang)
                yield f"closed_sets.{set_name}.{index}.aliases.{lang}", f"alias {alias!r} already names {other!r}"


def _semantic_problems(spec: TaskSpec) -> Iterator[tuple[str, str]]:
    """What the model's types cannot say: languages, schemas, closed sets, placeholders and metric fields that fit
    together."""
    yield from _language_problems(spec)
    yield from _line_problems(spec)
    for set_name, labels in spec.closed_sets.items():
        if not labels:
            yield f"closed_sets.{set_name}", "closed set is empty"
        for lang in spec.languages:
            texts = [getattr(label, lang) for label in labels]
            if labels and all(not t for t in texts):
                yield f"closed_sets.{set_name}", f"closed set is empty in {lang}"
                continue
            for index, text in enumerate(texts):
                if not text:
                    yield f"closed_sets.{set_name}.{index}.{lang}", f"label has no {lang} text"
            repeated = sorted({t for t in texts if t and texts.count(t) > 1})
            if repeated:
                yield f"closed_sets.{set_name}", f"{lang} labels repeated: {', '.join(repeated)}"
            yield from _alias_problems(set_name, labels, lang)

    schema = spec.output.schema_
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as err:
        where = ".".join(str(p) for p in err.absolute_path)
        yield "output.schema" + (f".{where}" if where else ""), f"invalid JSON schema: {err.message}"
    for keyword in sorted(UNSUPPORTED_KEYWORDS & set(_keywords(schema))):
        yield "output.schema", f"keyword {keyword!r} is not supported (outputs are checked with draft-07 keywords)"
    own_defs = set(schema.get("$defs", {}))
    for ref in _refs(schema):
        match = SET_REF.match(ref)
        if match is None:
            yield "output.schema", f"$ref {ref!r} is not of the form '#/$defs/<closed set>'"
        elif match.group(1) not in spec.closed_sets and match.group(1) not in own_defs:
            yield (
                "output.schema",
                f"$ref {ref!r} names no closed set (closed_sets has: {', '.join(spec.closed_sets) or 'none'})",
            )
    for set_name in spec.closed_sets:
        if set_name in own_defs:
            yield f"output.schema.$defs.{set_name}", "defined both in the schema and in closed_sets"
    yield from _format_problems(spec)

    for lang in spec.languages:
        for index, text in enumerate(getattr(spec.instructions, lang) or ()):
            for name in PLACEHOLDER.findall(text):
                if name not in spec.closed_sets:
                    yield f"instructions.{lang}.{index}", f"placeholder {{{name}}} names no closed set"
        for group in ("instructions", "scenarios"):
            texts = getattr(getattr(spec, group), lang) or []
            if len(set(texts)) != len(texts):
                yield f"{group}.{lang}", "the same text appears twice"
    yield from _metric_problems(spec, spec.metric, "metric")
    yield from _distribution_problems(spec)
    properties = schema.get("properties", {})
    for index, rule in enumerate(spec.output.constraints):
        for field in rule.lte:
            if field not in properties:
                yield f"output.constraints.{index}", f"field {field!r} is not a property of the output schema"


def _language_problems(spec: TaskSpec) -> Iterator[tuple[str, str]]:
    """Each of the task's languages has its name, instructions, input and scenarios; no other language has any."""
    written = ", ".join(spec.languages)
    if len(set(spec.languages)) != len(spec.languages):
        yield "languages", f"a language is named twice ({written})"
    hint = " (a task is in both by default; `languages: [en]` or `[zh]` makes it a one-language task)"
    for field in PER_LANGUAGE_FIELDS:
        for lang in LANGS:
            given = getattr(getattr(spec, field), lang) is not None
            if lang in spec.languages and not given:
                yield (
                    f"{field}.{lang}",
                    f"missing: the task is written in {written}"
                    + (hint if "languages" not in spec.model_fields_set else ""),
                )
            elif given and lang not in spec.languages:
                yield (
                    f"{field}.{lang}",
                    f"the task is written in {written} only: add {lang} to `languages` or remove this",
                )


def _line_problems(spec: TaskSpec) -> Iterator[tuple[str, str]]:
    """Rules and rubric lines: one non-empty line each, only in the task's languages."""
    for group in ("rules", "judge"):
        for lang in LANGS:
            lines = getattr(getattr(spec, group), lang)
            if lines and lang not in spec.languages:
                yield f"{group}.{lang}", f"the task is written in {', '.join(spec.languages)} only: remove these"
            for index, line in enumerate(lines):
                if not line.strip() or "\n" in line:
                    yield f"{group}.{lang}.{index}", "each entry is one non-empty line"


def _format_problems(spec: TaskSpec) -> Iterator[tuple[str, str]]:
    """The schema's top-level shape must be the one its output format promises."""
    schema, fmt = spec.output.schema_, spec.output.format
    expected = {
        "text": "string",
        "label": None,
        "items": "array",
        "labels": "array",
        "fields": "object",
        "object": "object",
    }
    top = schema.get("type")
    if fmt == "label":
        if not referenced_sets({k: v for k, v in schema.items() if k != "$defs"}):
            yield "output.schema", "a label output must be a $ref to a closed set"
    elif top != expected[fmt]:
        yield "output.schema.type", f"format {fmt!r} needs a schema of type {expected[fmt]!r}, not {top!r}"
    if fmt == "labels" and not referenced_sets(schema.get("items", {})):
        yield "output.schema.items", "a labels output must hold items of a closed set ($ref)"
    if fmt == "fields":
        keys, required = set(schema.get("properties", {})), set(schema.get("required", []))
        if not keys or keys != required:
            yield "output.schema.required", "a fields output lists every property as required (fixed keys)"


def _distribution_problems(spec: TaskSpec) -> Iterator[tuple[str, str]]:
    if not spec.label_distribution:
        return
    if spec.label_set is None:
        yield "label_distribution", "only a task of format `label` (one closed set) has a label distribution"
        return
    known = [label.en for label in spec.closed_sets[spec.label_set]]
    for label, weight in spec.label_distribution.items():
        if label not in known:
            yield (
                f"label_distribution.{label}",
                f"not a label of {spec.label_set!r} (its English labels: {', '.join(known)})",
            )
        if weight < 0:
            yield f"label_distribution.{label}", f"weight {weight:g} is negative"
    if sum(spec.label_distribution.values()) <= 0:
        yield "label_distribution", "the weights sum to 0"


def _metric_problems(spec: TaskSpec, metric: Any, where: str) -> Iterator[tuple[str, str]]:
    properties = spec.output.schema_.get("properties", {})
    if metric.name == "mean":
        if len(metric.parts) < 2:
            yield f"{where}.parts", "metric 'mean' needs at least two parts"
        for index, part in enumerate(metric.parts):
            yield from _metric_problems(spec, part, f"{where}.parts.{index}")
    elif metric.parts:
        yield f"{where}.parts", f"only metric 'mean' takes parts, not {metric.name!r}"
    if metric.field is not None and metric.field not in properties:
        yield f"{where}.field", f"field {metric.field!r} is not a property of the output schema"


# Draft 2020-12 keywords the compiled output check (fastjsonschema, drafts 4-7) would silently ignore.
UNSUPPORTED_KEYWORDS = frozenset(
    {"prefixItems", "unevaluatedItems", "unevaluatedProperties", "dependentRequired", "dependentSchemas",
     "$dynamicRef", "$dynamicAnchor", "minContains", "maxContains", "$recursiveRef"}
)  # fmt: skip


def _keywords(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keywords(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keywords(value)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _cross_file_problems(specs: Sequence[tuple[str, TaskSpec]]) -> Iterator[Problem]:
    for attribute in ("id", "code"):
        seen: dict[str, str] = {}
        for name, spec in specs:
            value = getattr(spec, attribute)
            if value in seen:
                yield Problem(name, None, attribute, f"duplicate {attribute} {value!r} (also in {seen[value]})")
            else:
                seen[value] = name


def _pydantic_problem(name: str, node: yaml.Node | None, error: Any) -> Problem:
    path = [str(p) for p in error["loc"]]
    field = ".".join(path).replace("schema_", "schema")
    reason = error["msg"]
    if error["type"] == "literal_error":
        reason = f"unknown value {error['input']!r}: {error['msg'].removeprefix('Input should be ')}"
    elif error["type"] == "extra_forbidden":
        reason = "unknown field"
    return Problem(name, _line_of(node, path), field, reason)


def _line_of(node: yaml.Node | None, path: list[str]) -> int | None:
    """The 1-based line of the deepest node of `path` that exists in the composed YAML."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in path:
        key = "schema" if key == "schema_" else key
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
