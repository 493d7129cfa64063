"""What one request asks for: prompts built from the catalog, and the JSON schema the answer must fill.

Every request is a pure function of (task, language, slot number, options, seeds), so a re-run rebuilds the very
same request and finds its answer in the cache. Templates are versioned: their hash goes into provenance.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, replace
from typing import Any

from catalog.records import compact_json
from catalog.spec import TaskSpec
from synth.personas import PERSONAS

TEMPLATE_VERSION = "3"  # 3: the Chinese scaffold in Chinese; the schema in the prompt only in prompt-only mode


@dataclass(frozen=True)
class Scaffold:
    """The fixed text of every request in one language. A Chinese request is written in Chinese from its first word:
    an English scaffold around a Chinese task invites translationese in the answers."""

    lang_name: str
    native: str
    system: str
    task: str
    examples: str
    example: str
    records: str
    inputs: str
    outputs: str
    json_only: str
    repair: str
    repair_item: str
    steer: str  # for a label task: the outputs the records are to have, in order


SCAFFOLDS = {
    "en": Scaffold(
        lang_name="English (en)",
        native="Write every input and every free-text value in natural English, set in an English-speaking, "
        "common-law setting (USD/GBP, local institutions).",
        system="You write training data for a fine-tuning dataset. Each record pairs an input, as a real person "
        "would write it, with the output a careful expert gives for the instruction. Names, phone numbers, ID "
        "numbers and addresses are clearly fictitious or absent. You answer with JSON only.",
        task="""Task: {name} (id {task}, domain {domain}).
The instruction the trained model receives:
{instruction}
The input is: {input}
Output format: {format}.""",
        examples="Examples (input, then output):\n{examples}",
        example="input: {input}\noutput: {output}",
        records="""Scenario to draw from: {scenario}
Write the inputs as {persona}.
Target language: {lang_name}. {native}
Write {n} new records. Every input differs from the examples and from the others in situation, details and length;
some are long and rambling, some short; include a hard case where it fits. Each output follows the instruction
exactly. Return {{"records": [{{"input": "...", "output": ...}}, ...]}} with exactly {n} records.""",
        inputs="""Scenario to draw from: {scenario}
Write the inputs as {persona}.
Target language: {lang_name}. {native}
Write {n} new, varied inputs for this task (only the inputs: no answers). Every input differs from the examples and
from the others in situation, details and length. Return {{"inputs": ["...", ...]}} with exactly {n} inputs.""",
        outputs="""Target language: {lang_name}. {native}
Give the expert output for each of these inputs, in order, following the instruction exactly:
{inputs}
Return {{"outputs": [...]}} with exactly {n} outputs, the i-th for the i-th input.""",
        json_only="""Answer with one JSON object and nothing else (no prose, no code fence), valid against this schema:
```json
{schema}
```""",
        repair="""Target language: {lang_name}. {native}
These {n} records were written for this task, and each one fails its checks as listed. Correct each record so
that it passes: keep its input unless an error is about the input, and change only what the errors name.
{records}
Return {{"records": [{{"input": "...", "output": ...}}, ...]}} with exactly {n} records, in order.""",
        repair_item="{i}. input: {input}\n   output: {output}\n   errors: {errors}",
        steer="The records' correct outputs, in this order: {labels}. Write each input so that the i-th record's "
        "correct output is the i-th of these.",
    ),
    "zh": Scaffold(
        lang_name="简体中文（zh）",
        native="所有输入与自由文本值都用地道的简体中文书写，情境符合中国大陆（人民币、中国的机构与法律实践），不要翻译腔。",
        system="你为一个微调数据集编写训练数据。每条记录由一个输入和一个输出组成："
        "输入要像真实的人写出来的那样，输出是一位细心的专家按照指令给出的答案。"
        "姓名、电话号码、身份证号和地址要么明显是虚构的，要么不出现。你只用 JSON 作答。",
        task="""任务：{name}（编号 {task}，领域 {domain}）。
训练后的模型收到的指令：
{instruction}
输入是：{input}
输出格式：{format}。""",
        examples="示例（先输入，后输出）：\n{examples}",
        example="输入：{input}\n输出：{output}",
        records="""可以取材的情境：{scenario}
以{persona}的口吻来写输入。
目标语言：{lang_name}。{native}
写 {n} 条新记录。每条输入在情境、细节和长短上都要与示例不同，彼此之间也要不同；
有的冗长啰嗦，有的简短；合适的话加入一个难例。每条输出都严格遵循指令。
返回 {{"records": [{{"input": "...", "output": ...}}, ...]}}，恰好 {n} 条记录。""",
        inputs="""可以取材的情境：{scenario}
以{persona}的口吻来写输入。
目标语言：{lang_name}。{native}
为这个任务写 {n} 条新的、各不相同的输入（只写输入，不写答案）。
每条输入在情境、细节和长短上都要与示例不同，彼此之间也要不同。
返回 {{"inputs": ["...", ...]}}，恰好 {n} 条输入。""",
        outputs="""目标语言：{lang_name}。{native}
按顺序为下面每条输入给出专家的输出，严格遵循指令：
{inputs}
返回 {{"outputs": [...]}}，恰好 {n} 条输出，第 i 条对应第 i 条输入。""",
        json_only="""只回答一个 JSON 对象，不要任何别的内容（不要说明文字，也不要代码块标记），
它必须符合下面的 JSON Schema：
```json
{schema}
```""",
        repair="""目标语言：{lang_name}。{native}
下面 {n} 条记录是为这个任务写的，每条都没有通过检查，错误列在各条后面。逐条改正，使其通过检查：
除非错误出在输入上，否则保留输入，只改错误指出的地方。
{records}
返回 {{"records": [{{"input": "...", "output": ...}}, ...]}}，恰好 {n} 条记录，第 i 条是改正后的第 i 条。""",
        repair_item="{i}. 输入：{input}\n   输出：{output}\n   错误：{errors}",
        steer="这些记录的正确输出依次是：{labels}。请这样写输入：第 i 条记录的正确输出恰好是其中第 i 个。",
    ),
}
TEMPLATES = tuple(text for scaffold in SCAFFOLDS.values() for text in vars(scaffold).values())
TEMPLATE_HASH = hashlib.sha256("\x1e".join((TEMPLATE_VERSION, *TEMPLATES)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Exemplar:
    """A seed with role `exemplar`: the only seeds ever shown to the model."""

    id: str
    input: str
    output: str


@dataclass(frozen=True)
class Options:
    records_per_request: int = 5
    exemplars: int = 3
    temperature: float = 1.0
    top_p: float | None = None
    max_tokens: int | None = None
    two_stage: bool = False

    def sampling(self) -> dict[str, Any]:
        """The sampling parameters sent with every request (and recorded in provenance)."""
        params: dict[str, Any] = {"temperature": self.temperature}
        if self.top_p is not None:
            params["top_p"] = self.top_p
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params


@dataclass(frozen=True)
class SlotPlan:
    """The random draws of one slot: exemplars, scenario, persona, and the instruction paraphrase the model is shown
    (every record of the slot carries that one: a record's instruction is what its output was written for)."""

    task: str
    lang: str
    slot: int
    exemplars: tuple[Exemplar, ...]
    scenario: str
    persona: str
    instruction: str
    labels: tuple[str, ...] = ()  # a label task's target output per record, drawn by the task's distribution


def plan_slot(spec: TaskSpec, lang: str, slot: int, pool: list[Exemplar], options: Options) -> SlotPlan:
    rng = random.Random(f"{spec.id}|{lang}|{slot}")
    exemplars = tuple(rng.sample(pool, min(options.exemplars, len(pool))))
    return SlotPlan(
        task=spec.id,
        lang=lang,
        slot=slot,
        exemplars=exemplars,
        scenario=rng.choice(getattr(spec.scenarios, lang)),
        persona=rng.choice(PERSONAS[lang]),
        instruction=rng.choice(spec.instructions_for(lang)),
        labels=_target_labels(spec, lang, rng, options.records_per_request),
    )


def _target_labels(spec: TaskSpec, lang: str, rng: random.Random, n: int) -> tuple[str, ...]:
    """n labels drawn by the task's label distribution (uniform by default): what a label task's records are asked
    to be, so a skewed model does not make a skewed dataset."""
    weights = spec.label_weights(lang)
    if not weights:
        return ()
    labels, shares = zip(*weights, strict=True)
    return tuple(rng.choices(labels, weights=shares, k=n))


def records_request(spec: TaskSpec, plan: SlotPlan, model: str, options: Options, json_in_prompt: bool) -> dict:
    """One-stage request: n complete records."""
    n = options.records_per_request
    text = SCAFFOLDS[plan.lang].records.format(**_voice(plan), n=n) + _steering(plan)
    return _request(spec, plan, model, options, text, "records", _records_schema(spec, plan.lang, n), json_in_prompt)


def inputs_request(spec: TaskSpec, plan: SlotPlan, model: str, options: Options, json_in_prompt: bool) -> dict:
    """Two-stage, first request: n inputs only."""
    n = options.records_per_request
    schema = _wrapper("inputs", {"type": "string", "minLength": 1}, n, {})
    text = SCAFFOLDS[plan.lang].inputs.format(**_voice(plan), n=n) + _steering(plan)
    return _request(spec, plan, model, options, text, "inputs", schema, json_in_prompt)


def outputs_request(
    spec: TaskSpec, plan: SlotPlan, inputs: list[str], model: str, options: Options, json_in_prompt: bool
) -> dict:
    """Two-stage, second request: the outputs for the inputs the first one produced."""
    listed = "\n".join(f"{i}. {json.dumps(text, ensure_ascii=False)}" for i, text in enumerate(inputs, start=1))
    lang, scaffold = plan.lang, SCAFFOLDS[plan.lang]
    text = scaffold.outputs.format(lang_name=scaffold.lang_name, native=scaffold.native, inputs=listed, n=len(inputs))
    output, defs = _output_schema(spec, lang)
    schema = _wrapper("outputs", output, len(inputs), defs)
    return _request(spec, plan, model, options, text, "outputs", schema, json_in_prompt)


def repair_request(
    spec: TaskSpec,
    plan: SlotPlan,
    faulty: list[tuple[str, str, str]],
    model: str,
    options: Options,
    json_in_prompt: bool,
) -> dict:
    """The repair turn: records that failed the contract, (input, output, errors) each, sent back once to be fixed.
    Self-contained (the task, the instruction and the records; no exemplars), so it costs a fraction of the first
    request and is cached under its own key."""
    scaffold, n = SCAFFOLDS[plan.lang], len(faulty)
    listed = "\n".join(
        scaffold.repair_item.format(i=i, input=text, output=output, errors=errors)
        for i, (text, output, errors) in enumerate(faulty, start=1)
    )
    text = scaffold.repair.format(lang_name=scaffold.lang_name, native=scaffold.native, records=listed, n=n)
    no_exemplars = replace(plan, exemplars=(), labels=())
    schema = _records_schema(spec, plan.lang, n)
    return _request(spec, no_exemplars, model, options, text, "records", schema, json_in_prompt)


def _steering(plan: SlotPlan) -> str:
    if not plan.labels:
        return ""
    separator = "；" if plan.lang == "zh" else "; "
    return "\n" + SCAFFOLDS[plan.lang].steer.format(labels=separator.join(plan.labels))


def _voice(plan: SlotPlan) -> dict[str, str]:
    return {
        "scenario": plan.scenario,
        "persona": plan.persona,
        "lang_name": SCAFFOLDS[plan.lang].lang_name,
        "native": SCAFFOLDS[plan.lang].native,
    }


def _request(
    spec: TaskSpec,
    plan: SlotPlan,
    model: str,
    options: Options,
    ask: str,
    name: str,
    schema: dict[str, Any],
    json_in_prompt: bool,
) -> dict[str, Any]:
    scaffold = SCAFFOLDS[plan.lang]
    parts = [_task_text(spec, plan.lang, plan.instruction)]
    if plan.exemplars:
        parts.append(scaffold.examples.format(examples=_examples(scaffold, plan.exemplars)))
    parts.append(ask)
    if json_in_prompt:  # otherwise the schema travels once, in response_format, not twice
        parts.append(scaffold.json_only.format(schema=compact_json(schema)))
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": "system", "content": scaffold.system},
            {"role": "user", "content": "\n\n".join(parts)},
        ],
        **options.sampling(),
    }
    if not json_in_prompt:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    return body


# Built once per (spec, language, ...): the same pieces go into thousands of requests. Keyed by the spec object
# (frozen; the entry keeps it alive, so its id stays its own), as validation.outputs does for its validators.
_MEMO: dict[tuple[Any, ...], tuple[TaskSpec, Any]] = {}


def _memo(spec: TaskSpec, *key: Any, make: Any) -> Any:
    full = (id(spec), *key)
    if full not in _MEMO:
        _MEMO[full] = (spec, make())
    return _MEMO[full][1]


def _task_text(spec: TaskSpec, lang: str, instruction: str) -> str:
    return _memo(spec, "task", lang, instruction, make=lambda: _make_task_text(spec, lang, instruction))


def _make_task_text(spec: TaskSpec, lang: str, instruction: str) -> str:
    return SCAFFOLDS[lang].task.format(
        name=getattr(spec.name, lang),
        task=spec.id,
        domain=spec.domain,
        instruction=instruction,
        input=getattr(spec.input, lang),
        format=spec.output.format,
    )


def _examples(scaffold: Scaffold, exemplars: tuple[Exemplar, ...]) -> str:
    return "\n\n".join(scaffold.example.format(input=e.input, output=e.output) for e in exemplars)


def _records_schema(spec: TaskSpec, lang: str, n: int) -> dict[str, Any]:
    return _memo(spec, "records", lang, n, make=lambda: _make_records_schema(spec, lang, n))


def _make_records_schema(spec: TaskSpec, lang: str, n: int) -> dict[str, Any]:
    output, defs = _output_schema(spec, lang)
    record = {
        "type": "object",
        "additionalProperties": False,
        "required": ["input", "output"],
        "properties": {"input": {"type": "string", "minLength": 1}, "output": output},
    }
    return _wrapper("records", record, n, defs)


def _wrapper(key: str, items: dict[str, Any], n: int, defs: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": [key],
        "properties": {key: {"type": "array", "minItems": n, "maxItems": n, "items": items}},
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _output_schema(spec: TaskSpec, lang: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task's output schema in `lang`, split into the schema proper and its `$defs` (they move to the root)."""
    schema = spec.output_schema(lang)
    schema.pop("$schema", None)
    defs = schema.pop("$defs", {})
    return schema, defs
