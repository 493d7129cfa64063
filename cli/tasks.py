"""`anytasktune init` and `anytasktune task …`: a team's own data folder and sub-tasks, scaffolded or drafted."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
from pathlib import Path
from typing import Annotated

import typer

from catalog import Catalog, CatalogError, load_catalog
from catalog.authoring import FIELD_KINDS, FieldSketch, TaskSketch, sketch_problems, task_document, task_yaml
from catalog.authoring import write_atomically as write_file
from catalog.errors import display_path
from catalog.loader import check_task_document
from catalog.project import Project
from catalog.scaffold import FolderExists, init_folder, project_name
from catalog.spec import IDENTIFIER, LANGS
from cli.common import catalog_or_exit, fail, settings, split_values
from cli.synth import DEFAULT_MODEL, ApiKeyOption, BaseUrlOption, ModelOption

task_app = typer.Typer(help="Your own sub-tasks: scaffold one, draft one from a description, keep a draft.")
FORMAT_HELP = "Output format: text, items, label, labels, fields or object."
LangsOption = Annotated[str, typer.Option("--langs", help="The task's languages: en, zh or en,zh.")]


def _languages(text: str) -> tuple[str, ...]:
    languages = tuple(dict.fromkeys(split_values([text], [])))
    if not languages or any(lang not in LANGS for lang in languages):
        raise fail(f"--langs {text!r}: use en, zh or en,zh")
    return tuple(lang for lang in LANGS if lang in languages)  # catalog order: en before zh


def _catalog_if_any() -> Catalog | None:
    """The catalog when the folder has one; a folder with no task yet (or only broken ones) is not an error here."""
    try:
        return load_catalog(settings().tasks_dir)
    except CatalogError:
        return None


def init_command(
    folder: Annotated[Path, typer.Argument(help="The new data folder (must not exist, or be empty).")],
    name: Annotated[str | None, typer.Option(help="Release name (default: from the folder name).")] = None,
    title: Annotated[str | None, typer.Option(help="The dataset card's title (default: the name).")] = None,
    hub_repo: Annotated[str | None, typer.Option(help="Hub repo (org/name) releases go to.")] = None,
    example: Annotated[bool, typer.Option(help="Include the worked example task and its seeds.")] = True,
) -> None:
    """Create a data folder for your own tasks: tasks/, seeds/, reviews/, drafts/, the project file, a run config."""
    try:
        project = Project(name=name or project_name(folder), title=title or name or folder.name, hub_repo=hub_repo)
    except ValueError as err:
        raise fail(f"init: {err}") from None
    try:
        written = init_folder(folder, project, example)
    except FolderExists as err:
        raise fail(f"init: {err}") from None
    typer.echo(f"created {display_path(folder)}: " + ", ".join(str(p) for p in written))
    typer.echo(
        f"next: anytasktune --data-dir {display_path(folder)} validate   (or export ANYTASKTUNE_DATA_DIR=...)\n"
        f'      anytasktune --data-dir {display_path(folder)} task draft --describe "what your team does"'
    )


@task_app.command("new")
def new_command(
    task_id: Annotated[str, typer.Option("--id", prompt="Task id (snake_case)", help="Task id: snake_case.")],
    code: Annotated[str, typer.Option(prompt="Short code (e.g. D2)", help="Short code for tables: A-Z, 0-9.")],
    domain: Annotated[str, typer.Option(prompt="Domain (one snake_case word)", help="The domain: snake_case.")],
    output_format: Annotated[str, typer.Option("--format", prompt="Output format", help=FORMAT_HELP)],
    langs: LangsOption = "en,zh",
    labels: Annotated[
        str | None,
        typer.Option(help="A label or labels task's closed set: 'a,b,c', or 'a=甲,b=乙' for en and zh."),
    ] = None,
    set_name: Annotated[str, typer.Option(help="The closed set's name ({name} in instructions).")] = "label",
    field: Annotated[
        list[str] | None,
        typer.Option(help="A key of a fields or object task: NAME:KIND (text, list) or NAME:label=a|b|c. Repeat."),
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Metric name (default: follows from the format).")] = None,
) -> None:
    """Scaffold a task file in tasks/; `validate` then names each part left to fill (TODO)."""
    languages = _languages(langs)
    tasks_dir = settings().tasks_dir
    path = tasks_dir / f"{task_id}.yaml"
    catalog = _catalog_if_any()
    if path.exists():
        raise fail(f"task new: {display_path(path)} exists already; choose another id")
    if catalog is not None and (taken := next((t for t in catalog if t.code == code), None)):
        raise fail(f"task new: code {code!r} is taken by {taken.id}")
    try:
        sketch = TaskSketch(
            id=task_id,
            code=code,
            domain=domain,
            languages=languages,
            format=output_format,
            labels=_label_texts(labels or "", languages, ","),
            set_name=set_name,
            fields=tuple(_field_sketch(text, languages) for text in field or ()),
            metric={"name": metric} if metric else None,
        )
    except ValueError as err:
        raise fail(f"task new: {err}") from None
    problems = [f"{where}: {reason}" for where, reason in sketch_problems(sketch)]
    document = task_document(sketch)
    _, found = check_task_document(document, display_path(path), file_stem=task_id)
    problems += [str(p) for p in found if not p.reason.startswith("left to fill")]
    if problems:
        raise fail("task new: nothing written:\n" + "\n".join(f"  {p}" for p in problems))
    comment = "Scaffolded by `anytasktune task new`: fill each TODO; `anytasktune validate` lists those left."
    write_file(path, task_yaml(document, comment))
    left = [p for p in found if p.reason.startswith("left to fill")]
    typer.echo(f"wrote {display_path(path)}; {len(left)} part(s) left to fill:")
    for problem in left:
        typer.echo(f"  {problem}")


def _label_texts(text: str, languages: tuple[str, ...], separator: str) -> tuple[dict[str, str], ...]:
    """'a=甲,b=乙' → ({'en': 'a', 'zh': '甲'}, …): the first text in the task's first language, then its second."""
    labels = []
    for part in (p.strip() for p in text.split(separator) if p.strip()):
        texts = [t.strip() for t in part.split("=")]
        if len(texts) > len(languages) or not all(texts):
            raise ValueError(f"label {part!r}: give one text per language ({', '.join(languages)}), joined by '='")
        labels.append(dict(zip(languages, texts, strict=False)))
    return tuple(labels)


def _field_sketch(text: str, languages: tuple[str, ...]) -> FieldSketch:
    name, _, rest = text.partition(":")
    kind, _, label_text = rest.partition("=")
    kind = kind.strip() or "text"
    if not name.strip() or kind not in FIELD_KINDS:
        raise ValueError(f"--field {text!r}: NAME:KIND with KIND one of {', '.join(FIELD_KINDS)}")
    if not re.match(IDENTIFIER, name.strip()):
        raise ValueError(f"--field {text!r}: the name must be snake_case")
    return FieldSketch(name.strip(), kind, _label_texts(label_text, languages, "|"))  # type: ignore[arg-type]


@task_app.command("draft")
def draft_command(
    describe: Annotated[str, typer.Option(help="What the work is, in a paragraph: the input, the answer wanted.")],
    langs: LangsOption = "en,zh",
    output_format: Annotated[str | None, typer.Option("--format", help=FORMAT_HELP + " Default: the model's.")] = None,
    task_id: Annotated[str | None, typer.Option("--id", help="Task id (default: the model's).")] = None,
    code: Annotated[str | None, typer.Option(help="Short code (default: the model's).")] = None,
    domain: Annotated[str | None, typer.Option(help="Domain (default: the model's).")] = None,
    seeds: Annotated[int, typer.Option(min=1, max=200, help="Candidate seeds per language.")] = 10,
    model: ModelOption = DEFAULT_MODEL,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Draft a task and candidate seeds from a description, through the endpoint, into drafts/<id>/ for review.

    The draft is checked by the catalog's own validators and sent back once with its errors if it fails; the
    candidate seeds by the record contract and the personal-data check. Nothing is written into tasks/ or seeds/:
    review the draft, then `anytasktune task keep <id> --seeds …`.
    """
    from synth.cache import ResponseCache
    from synth.client import EndpointRejected, EndpointUnavailable, LLMClient, RequestFailed
    from synth.config import Budget, EndpointMissing, Limits, resolve_endpoint
    from synth.draft import FORMATS, DraftAsk, DraftFailed, draft_seeds, draft_task
    from synth.drafts import DraftError, list_drafts, write_draft
    from synth.prices import price_of
    from synth.report import JobStats

    here = settings()
    if not describe.strip():
        raise fail("task draft: --describe is empty: say what the work is")
    if output_format is not None and output_format not in FORMATS:
        raise fail(f"task draft: --format {output_format!r}: one of {', '.join(FORMATS)}")
    catalog = _catalog_if_any()
    ids = {t.id for t in catalog or ()} | {p.stem for p in here.tasks_dir.glob("*.yaml")}
    ask = DraftAsk(
        description=describe,
        languages=_languages(langs),
        format=output_format,
        task_id=task_id,
        code=code,
        domain=domain,
        seeds_per_language=seeds,
        taken_ids=frozenset(ids | set(list_drafts(here))),
        taken_codes=frozenset(t.code for t in catalog or ()),
    )
    if task_id is not None and task_id in ask.taken_ids:
        raise fail(f"task draft: id {task_id!r} is taken (by the catalog or a draft); choose another")
    try:
        endpoint = resolve_endpoint(base_url, api_key, model)
    except EndpointMissing as err:
        raise fail(f"task draft: {err}") from None
    stats, cache = JobStats(), ResponseCache.in_store(here.synth_dir)
    client = LLMClient(endpoint, Limits(), Budget(), price_of(model), cache, stats)

    async def run():  # type: ignore[no-untyped-def]
        try:
            task = await draft_task(client, ask, model)
            return task, await draft_seeds(client, task.spec, ask.seeds_per_language, model)
        finally:
            await client.close()
            cache.close()

    try:
        task, candidates = asyncio.run(run())
    except DraftFailed as err:
        listed = "\n".join(f"  {p}" for p in err.problems)
        raise fail(f"task draft: {err}:\n{listed}\n(no task, no draft written)") from None
    except (EndpointRejected, EndpointUnavailable, RequestFailed) as err:
        raise fail(f"task draft: {err} (nothing written; answers received are cached)") from None
    meta = {
        "description": describe,
        "model": model,
        "endpoint": endpoint.public_url,
        "languages": list(ask.languages),
        "turns": task.turns,
        "seeds": len(candidates.rows),
        "rejected_seeds": candidates.rejected,
        "tokens": {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens},
    }
    try:
        folder = write_draft(here, task.document, candidates.rows, meta)
    except DraftError as err:
        raise fail(f"task draft: {err}") from None
    repaired = " (repaired once)" if len(task.turns) > 1 else ""
    typer.echo(
        f"drafted {task.spec.id} ({task.spec.output.format}, {', '.join(task.spec.languages)}){repaired}: "
        f"{len(candidates.rows)} candidate seeds, {len(candidates.rejected)} rejected, in {display_path(folder)}"
    )
    typer.echo(f"review: anytasktune task show {task.spec.id}; then anytasktune task keep {task.spec.id} --seeds 1-16")


@task_app.command("drafts")
def drafts_command() -> None:
    """List the drafts waiting for review."""
    from synth.drafts import TASK_FILE, DraftError, list_drafts, read_draft, task_summary

    here = settings()
    for task_id in list_drafts(here):
        try:
            draft = read_draft(here, task_id)
        except DraftError as err:  # one unreadable draft is named; the others are still listed
            typer.echo(f"{task_id}: {err}" + "".join(f"\n  {p}" for p in err.problems), err=True)
            continue
        summary = task_summary(draft.folder / TASK_FILE)
        typer.echo(f"{task_id}: {summary['format']}, {', '.join(summary['languages'])}, {len(draft.seeds)} seeds")


@task_app.command("show")
def show_command(task_id: Annotated[str, typer.Argument(help="The draft's task id.")]) -> None:
    """Print a draft: its task file, then its candidate seeds numbered by line (what `task keep --seeds` takes)."""
    from synth.drafts import TASK_FILE, DraftError, read_draft

    try:
        draft = read_draft(settings(), task_id)
    except DraftError as err:
        raise fail(f"task show: {err}") from None
    typer.echo((draft.folder / TASK_FILE).read_text(encoding="utf-8"))
    for number, seed in enumerate(draft.seeds, start=1):
        typer.echo(f"[{number}] {seed.get('lang')}  input: {seed.get('input')}\n     output: {seed.get('output')}")


@task_app.command("keep")
def keep_command(
    task_id: Annotated[str, typer.Argument(help="The draft's task id.")],
    seeds: Annotated[str, typer.Option(help="Candidate seeds to keep, by line: '1-16' or '1,3,5-9'.")],
    reviewer: Annotated[str | None, typer.Option(help="Who reviewed them (default: the user name).")] = None,
) -> None:
    """Move a reviewed draft into the catalog: the task file to tasks/, the chosen seeds to seeds/ (a quarter of each
    language gold). All of it is checked first; nothing is written unless it passes."""
    from synth.drafts import DraftError, keep_draft, parse_selection, read_draft

    here = settings()
    try:
        draft = read_draft(here, task_id)
        lines = parse_selection(seeds, len(draft.seeds))
    except DraftError as err:
        raise fail(f"task keep: {err}") from None
    except ValueError as err:
        raise fail(f"task keep: --seeds: {err}") from None
    catalog = catalog_or_exit() if any(here.tasks_dir.glob("*.yaml")) else Catalog(())
    try:
        task_path, seeds_path = keep_draft(here, catalog, task_id, lines, reviewer or getpass.getuser())
    except DraftError as err:
        listed = "".join(f"\n  {p}" for p in err.problems)
        raise fail(f"task keep: {err}{listed}") from None
    kept = [json.loads(line) for line in seeds_path.read_text(encoding="utf-8").splitlines()]
    gold = sum(r["role"] == "gold" for r in kept)
    typer.echo(
        f"kept {task_id}: {display_path(task_path)}, {display_path(seeds_path)} ({len(kept)} seeds, {gold} gold)"
    )


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the `anytasktune` app."""
    app.command("init")(init_command)
    app.add_typer(task_app, name="task")
