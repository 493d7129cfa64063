"""The `anytasktune` command: the catalog, validate, seeds and build commands, and each layer's own commands."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from cards.seed_stats import seed_stats
from catalog import Catalog, CatalogError, load_catalog
from catalog.errors import Problem, display_path
from catalog.loader import load_task_file
from catalog.project import load_project
from catalog.settings import DATA_DIR_VARIABLE, Settings
from cli import release as release_commands
from cli import review as review_commands
from cli import synth as synth_commands
from cli import tasks as task_commands
from cli import train as train_commands
from cli.common import catalog_or_exit, project_or_exit
from cli.tables import print_table
from pipeline.build import BuildConfig, build
from validation.adjudication import read_adjudications
from validation.records import read_record_file, validate_files
from validation.report import Report
from validation.reviews import read_reviews

app = typer.Typer(
    name="anytasktune",
    help="AnyTaskTune: explicit, bilingual instruction datasets for domain sub-tasks.\n\n"
    "Paths default to ./datasets; set ANYTASKTUNE_DATA_DIR to use another data folder.",
    no_args_is_help=True,
    add_completion=False,
)
seeds_app = typer.Typer(help="The hand-written seed records.", no_args_is_help=True)
app.add_typer(seeds_app, name="seeds")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
DATA_DIR_FLAG = "--data-dir"


@app.callback()
def data_folder(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            DATA_DIR_FLAG,
            envvar=DATA_DIR_VARIABLE,
            help="The data folder (tasks, seeds, synth store, build). Default: ./datasets.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """The data folder every command works on, from --data-dir or ANYTASKTUNE_DATA_DIR."""
    if data_dir is not None:  # every layer reads its paths from Settings.from_env(): one place decides
        os.environ[DATA_DIR_VARIABLE] = str(data_dir)


@app.command()
def tasks(
    as_json: JsonFlag = False,
    domain: Annotated[str | None, typer.Option(help="Only the tasks of this domain.")] = None,
) -> None:
    """List the sub-task catalog: id, code, domain, output format, metric."""
    catalog = catalog_or_exit()
    specs = catalog.by_domain(domain) if domain else list(catalog)
    rows = [
        {
            "id": t.id,
            "code": t.code,
            "domain": t.domain,
            "output": t.output.format,
            "metric": t.metric.name + (f"({t.metric.field})" if t.metric.field else ""),
            "languages": ",".join(t.languages),
            "name_en": t.name.en or "",
            "name_zh": t.name.zh or "",
        }
        for t in specs
    ]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print_table(rows, title=f"{len(rows)} sub-tasks")


@app.command()
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Task YAML files, JSONL record files or folders. Default: the seeds and the synth store."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the catalog and record files; list every failure (file, line, record, field, reason). Exit 1 on any."""
    settings = Settings.from_env()
    report = Report()
    try:
        catalog: Catalog | None = load_catalog(settings.tasks_dir)
    except CatalogError as err:
        catalog = None
        report.failures.extend(err.problems)
    report.files += len(list(settings.tasks_dir.glob("*.yaml")))
    try:
        load_project(settings.data_dir)
    except CatalogError as err:
        report.failures.extend(err.problems)
    targets = list(paths) if paths else [p for p in (settings.seeds_dir, settings.synth_dir) if p.exists()]
    for path in targets:
        if not path.exists():
            report.failures.append(Problem(display_path(path), None, None, "no such file or folder"))
    yaml_files = [p for p in targets if p.suffix in (".yaml", ".yml") and p.exists()]
    outside = [p for p in yaml_files if p.resolve().parent != settings.tasks_dir.resolve()]
    for path in outside:  # task files beside the catalog are already checked with it
        report.files += 1
        report.failures.extend(load_task_file(path)[1])
    record_targets = [p for p in targets if p.exists() and p not in yaml_files]
    if catalog is not None:
        report.extend(validate_files(record_targets, catalog, settings.seeds_dir))
        if not paths:  # the review decisions and the adjudication log are data too
            reviews = read_reviews(settings.reviews_dir, catalog)
            adjudications = read_adjudications(settings.adjudication_dir, catalog)
            report.files += reviews.files + adjudications.files
            report.failures.extend(reviews.problems + adjudications.problems)
    elif record_targets:
        typer.echo("records not checked: the catalog they are checked against is invalid", err=True)
    typer.echo(report.to_json() if as_json else report.render())
    if not report.ok:
        raise typer.Exit(1)


@seeds_app.command("stats")
def seeds_stats(as_json: JsonFlag = False) -> None:
    """Per task and language: records, gold records, output length, label coverage."""
    catalog = catalog_or_exit()
    frame = seed_stats(catalog, Settings.from_env().seeds_dir)
    if as_json:
        typer.echo(json.dumps(frame.to_dicts(), ensure_ascii=False, indent=2))
    else:
        print_table(frame.to_dicts(), title=f"seeds: {frame['records'].sum()} records")


@seeds_app.command("blind")
def seeds_blind(
    task: Annotated[list[str], typer.Option(help="The task(s) whose gold records to export.")],
    out: Annotated[Path, typer.Option(help="The JSONL file to write.")],
    lang: Annotated[str | None, typer.Option(help="Only this language.")] = None,
) -> None:
    """A blind sheet for a second annotator: each gold record's id, task, language, instruction and input, never
    its output. Annotations go to reviews/<annotator>.jsonl with verdict `annotate` (ANNOTATION.md, step 2)."""
    catalog = catalog_or_exit()
    seeds_dir = Settings.from_env().seeds_dir
    rows = []
    for task_id in task:
        if task_id not in catalog:
            raise typer.BadParameter(f"unknown task {task_id!r}", param_hint="--task")
        frame = read_record_file(seeds_dir / f"{task_id}.jsonl", catalog).frame
        gold = frame.filter((pl.col("role") == "gold") & (pl.col("lang") == lang if lang else pl.lit(True)))
        rows += gold.select(pl.col("id").alias("record"), "task", "lang", "instruction", "input").to_dicts()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    typer.echo(f"{len(rows)} gold records, without their outputs, in {display_path(out)}")


def main() -> None:
    app(args=hoist_data_dir(sys.argv[1:]))


def hoist_data_dir(args: list[str]) -> list[str]:
    """`--data-dir DIR` wherever it is written (`anytasktune build --data-dir DIR` too) moved before the command,
    where the app's option reads it."""
    for index, arg in enumerate(args):
        if arg == DATA_DIR_FLAG and index + 1 < len(args):
            return [arg, args[index + 1], *args[:index], *args[index + 2 :]]
        if arg.startswith(DATA_DIR_FLAG + "="):
            return [arg, *args[:index], *args[index + 1 :]]
    return args


@app.command("build")
def build_command(
    name: Annotated[
        str | None, typer.Option(help="Release name: the folder under <data>/build/. Default: the project's.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Build the release from the seeds and the synth store: filters, dedup, split, Parquet in Hub layout."""
    catalog = catalog_or_exit()
    settings = Settings.from_env()
    name = name or project_or_exit().name
    result = build(catalog, settings, BuildConfig(name=name), keep_records=False)
    if as_json:
        typer.echo(json.dumps(result.report, ensure_ascii=False, indent=2))
        return
    print_table(
        result.report["rows"] + [{"task": "total", "lang": "", **result.report["totals"]}], title="build report"
    )
    typer.echo(f"release: {display_path(result.release)}  quarantine: {display_path(result.quarantine)}")
    typer.echo("seconds: " + ", ".join(f"{step} {s:.1f}" for step, s in result.seconds.items()), err=True)
    if unmatched := result.report.get("reviews", {}).get("unmatched"):
        typer.echo(
            f"{len(unmatched)} review decision(s) concern records this build did not read (kept in reviews/): "
            + ", ".join(f"{u['record']} ({u['file']}:{u['line']})" for u in unmatched[:5]),
            err=True,
        )
    if result.report.get("overridden_claims"):
        typer.echo(
            f"{result.report['overridden_claims']} claims of `source: seed` or a seed role outside the seeds folder "
            "were overridden (run `anytasktune validate` to list them)",
            err=True,
        )


for _layer in (task_commands, synth_commands, release_commands, train_commands, review_commands):
    _layer.register(app)
