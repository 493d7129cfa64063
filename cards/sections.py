"""The Markdown sections of the dataset card, one function each, in the order the card shows them."""

from __future__ import annotations

import html
import json
import re
from typing import TYPE_CHECKING, Any

import polars as pl

from cards.changelog import Change, diff
from cards.plots import COUNTS_PLOT, LENGTHS_PLOT
from cards.provenance import Provenance, funnel, thresholds
from cards.stats import column_summary, label_counts, length_summary, split_counts, task_counts, totals
from catalog import Catalog, TaskSpec
from catalog.layout import ALL_CONFIG, RECIPE_DIR, RECIPE_FILE, SPLITS
from catalog.spec import LANG_NAMES, code_order
from validation.agreement import agreement_notes

if TYPE_CHECKING:
    from cards.render import CardContext

DOMAIN_NAMES = {
    "medical": "Medical",
    "finance": "Finance",
    "law": "Law",
    "psychology": "Psychology",
    "consumer": "Consumer services",
    "hr": "Human resources",
    "roleplay": "Role-play",
}
METRIC_NAMES = {
    "accuracy": "accuracy",
    "set_f1": "set F1",
    "span_f1": "span F1 (partial overlap)",
    "field_f1": "field F1",
    "rouge_l": "ROUGE-L",
    "rouge_l_best_match": "ROUGE-L (best match per item)",
    "sentence_range": "range score",
    "aspect_score_f1": "aspect F1 × score closeness",
    "mean": "mean",
}
FORMAT_NAMES = {
    "text": "free text",
    "items": "JSON list of strings",
    "fields": "JSON object, fixed keys",
    "label": "one label",
    "labels": "list of labels",
    "object": "JSON object",
}
FUNNEL_NAMES = {
    "in": "records read (seeds and synth store)",
    "unreadable": "dropped: unreadable line (not JSON, missing fields, not valid text)",
    "review_rejected": "dropped: rejected by a reviewer",
    "too_long": "dropped: input or output longer than the task's limit",
    "language": "dropped: wrong language",
    "invalid": "dropped: breaks the task contract (instruction, output schema)",
    "pii": "dropped: personal data found",
    "exact_duplicate": "dropped: exact duplicate input",
    "near_duplicate": "dropped: near-duplicate of a kept record's input",
    "gold_leak": "dropped: an exemplar in the split group of a gold record",
    "out": "published",
}
PAPER_URL = "https://arxiv.org/abs/2407.07094"


def changelog_diff(records: pl.DataFrame, context: CardContext) -> Change:
    return diff(context.version, context.date, records, context.previous, context.previous_version)


def header(catalog: Catalog, context: CardContext, records: pl.DataFrame) -> str:
    count = totals(records)
    per_language = ", ".join(f"{count[lang]:,} {LANG_NAMES[lang]}" for lang in catalog.languages)
    kind = "bilingual" if len(catalog.languages) > 1 else LANG_NAMES[catalog.languages[0]]
    return (
        f"# {context.title} · {context.name} {context.version}\n\n"
        f"**Explicit, {kind} instruction data for {len(catalog)} domain sub-tasks** — "
        f"{count['records']:,} records ({per_language}) in "
        f"{len(catalog.domains)} domains, released {context.date}.\n\n"
        f"| train | validation | test | configs |\n|---:|---:|---:|---|\n"
        f"| {count['train']:,} | {count['validation']:,} | {count['test']:,} | "
        f"{len(catalog)} tasks · {len(catalog.domains)} domains · `{ALL_CONFIG}` |"
        + (f"\n\nProject: <{context.homepage}>" if context.homepage else "")
    )


def about(catalog: Catalog) -> str:
    domains = ", ".join(domain_name(d).lower() for d in catalog.domains)
    one_language = [t.id for t in catalog if len(t.languages) == 1]
    native = (
        "written natively in each language (PRC law, RMB and Chinese hospital departments in Chinese; common-law and "
        "USD/GBP in English), not translated."
    )
    if not one_language:
        languages = f"Every task is in **English and Chinese**, {native}"
    elif len(catalog.languages) == 1:
        languages = f"Every task is in **{LANG_NAMES[catalog.languages[0]]}** only, written natively."
    else:
        languages = f"Tasks are in English and Chinese, {len(one_language)} of them in one language only, {native}"
    return (
        "## What this is\n\n"
        "Most people and small organisations do not need a model that is good at everything; they need one that is "
        "excellent at *their* tasks. Following the AnyTaskTune method, each domain's work is split into concrete "
        "sub-tasks, and each sub-task gets an **explicit** dataset: every record carries a clear, directive "
        "instruction, an input, and the expected output, with a machine-checkable output format. Models fine-tuned "
        "on such data outperform much larger general models on those tasks.\n\n"
        f"This release covers {domains}. {languages} "
        "Records use the Alpaca triple `instruction` / `input` / `output`, so LLaMA-Factory, axolotl and "
        "TRL read them as they are. Structured outputs are compact JSON strings that validate against the task's "
        "JSON Schema."
    )


def loading(catalog: Catalog, context: CardContext) -> str:
    first = next(iter(catalog))
    domain = catalog.domains[0]
    return (
        "## Load it\n\n"
        "One config per task (its id), one per domain, and `all` (the default). Each config holds both languages, "
        "told apart by the `lang` column, and the splits `train`, `validation` and `test`.\n\n"
        "```python\n"
        "from datasets import load_dataset\n\n"
        f'task = load_dataset("{context.repo_id}", "{first.id}", revision="{context.version}")  # one task\n'
        f'domain = load_dataset("{context.repo_id}", "{domain}", revision="{context.version}")  # one domain\n'
        f'everything = load_dataset("{context.repo_id}", revision="{context.version}")  # config `all`\n\n'
        'zh_train = task["train"].filter(lambda r: r["lang"] == "zh")  # one language\n'
        "```\n\n"
        f"Pin `revision` to a version tag (`{context.version}`) for reproducible experiments: every release is a "
        "tagged commit, and the changelog below says what each one added and removed. A team sharing a local "
        "registry sets `HF_ENDPOINT=http://host:port` and loads the same way.\n\n"
        "**LLaMA-Factory.** The release ships `dataset_info.json`: download it (e.g. "
        f"`hf download {context.repo_id} --repo-type dataset --revision {context.version} --local-dir {context.name}`"
        f"), set `dataset_dir: {context.name}` and train with `dataset: {first.id}` (a task's train split), "
        f"`{first.id}_validation`, `{domain}` (a domain's train split) or `{ALL_CONFIG}`; join several with commas. "
        "LLaMA-Factory puts the input after the instruction with one newline between them; this project's own "
        "training (`anytasktune train`) leaves a blank line, so a model trained with one and evaluated with the "
        "other sees a slightly different prompt."
    )


def domain_name(domain: str) -> str:
    """A domain as a reader says it: the catalog's own names, else the id with spaces."""
    return DOMAIN_NAMES.get(domain) or domain.replace("_", " ").capitalize()


def _cell(text: str) -> str:
    """Text for one table cell: on one line, its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def metric_text(spec: TaskSpec) -> str:
    metric = spec.metric
    if metric.name == "mean" and metric.parts:
        parts = " and ".join(METRIC_NAMES[p.name] + (f" on `{p.field}`" if p.field else "") for p in metric.parts)
        return f"mean of {parts}"
    return METRIC_NAMES.get(metric.name, metric.name) + (f" on `{metric.field}`" if metric.field else "")


def task_table(catalog: Catalog, records: pl.DataFrame) -> str:
    """A compact table per domain, in code order: what reads at 1280 px and on a phone. The long detail of each task
    (instructions, labels, an example) is in the task details below."""
    counts = split_counts(records)
    languages = catalog.languages
    per = " / ".join(languages)
    sections = []
    for domain in catalog.domains:
        rows = []
        for spec in sorted(catalog.by_domain(domain), key=code_order):
            cells = [  # no-break spaces: a count pair never wraps inside its cell
                "\u00a0/\u00a0".join(
                    str(counts.get((spec.id, lang, s), 0)) if lang in spec.languages else "–" for lang in languages
                )
                for s in SPLITS
            ]
            names = "<br>".join(_cell(getattr(spec.name, lang)) for lang in spec.languages)
            rows.append(
                f"| {spec.code} | `{spec.id}` | {names} | {FORMAT_NAMES[spec.output.format]} | {metric_text(spec)} | "
                + " | ".join(cells)
                + " |"
            )
        sections.append(
            f"### {domain_name(domain)}\n\n"
            f"| code | config | task | output | metric | train | validation | test |\n"
            "|---|---|---|---|---|---:|---:|---:|\n" + "\n".join(rows)
        )
    return (
        "## Tasks\n\n"
        f"{len(catalog)} tasks in {len(catalog.domains)} domains; records per split"
        + (f" are {per}" if len(languages) > 1 else "")
        + ". Each task's instructions, labels and an example record are in [Task details](#task-details).\n\n"
        + "\n\n".join(sections)
    )


def statistics(catalog: Catalog, records: pl.DataFrame) -> str:
    per_task = task_counts(records)
    lengths = length_summary(records)
    length_rows = "\n".join(
        f"| {r['lang']} | {r['field']} | {r['median']} | {r['p90']} |" for r in lengths.iter_rows(named=True)
    )
    zero = sorted({t for (t, _), n in per_task.items() if n == 0})
    return (
        "## Statistics\n\n"
        f"![Records per task and language]({COUNTS_PLOT})\n\n"
        f"![Input and output length distributions]({LENGTHS_PLOT})\n\n"
        "Text length in characters (a Chinese character counts as one):\n\n"
        "| lang | field | median | 90th percentile |\n|---|---|---:|---:|\n"
        + (length_rows or "| – | – | – | – |")
        + ("\n\nTasks without records in this release: " + ", ".join(zero) if zero else "")
        + "\n\n"
        + column_table(records)
        + "\n\n"
        + label_table(catalog, records)
    )


def human_agreement(catalog: Catalog, report: dict[str, Any] | None) -> str:
    """The human reference row: blind second annotations of the test split scored against the reference with each
    task's own metric (ANNOTATION.md), as the build computed them from reviews/."""
    agreement = (report or {}).get("agreement") or {}
    table = agreement.get("table") or []
    head = "## Human agreement\n\n"
    if not table:
        return head + (
            "No blind second annotations of this release's test split yet, so there is no human reference row. "
            "Annotators add them with `anytasktune review --blind-only` (ANNOTATION.md); the next build scores them."
        )

    def figure(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    rows = "\n".join(
        f"| {catalog.get(r['task']).code if r['task'] in catalog else ''} | {r['task']} | {r['lang']} | "
        f"{r['annotations']:,} | {figure(r['agreement'])} | {figure(r['kappa'])} | "
        f"{r.get('disagreements', 0):,} | {figure(r.get('adjudicated'))} |"
        for r in table
    )
    covered = sum(r["annotations"] for r in table)
    return (
        head
        + f"{covered:,} test records have a blind second annotation (written from the instruction and input alone). "
        "Agreement is the mean of the task's own metric with the second annotation as the prediction, before "
        "adjudication; kappa is Cohen's, where the metric compares single labels. Each disagreement beyond the "
        "metric's tolerance was decided by a third reader (kept, fixed or dropped, logged in `adjudication/`); the "
        "last column is the agreement with the references as published.\n\n"
        "| code | task | lang | annotated | agreement | kappa | disagreements | after adjudication |\n"
        "|---|---|---|---:|---:|---:|---:|---:|\n" + rows + "".join(f"\n\n{note}" for note in agreement_notes(table))
    )


def column_table(records: pl.DataFrame) -> str:
    def cell(value: object) -> str:
        return "–" if value is None else f"{value:,}"

    rows = "\n".join(
        f"| `{r['column']}` | {cell(r['nulls'])} | {cell(r['empty'])} | {cell(r['distinct'])} | {cell(r['min'])} | "
        f"{cell(r['median'])} | {cell(r['max'])} |"
        for r in column_summary(records).iter_rows(named=True)
    )
    return (
        "Per column (all strings; length in characters):\n\n"
        "| column | nulls | empty | distinct | min | median | max |\n|---|---:|---:|---:|---:|---:|---:|\n" + rows
    )


def label_table(catalog: Catalog, records: pl.DataFrame) -> str:
    """The label distribution of every task with closed sets, both languages counted under the English label."""
    rows = []
    for task, counts in label_counts(catalog, records).items():
        total = sum(counts.values())
        spread = ", ".join(f"{_cell(label)} {n / total:.0%}" for label, n in counts.most_common(8)) if total else "–"
        more = f" (+{len(counts) - 8} more)" if len(counts) > 8 else ""
        rows.append(f"| `{task}` | {total:,} | {spread}{more} |")
    if not rows:
        return ""
    return (
        "Labels in the outputs (a record may hold several; the eight most frequent):\n\n"
        "| task | labels | share of each |\n|---|---:|---|\n" + "\n".join(rows)
    )


def _example_record(records: pl.DataFrame, task: str, lang: str) -> dict[str, Any] | None:
    """The train record with the smallest id (else any split): the same example while the record stays."""
    part = records.filter((pl.col("task") == task) & (pl.col("lang") == lang))
    if part.is_empty():
        return None
    train = part.filter(pl.col("split") == "train")
    return (train if not train.is_empty() else part).sort("id").row(0, named=True)


def _fenced(text: str, language: str = "text") -> str:
    fence = "````" if "```" in text else "```"
    return f"{fence}{language}\n{text}\n{fence}"


def _pretty_output(spec: TaskSpec, output: str) -> tuple[str, str]:
    if not spec.is_structured:
        return output, "text"
    try:
        return json.dumps(json.loads(output), ensure_ascii=False, indent=2), "json"
    except json.JSONDecodeError:
        return output, "text"


def task_details(catalog: Catalog, records: pl.DataFrame) -> str:
    """Per task, folded: what the input is, every instruction paraphrase, the labels, and one record per language."""
    blocks = []
    for domain in catalog.domains:
        for spec in sorted(catalog.by_domain(domain), key=code_order):
            titles = " · ".join(getattr(spec.name, lang) for lang in spec.languages)
            parts = [f"<details>\n<summary><b>{spec.code}</b> · <code>{spec.id}</code> — {titles}</summary>\n"]
            parts.append(
                "**Input:** " + " / ".join(getattr(spec.input, lang) for lang in spec.languages) + "\n\n"
                f"**Output:** {FORMAT_NAMES[spec.output.format]}, scored by {metric_text(spec)}.\n"
            )
            for name in spec.closed_sets:
                labels = "; ".join(" / ".join(spec.labels(name, lang)[i] for lang in spec.languages)
                                   for i in range(len(spec.closed_sets[name])))  # fmt: skip
                parts.append(f"`{name}`: {labels}\n")
            parts.append("**Instructions** (each record carries one):\n")
            parts.extend(f"- {text}" for lang in spec.languages for text in spec.paraphrases_for(lang))
            parts.append("")
            if rules := [rule for lang in spec.languages for rule in getattr(spec.rules, lang)]:
                parts.append("**Rules** (appended to every instruction):\n")
                parts.extend(f"{n}. {rule}" for n, rule in enumerate(rules, 1))
                parts.append("")
            for lang, title in (("en", "English"), ("zh", "中文")):
                if lang in spec.languages:
                    parts.append(_example(spec, records, lang, title))
            parts.append("</details>")
            blocks.append("\n".join(parts))
    return "## Task details\n\nClick a task to open it.\n\n" + "\n\n".join(blocks)


def _example(spec: TaskSpec, records: pl.DataFrame, lang: str, title: str) -> str:
    row = _example_record(records, spec.id, lang)
    if row is None:
        return f"**{title}**: no record in this release.\n"
    output, kind = _pretty_output(spec, row["output"])
    shown = _fenced(output, kind) if kind == "json" else quoted(output)
    return (
        f"**{title}** (`{row['id']}`, {row['split']})\n\n"
        f"*Instruction:* {row['instruction']}\n\n"
        f"*Input:*\n\n{quoted(row['input'])}\n\n"
        f"*Output:*\n\n{shown}\n"
    )


_MARKDOWN = re.compile(r"([\\`*_\[\]#|~])")


def quoted(text: str) -> str:
    """Untrusted text as a Markdown block quote that wraps and renders as the text itself: HTML escaped, Markdown's
    punctuation backslash-escaped, each line quoted."""
    safe = _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))
    return "\n".join(f"> {line}" if line.strip() else ">" for line in safe.splitlines() or [""])


def record_schema() -> str:
    rows = [
        ("id", "stable id: hash of task, language and normalized input; the same input keeps its id across releases"),
        ("task", "the sub-task id, also its config name"),
        ("domain", "medical, finance, law, psychology, consumer, hr or roleplay"),
        ("lang", "`en` or `zh`"),
        ("instruction", "the directive instruction (one of the task's paraphrases)"),
        ("input", "the text the instruction applies to"),
        ("output", "the expected answer: free text, or compact JSON following the task's schema"),
        ("source", "`seed` (hand-written) or `synth` (generated by an LLM, then filtered)"),
        ("generator", "`human` for seeds, the model id for synthesized records"),
        ("provenance", "JSON object: scenario, template hash, sampling parameters, exemplars shown"),
    ]
    table = "\n".join(f"| `{name}` | string | {text} |" for name, text in rows)
    return (
        "## Record schema\n\nAll columns are strings, in this order:\n\n| column | type | meaning |\n|---|---|---|\n"
        + table
        + "\n\nSplits are assigned by the hash of a group key, so they stay stable as the data grows; "
        "near-duplicates share a group, so no test record has a near-twin in train. Hand-written `gold` seeds are in "
        "test; records shown to the synthesizer as exemplars never are."
    )


def _seed_line(summary: Provenance) -> str:
    drafted = sum(summary.drafted_seeds.values())
    if not drafted:
        return f"- Hand-written seed records: **{summary.seed_records:,}**"
    models = ", ".join(f"`{m}`" for m in sorted(summary.drafted_seeds))
    return (
        f"- Seed records: **{summary.seed_records:,}** ({summary.seed_records - drafted:,} hand-written, {drafted:,} "
        f"drafted by {models} and kept by a reviewer)"
    )


def provenance(summary: Provenance, report: dict[str, Any] | None) -> str:
    lines = [
        "## Provenance\n",
        _seed_line(summary),
        f"- Synthesized records: **{summary.synth_records:,}**",
    ]
    if summary.generators:
        models = ", ".join(f"`{m}` ({n:,})" for m, n in sorted(summary.generators.items()))
        lines.append(f"- Generator models: {models}")
    else:
        lines.append("- Generator models: none in this release (every record is hand-written)")
    if summary.parameters:
        params = "; ".join(f"{k} = {', '.join(sorted(v))}" for k, v in sorted(summary.parameters.items()))
        lines.append(f"- Sampling parameters: {params}")
    if summary.cost_usd is not None:
        lines.append(f"- Generation cost: ${summary.cost_usd:,.2f} (as reported by the endpoint's token usage)")
    elif summary.synth_records:
        lines.append("- Generation cost: not recorded")
    stages = funnel(report)
    if stages:
        lines.append(
            "\nEvery record passes the same filters in this order; each dropped record is kept in a "
            "quarantine file with its reason.\n"
        )
        lines.append("| stage | records |\n|---|---:|")
        lines.extend(f"| {FUNNEL_NAMES.get(stage, stage)} | {n:,} |" for stage, n in stages)
    limits = thresholds(report)
    if limits:
        lines.append("\nThresholds: " + ", ".join(f"`{k}` = {v}" for k, v in sorted(limits.items())))
    else:
        lines.append(
            "\nNear-duplicates are found by MinHash over character n-grams (so Chinese is compared fairly); the "
            "language check wants at least half Han characters in Chinese text and almost none in English."
        )
    return "\n".join(lines)


def changelog(change: Change, history: list[dict[str, Any]]) -> str:
    since = f"against {change.previous}" if change.previous else "first release: every record is new"
    moved = [t for t in change.tasks if t.added or t.removed]
    lines = [
        "## Changelog\n",
        f"**{change.version}** ({change.date}), {since}: **+{change.added:,}** records added, "
        f"**−{change.removed:,}** removed, {change.records:,} in all.\n",
    ]
    if moved:
        lines.append("| task | added | removed | records now |\n|---|---:|---:|---:|")
        lines.extend(f"| `{t.task}` | +{t.added} | −{t.removed} | {t.records} |" for t in moved)
    else:
        lines.append("No record was added or removed.")
    older = [h for h in history if h.get("version") != change.version]
    if older:
        lines.append("\nEarlier versions:\n")
        lines.extend(
            f"- **{h['version']}** ({h['date']}): +{h['added']:,} / −{h['removed']:,}, {h['records']:,} records"
            for h in older
        )
    return "\n".join(lines)


def reproduce(context: CardContext, recipe: dict[str, Any] | None, summary: Provenance) -> str:
    """How to make this release again: the recipe it carries, the inputs it needs, the commands."""
    if recipe is None:
        return "## Reproduce\n\nThis release was built before releases carried their recipe."
    inputs = recipe["inputs"]
    records = sum(i.get("lines", 0) for i in inputs)
    tool = recipe["tool"]
    build = ", ".join(f"`{k}` = {v}" for k, v in recipe["build"].items())
    lines = [
        "## Reproduce\n",
        f"The release carries its recipe in `{RECIPE_DIR}/`: the catalog's task files (`{RECIPE_DIR}/tasks/`), the "
        f"project file, and `{RECIPE_DIR}/{RECIPE_FILE}`, which names the tool ({tool['name']} {tool['version']}), "
        f"the build configuration ({build}), each of the {len(inputs)} input files ({records:,} lines: the seeds "
        "and the synth store, with their bytes and SHA-256) and each Parquet file made, with its SHA-256.",
    ]
    if summary.settings or summary.generators:
        asked = "; ".join(f"{k} = {', '.join(sorted(v))}" for k, v in sorted(summary.settings.items()))
        models = ", ".join(f"`{m}`" for m in sorted(summary.generators))
        lines.append(f"\nThe synthesized records came from {models or 'no model'}" + (f" ({asked})." if asked else "."))
    lines.append(
        "\nThe same recipe and the same inputs make the same Parquet, byte for byte:\n\n"
        "```bash\n"
        f"hf download {context.repo_id} --repo-type dataset --revision {context.version} --local-dir release\n"
        f"mkdir -p data && cp -r release/{RECIPE_DIR}/tasks data/ && "
        f"cp release/{RECIPE_DIR}/*.yaml data/ 2>/dev/null\n"
        f"# put the inputs {RECIPE_DIR}/{RECIPE_FILE} lists (seeds/…, synth/…) under data/; their SHA-256 must match\n"
        "anytasktune --data-dir data build\n"
        f"sha256sum data/build/{recipe['build'].get('name', context.name)}/data/*/*.parquet   # = the outputs listed\n"
        "```"
    )
    return "\n".join(lines)


def limitations() -> str:
    return (
        "## Limitations\n\n"
        "- The seeds are hand-written and the synthesized records are generated by LLMs, then filtered; they are "
        "realistic, not real. Names, numbers, phone numbers and places are fictitious or absent: no record holds a "
        "real person's data.\n"
        "- Labels follow each task's closed set; real cases can be ambiguous, and a few labels may be debatable.\n"
        "- Chinese legal records follow PRC law, English ones a generic common-law setting; neither covers every "
        "jurisdiction, and the law changes.\n"
        "- Task coverage is uneven where the counts above say so; scores on small test splits have wide "
        "confidence intervals.\n\n"
        "> **Not advice.** Medical, legal, financial and psychological outputs in this dataset are training data, "
        "not professional advice. Do not use them, or a model trained on them, in place of a doctor, lawyer, "
        "financial adviser or mental-health professional. A person in crisis should contact local emergency "
        "services."
    )


def citation() -> str:
    return (
        "## Citation\n\n"
        f"If you use this dataset, please cite the AnyTaskTune paper ({PAPER_URL}):\n\n"
        "```bibtex\n"
        "@article{cui2024anytasktune,\n"
        "  title   = {AnyTaskTune: Advanced Domain-Specific Solutions through Task-Fine-Tuning},\n"
        "  author  = {Cui, Jiaxi and Zhang, Wentao and Tang, Jing and Tong, Xudong and Zhang, Zhenwei and Amie and "
        "Wen, Jing and Wang, Rongsheng and Wu, Pengfei},\n"
        "  journal = {arXiv preprint arXiv:2407.07094},\n"
        "  year    = {2024}\n"
        "}\n"
        "```"
    )
