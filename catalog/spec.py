"""The task spec: what one sub-task asks of a model, as written in `datasets/tasks/<id>.yaml`."""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

LANGS: tuple[str, ...] = ("en", "zh")  # the languages a task may be written in; each task names its own
Lang = Literal["en", "zh"]
LANG_NAMES = {"en": "English", "zh": "Chinese"}
IDENTIFIER = r"^[a-z][a-z0-9_]*$"
OutputFormat = Literal["text", "items", "fields", "label", "labels", "object"]
MetricName = Literal[
    "accuracy",
    "set_f1",
    "span_f1",
    "field_f1",
    "rouge_l",
    "rouge_l_best_match",
    "sentence_range",
    "aspect_score_f1",
    "mean",
]
STRUCTURED_FORMATS = frozenset({"items", "fields", "labels", "object"})
DEFAULT_MAX_CHARS = 12_000  # of an input or an output; a task may set its own `max_chars`
LABEL_SEPARATOR = {"en": ", ", "zh": "、"}
MIN_SCENARIOS = 12
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
SET_REF = re.compile(r"^#/\$defs/([A-Za-z_][A-Za-z0-9_]*)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Texts(_Strict):
    """One text per language of the task (the loader checks that each of the task's languages has one)."""

    en: str | None = Field(default=None, min_length=1)
    zh: str | None = Field(default=None, min_length=1)


class Instructions(_Strict):
    en: list[str] | None = Field(default=None, min_length=2, max_length=4)
    zh: list[str] | None = Field(default=None, min_length=2, max_length=4)


class Scenarios(_Strict):
    en: list[str] | None = Field(default=None, min_length=MIN_SCENARIOS)
    zh: list[str] | None = Field(default=None, min_length=MIN_SCENARIOS)


PER_LANGUAGE_FIELDS: tuple[str, ...] = ("name", "instructions", "input", "scenarios")


class Lines(_Strict):
    """One-line texts per language: a task's rules, or its judge's rubric."""

    en: tuple[str, ...] = ()
    zh: tuple[str, ...] = ()


RULES_HEADING = {"en": " Rules: ", "zh": "规则："}


class Aliases(_Strict):
    """Other names a person or a model may give a label, per language."""

    en: tuple[str, ...] = ()
    zh: tuple[str, ...] = ()


class ClosedLabel(_Strict):
    """One value of a closed set, in both languages. Missing languages are reported by the loader. `aliases`: names
    the metric reads as this label (a model that answers 口味 for 菜品 named the same aspect); references always use
    the label itself."""

    en: str | None = None
    zh: str | None = None
    aliases: Aliases = Field(default_factory=Aliases)


class Constraint(_Strict):
    """A cross-field rule JSON Schema cannot state: the first field is at most the second."""

    lte: tuple[str, str]


class OutputSpec(_Strict):
    format: OutputFormat
    schema_: dict[str, Any] = Field(alias="schema")
    constraints: list[Constraint] = Field(default_factory=list)


class MetricSpec(_Strict):
    name: MetricName
    field: str | None = None
    parts: list[MetricSpec] = Field(default_factory=list)
    # Below this score a blind second annotation disagrees with the reference and needs adjudication; unset, the
    # metric's default (validation.agreement.TOLERANCE; free-text metrics have none). A free-text task whose answer
    # the rules pin down (a one-line chief complaint) sets one, so its disagreements are read too.
    tolerance: float | None = Field(default=None, gt=0, le=1)


class TaskSpec(_Strict):
    id: str = Field(pattern=IDENTIFIER)
    code: str = Field(pattern=r"^[A-Z][A-Z0-9]*$")
    domain: str = Field(pattern=IDENTIFIER)  # this catalog has seven; a team's names its own
    # The languages the task is written in and its records use: both by default, or only one.
    languages: tuple[Lang, ...] = Field(default=("en", "zh"), min_length=1)
    name: Texts
    instructions: Instructions
    input: Texts
    output: OutputSpec
    closed_sets: dict[str, list[ClosedLabel]] = Field(default_factory=dict)
    metric: MetricSpec
    scenarios: Scenarios
    # Written rules (where a span starts, which amount is "the" amount, when a field is null): appended to every
    # instruction paraphrase, so a model, an annotator and the synthesizer all read them.
    rules: Lines = Field(default_factory=Lines)
    # The LLM judge's rubric for a free-text task (training.judge): what a good answer does, one criterion a line.
    judge: Lines = Field(default_factory=Lines)
    # Why the human agreement stays below the benchmark's bar, where it does (ANNOTATION.md): printed with its row.
    agreement_note: str | None = Field(default=None, min_length=10)
    # Longer inputs or outputs are quarantined as `too_long`: a page of text is ~3,000 characters.
    max_chars: int = Field(default=DEFAULT_MAX_CHARS, ge=200)
    # For a `label` task: the share of each label (English text → weight) the synthesizer steers towards; uniform
    # when empty. Weights need not sum to 1.
    label_distribution: dict[str, float] = Field(default_factory=dict)
    _expanded: dict[str, list[str]] = PrivateAttr(default_factory=dict)

    def title(self, lang: str | None = None) -> str:
        """The task's name in `lang`, or in its first language when it is not written in `lang`."""
        return getattr(self.name, lang or self.languages[0]) or getattr(self.name, self.languages[0])

    def labels(self, set_name: str, lang: str) -> list[str]:
        """The labels of a closed set in one language, in catalog order."""
        return [getattr(label, lang) for label in self.closed_sets[set_name]]

    def canonical_label(self, set_name: str, lang: str, text: str) -> str | None:
        """The English label of `text` in a closed set, so both languages count as one label in statistics."""
        for label in self.closed_sets[set_name]:
            if getattr(label, lang) == text:
                return label.en
        return None

    def instructions_for(self, lang: str) -> list[str]:
        """The instruction paraphrases of one language, with `{set}` expanded to that set's labels."""
        if lang not in self._expanded:  # specs are frozen, so the expansion never changes
            self._expanded[lang] = self._expand_instructions(lang)
        return self._expanded[lang]

    def _expand_instructions(self, lang: str) -> list[str]:
        rules = getattr(self.rules, lang)
        # One line, numbered: records store the expanded text, and normalization must leave it as it is.
        tail = RULES_HEADING[lang] + " ".join(f"({n}) {rule}" for n, rule in enumerate(rules, 1)) if rules else ""
        return [text + tail for text in self.paraphrases_for(lang)]

    def paraphrases_for(self, lang: str) -> list[str]:
        """The instruction paraphrases with `{set}` expanded, without the rules every one of them carries."""

        def expand(match: re.Match[str]) -> str:
            return LABEL_SEPARATOR[lang].join(self.labels(match.group(1), lang))

        return [PLACEHOLDER.sub(expand, text) for text in getattr(self.instructions, lang)]

    def output_schema(self, lang: str) -> dict[str, Any]:
        """The JSON Schema of the parsed output for one language: `$defs` holds that language's closed sets."""
        schema = copy.deepcopy(self.output.schema_)
        schema.setdefault("$schema", "https://json-schema.org/draft/2020-12/schema")
        defs = schema.setdefault("$defs", {})
        for name in self.closed_sets:
            defs[name] = {"type": "string", "enum": self.labels(name, lang)}
        return schema

    def label_sets_of(self, field: str | None) -> list[str]:
        """Names of the closed sets referenced at the top of the output or under one top-level field."""
        node: Any = self.output.schema_
        if field is not None:
            node = node.get("properties", {}).get(field, {})
        return sorted(set(referenced_sets(node)))

    @property
    def label_set(self) -> str | None:
        """The closed set a `label` task answers with, or None for every other format."""
        if self.output.format != "label":
            return None
        sets = referenced_sets({k: v for k, v in self.output.schema_.items() if k != "$defs"})
        return sets[0] if len(sets) == 1 else None

    def label_weights(self, lang: str) -> list[tuple[str, float]]:
        """(label in `lang`, weight) of a `label` task, in catalog order: the catalog's distribution, else uniform;
        empty for other formats."""
        if (name := self.label_set) is None:
            return []
        wanted = self.label_distribution
        return [
            (getattr(label, lang), wanted.get(label.en, 0.0) if wanted else 1.0) for label in self.closed_sets[name]
        ]

    @property
    def is_structured(self) -> bool:
        return self.output.format in STRUCTURED_FORMATS


def code_order(spec: TaskSpec) -> tuple[str, int, str]:
    """A sort key for task codes: C1, C2, …, C10 (letters, then the number as a number), as the paper lists them."""
    match = re.match(r"([A-Z]*)(\d*)(.*)", spec.code)
    letters, number, rest = match.groups() if match else (spec.code, "", "")
    return letters, int(number) if number else 0, rest


def referenced_sets(node: Any) -> list[str]:
    """Every closed-set name a schema fragment references through `$ref: "#/$defs/<name>"`."""
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and (match := SET_REF.match(ref)):
            found.append(match.group(1))
        for value in node.values():
            found.extend(referenced_sets(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(referenced_sets(value))
    return found
