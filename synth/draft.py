"""Drafting a task from a description of the work: the task, then candidate seeds, through the configured endpoint.

The model answers a small, closed vocabulary (a format, labels, fields of a kind: `catalog.authoring.TaskSketch`);
the JSON Schema, closed sets and metric follow from it, so a draft cannot contradict itself. The draft then passes
the catalog's own checks, and the candidate seeds the record contract and the personal-data check; what fails is
sent back once with its errors. Nothing here writes into the catalog: drafts wait in `drafts/<id>/` for a person.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from catalog import Catalog, TaskSpec
from catalog.authoring import FIELD_KINDS, FieldSketch, TaskSketch, sketch_problems, task_document
from catalog.loader import check_task_document
from catalog.records import compact_json, output_string, record_id
from catalog.spec import IDENTIFIER, LANG_NAMES, MIN_SCENARIOS
from synth.client import LLMClient, Reply, ResponseFormatUnsupported
from synth.parsing import read_items, read_message, whole_json
from synth.prompts import SCAFFOLDS, Options, plan_slot, records_request, repair_request
from validation.pii import find_pii
from validation.records import check_record

DRAFT_TEMPLATE_VERSION = "1"
FORMATS: tuple[str, ...] = ("text", "items", "label", "labels", "fields", "object")
SEEDS_PER_REQUEST = 8
_REPAIR_MARK = "  errors: "  # the line that lists a draft's errors in a repair turn


class DraftFailed(RuntimeError):
    """The endpoint's draft stayed invalid after the repair turn, or no answer came; nothing was written."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or []
        super().__init__(message)


@dataclass(frozen=True)
class DraftAsk:
    """What a person asks for: a description, and whatever they pin (languages, format, id, code, domain)."""

    description: str
    languages: tuple[str, ...] = ("en", "zh")
    format: str | None = None
    task_id: str | None = None
    code: str | None = None
    domain: str | None = None
    seeds_per_language: int = 10
    taken_ids: frozenset[str] = frozenset()  # of the catalog and of other drafts: a draft must not clash
    taken_codes: frozenset[str] = frozenset()


@dataclass
class DraftedTask:
    document: dict[str, Any]
    spec: TaskSpec
    turns: list[dict[str, Any]] = field(default_factory=list)  # each answer's cache key and the errors it had


@dataclass
class DraftedSeeds:
    rows: list[dict[str, Any]] = field(default_factory=list)  # candidate seeds that passed every check
    rejected: list[dict[str, Any]] = field(default_factory=list)  # with the reason, after their repair turn


# --- the task --------------------------------------------------------------------------------------------------


def draft_schema(ask: DraftAsk) -> dict[str, Any]:
    """The JSON Schema of the model's answer: strict-mode friendly (every key required, nothing else allowed)."""
    langs = list(ask.languages)

    def per_language(item: dict[str, Any]) -> dict[str, Any]:
        return _object({lang: item for lang in langs})

    text = {"type": "string", "minLength": 1}
    label = per_language(text)
    formats = [ask.format] if ask.format else list(FORMATS)
    needs_labels = ask.format in ("label", "labels")
    needs_fields = ask.format in ("fields", "object")
    field_item = _object(
        {
            "name": {"type": "string", "pattern": IDENTIFIER, "maxLength": 40},
            "kind": {"type": "string", "enum": list(FIELD_KINDS)},
            "labels": {"type": "array", "items": label},
        }
    )
    output = _object(
        {
            "format": {"type": "string", "enum": formats},
            "labels": {"type": "array", "items": label, **({"minItems": 2} if needs_labels else {})},
            "fields": {"type": "array", "items": field_item, **({"minItems": 1} if needs_fields else {})},
        }
    )
    return _object(
        {
            "id": {"type": "string", "pattern": IDENTIFIER, "maxLength": 40},
            "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9]*$", "maxLength": 6},
            "domain": {"type": "string", "pattern": IDENTIFIER, "maxLength": 30},
            "name": label,
            "input": label,
            "instructions": per_language({"type": "array", "minItems": 2, "maxItems": 4, "items": text}),
            "scenarios": per_language(
                {"type": "array", "minItems": MIN_SCENARIOS, "maxItems": MIN_SCENARIOS + 4, "items": text}
            ),
            "output": output,
        }
    )


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": list(properties), "properties": properties}


def task_prompt(ask: DraftAsk) -> str:
    languages = " and ".join(f"{LANG_NAMES[lang]} ({lang})" for lang in ask.languages)
    pinned = [
        f"{what}: {value}"
        for what, value in (("id", ask.task_id), ("code", ask.code), ("domain", ask.domain), ("format", ask.format))
        if value
    ]
    taken = sorted(ask.taken_ids)
    return "\n".join(
        [
            "You design one sub-task of a fine-tuning dataset. A sub-task is one concrete job a model does again "
            "and again: a directive instruction, an input of one kind, an output of a fixed, checkable shape.",
            f"The work, as the team describes it:\n{ask.description.strip()}",
            f"Write the task in {languages}, each language natively (not translated), for that language's setting.",
            "Answer with:",
            "- id: snake_case, short; code: 1-6 capitals and digits; domain: one snake_case word for the field.",
            "- name and input: a short name of the task; one sentence saying what the input is.",
            "- instructions: 2-4 paraphrases of the directive instruction the trained model receives. Write "
            "`{label}` (or `{<field name>}`) where the instruction should list the allowed labels.",
            f"- scenarios: {MIN_SCENARIOS}-{MIN_SCENARIOS + 4} distinct situations, sub-topics or personas that "
            "inputs are drawn from.",
            "- output.format: text (free text), items (a list of short texts), label (one label of a closed set), "
            "labels (several), fields (an object with fixed keys, null where the input says nothing), object (an "
            "object whose keys are all always present).",
            "- output.labels: the closed set of a label or labels task, each label in every language; empty "
            "otherwise. output.fields: the keys of a fields or object task, each of kind text, list, label or "
            "labels (a label field lists its own labels); empty otherwise.",
            *(["Fixed by the team: " + "; ".join(pinned) + "."] if pinned else []),
            *([f"Ids already taken (choose another): {', '.join(taken)}."] if taken else []),
        ]
    )


def task_request(
    ask: DraftAsk, model: str, json_in_prompt: bool, repair: tuple[Any, list[str]] | None = None
) -> dict[str, Any]:
    """The drafting request; with `repair` (the previous answer and its errors), the repair turn."""
    schema = draft_schema(ask)
    parts = [task_prompt(ask)]
    if repair is not None:
        answer, errors = repair
        parts.append(
            "Your previous draft fails the catalog's checks. Answer with the whole draft again, corrected: change "
            "what the errors name and keep the rest.\n"
            + _REPAIR_MARK
            + "; ".join(errors)
            + "\nPrevious draft: "
            + compact_json(answer)
        )
    if json_in_prompt:
        parts.append(SCAFFOLDS["en"].json_only.format(schema=compact_json(schema)))
    system = "You design explicit, checkable tasks for fine-tuning datasets. You answer with JSON only."
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}],
        "temperature": 0.7,
    }
    if not json_in_prompt:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "task_draft", "schema": schema}}
    return body


def sketch_of(answer: Any, ask: DraftAsk) -> TaskSketch:
    """The sketch an answer describes, with what the team pinned taking precedence. Raises ValueError (naming the
    field) for an answer of the wrong shape."""
    if not isinstance(answer, dict):
        raise ValueError(f"the draft is a JSON {type(answer).__name__}, not an object")
    output = _mapping(answer, "output")
    fields = []
    for index, item in enumerate(_list(output, "fields", "output.fields")):
        where = f"output.fields.{index}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: not an object")
        kind = item.get("kind")
        if kind not in FIELD_KINDS:
            raise ValueError(f"{where}.kind: {kind!r} is not one of {', '.join(FIELD_KINDS)}")
        fields.append(FieldSketch(str(item.get("name", "")), kind, _label_list(item, "labels", f"{where}.labels")))
    fmt = ask.format or output.get("format")
    if fmt not in FORMATS:
        raise ValueError(f"output.format: {fmt!r} is not one of {', '.join(FORMATS)}")
    return TaskSketch(
        id=ask.task_id or str(answer.get("id", "")),
        code=ask.code or str(answer.get("code", "")),
        domain=ask.domain or str(answer.get("domain", "")),
        languages=ask.languages,
        format=fmt,
        labels=_label_list(output, "labels", "output.labels") if fmt in ("label", "labels") else (),
        fields=tuple(fields) if fmt in ("fields", "object") else (),
        name=_texts(answer, "name", ask.languages),
        input=_texts(answer, "input", ask.languages),
        instructions=_text_lists(answer, "instructions", ask.languages),
        scenarios=_text_lists(answer, "scenarios", ask.languages),
    )


def check_answer(answer: Any, ask: DraftAsk) -> tuple[dict[str, Any] | None, TaskSpec | None, list[str]]:
    """The document and spec an answer makes, and every problem with it (the catalog's checks, clashes)."""
    try:
        sketch = sketch_of(answer, ask)
    except ValueError as err:
        return None, None, [str(err)]
    problems = [f"{where}: {reason}" for where, reason in sketch_problems(sketch)]
    document = task_document(sketch)
    spec, found = check_task_document(document, "draft")
    problems += [f"{p.field}: {p.reason}" if p.field else p.reason for p in found]
    if sketch.id in ask.taken_ids:
        problems.append(f"id: {sketch.id!r} is taken (by a task of the catalog or another draft)")
    if sketch.code in ask.taken_codes:
        problems.append(f"code: {sketch.code!r} is taken by a task of the catalog")
    return document, (spec if not problems else None), problems


async def draft_task(client: LLMClient, ask: DraftAsk, model: str) -> DraftedTask:
    """Ask for a draft, check it, send it back once with its errors; raises DraftFailed if it stays invalid."""
    turns: list[dict[str, Any]] = []
    json_in_prompt = False
    repair: tuple[Any, list[str]] | None = None
    for _ in range(2):
        reply, json_in_prompt = await _ask(client, partial(task_request, ask, model, repair=repair), json_in_prompt)
        answer, problems = _answer_of(reply)
        document, spec = None, None
        if answer is not None:
            document, spec, problems = check_answer(answer, ask)
        turns.append({"cache_key": reply.key, "request_id": reply.request_id, "problems": problems})
        if spec is not None and document is not None:
            return DraftedTask(document, spec, turns)
        repair = (answer, problems)
    raise DraftFailed("the drafted task is still invalid after the repair turn; nothing was written", problems)


def _answer_of(reply: Reply) -> tuple[Any | None, list[str]]:
    message = read_message(reply.body)
    if message.refusal:
        return None, [f"the model refused: {message.refusal[:300]}"]
    value = whole_json((message.content or "").strip())  # fences and prose around it, as the synthesizer reads
    if value is None:
        cut = " (cut off at max_tokens)" if message.finish_reason == "length" else ""
        return None, [f"the answer is not valid JSON{cut}"]
    return value, []


async def _ask(client: LLMClient, make: Any, json_in_prompt: bool) -> tuple[Reply, bool]:
    """One request, asked again with the schema in the prompt where the server rejects response_format."""
    try:
        return await client.complete(make(json_in_prompt)), json_in_prompt
    except ResponseFormatUnsupported:
        if json_in_prompt:
            raise
        client.stats.mode_fallbacks += 1
        return await client.complete(make(True)), True


# --- candidate seeds -------------------------------------------------------------------------------------------


async def draft_seeds(client: LLMClient, spec: TaskSpec, per_language: int, model: str) -> DraftedSeeds:
    """`per_language` candidate seeds in each of the task's languages, written without exemplars (there are none
    yet), each checked by the record contract and the personal-data check, the failures sent back once."""
    catalog = Catalog((spec,))
    options = Options(records_per_request=min(SEEDS_PER_REQUEST, per_language), exemplars=0)
    slots = [
        (lang, slot) for lang in spec.languages for slot in range(math.ceil(per_language / options.records_per_request))
    ]
    results = await asyncio.gather(
        *(_seed_slot(client, catalog, spec, lang, slot, options, model) for lang, slot in slots)
    )
    drafted, seen = DraftedSeeds(), set()
    for lang in spec.languages:
        kept = 0
        for (slot_lang, _), (rows, rejected) in zip(slots, results, strict=True):
            if slot_lang != lang:
                continue
            drafted.rejected.extend(rejected)
            for row in rows:
                if row["id"] in seen:
                    drafted.rejected.append({**row, "reason": "duplicate input"})
                elif kept < per_language:
                    seen.add(row["id"])
                    drafted.rows.append(row)
                    kept += 1
    return drafted


async def _seed_slot(
    client: LLMClient, catalog: Catalog, spec: TaskSpec, lang: str, slot: int, options: Options, model: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    plan = plan_slot(spec, lang, slot, [], options)
    make = partial(records_request, spec, plan, model, options)
    reply, json_in_prompt = await _ask(client, make, False)
    items = read_items(read_message(reply.body), "records").items
    rows, faulty = [], []
    for item in items:
        row, problems = _seed_row(catalog, spec, lang, plan.instruction, plan.scenario, item, model, reply.key)
        if row is None:
            continue
        if problems:
            faulty.append((row, problems))
        else:
            rows.append(row)
    rejected: list[dict[str, Any]] = []
    if faulty:
        listed = [(r["input"], r["output"], problems) for r, problems in faulty]
        body = repair_request(spec, plan, listed, model, options, json_in_prompt)
        fixed = read_items(read_message((await client.complete(body)).body), "records").items
        for index, (row, problems) in enumerate(faulty):
            again, still = None, "no corrected record came back"
            if index < len(fixed):
                again, still = _seed_row(
                    catalog, spec, lang, plan.instruction, plan.scenario, fixed[index], model, reply.key
                )
            if again is not None and not still:
                rows.append(again)
            else:
                rejected.append({**row, "reason": f"{problems} (after the repair turn: {still})"})
    return rows, rejected


def _seed_row(
    catalog: Catalog, spec: TaskSpec, lang: str, instruction: str, scenario: str, item: Any, model: str, key: str
) -> tuple[dict[str, Any] | None, str]:
    """A candidate seed from one answer item, and what is wrong with it ("" when nothing)."""
    if not isinstance(item, dict) or not isinstance(item.get("input"), str) or "output" not in item:
        return None, "an item needs a string `input` and an `output`"
    text = item["input"].strip()
    row = {
        "id": record_id(spec.id, lang, text),
        "task": spec.id,
        "lang": lang,
        "scenario": scenario,
        "instruction": instruction,
        "input": text,
        "output": output_string(spec, item["output"]),
        "generator": model,
        "provenance": {"drafted_by": model, "cache_key": key, "template": DRAFT_TEMPLATE_VERSION},
    }
    problems = [f"{f}: {r}" for f, r in check_record(row, catalog)] if text else ["input: empty"]
    if not problems and (found := find_pii(text + "\n" + row["output"])):
        problems.append("personal data: " + ", ".join(map(str, found)))
    return row, "; ".join(problems)


def _mapping(node: dict[str, Any], key: str) -> dict[str, Any]:
    value = node.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{key}: missing or not an object")
    return value


def _list(node: dict[str, Any], key: str, where: str) -> list[Any]:
    value = node.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{where}: not a list")
    return value


def _label_list(node: dict[str, Any], key: str, where: str) -> tuple[dict[str, str], ...]:
    labels = []
    for index, label in enumerate(_list(node, key, where)):
        if not isinstance(label, dict):
            raise ValueError(f"{where}.{index}: not an object of texts per language")
        labels.append({str(lang): str(text).strip() for lang, text in label.items() if isinstance(text, str)})
    return tuple(labels)


def _texts(answer: dict[str, Any], key: str, languages: tuple[str, ...]) -> dict[str, str]:
    node = answer.get(key)
    node = node if isinstance(node, dict) else {}
    return {lang: node[lang].strip() for lang in languages if isinstance(node.get(lang), str) and node[lang].strip()}


def _text_lists(answer: dict[str, Any], key: str, languages: tuple[str, ...]) -> dict[str, list[str]]:
    node = answer.get(key)
    node = node if isinstance(node, dict) else {}
    found = {}
    for lang in languages:
        texts = node.get(lang)
        if isinstance(texts, list) and texts:
            found[lang] = [str(t).strip() for t in texts]
    return found
