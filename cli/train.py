"""The `anytasktune` commands of the train layer: train, eval, matrix, merge."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from catalog.settings import Settings
from cli.common import catalog_or_exit, fail, project_or_exit, split_values
from cli.tables import print_table

RELEASE_HELP = "Release folder in Hub layout, or a Hub dataset repo id (owner/name)."
TASKS_HELP = "Task ids, codes or domains, or 'all' (repeat the option or separate with commas)."


def _fail(message: str) -> typer.Exit:
    return fail(f"error: {message}")


def own_build() -> Path:
    """The data folder's build of its project: what train and eval read unless told otherwise."""
    return Settings.from_env().build_dir / project_or_exit().name


def train_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Run config (configs/train/*.yaml).")] = Path(
        "configs/train/all.yaml"
    ),
    tasks: Annotated[list[str] | None, typer.Option("--tasks", help=TASKS_HELP + " Overrides the config.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Base model: a local path or a Hub id. Overrides the config.")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Run name (folder under the output dir). Overrides the config.")
    ] = None,
    release: Annotated[str | None, typer.Option(help=RELEASE_HELP + " Overrides the config.")] = None,
    revision: Annotated[str | None, typer.Option(help="Revision (tag, branch, commit) of a Hub release.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps (> 0).")] = None,
    output_dir: Annotated[str | None, typer.Option(help="Where runs go (default runs/train).")] = None,
) -> None:
    """LoRA fine-tuning (TRL SFTTrainer + peft) on the train split of a task selection; loss on the output only.

    Writes <output-dir>/<name>/adapter (the LoRA adapter and tokenizer) and run.json (config, data, losses,
    throughput). Prints tokens/s (non-padding) and MFU at the end.
    """
    from training.data import DataError
    from training.run_config import RunConfigError, load_run_config

    keys = split_values(tasks, []) or None
    overrides = {
        "tasks": keys,
        "model": model,
        "release": release,
        "release_revision": revision,
        "max_steps": max_steps,
        "output_dir": output_dir,
        "name": name or ("-".join(keys)[:60] if keys else None),
    }
    try:
        run_config = load_run_config(config, overrides)
    except RunConfigError as err:
        raise _fail(str(err)) from None
    if "release" not in run_config.model_fields_set:  # neither the file nor the flag: the data folder's own build
        run_config = run_config.model_copy(update={"release": str(own_build())})
    from training.sft import train

    try:
        result = train(run_config, catalog_or_exit())
    except (DataError, ValueError, OSError) as err:
        raise _fail(str(err)) from None
    from training.execution import is_main_process

    if not is_main_process():  # one report for a multi-process run, not one per rank
        return
    typer.echo(f"adapter: {result.adapter_dir}  ({result.train_records} training records)")
    if result.too_long:
        typer.echo(
            f"left out: {result.too_long} training records longer than max_length {run_config.max_length} "
            "(their answers would be cut); raise max_length to keep them",
            err=True,
        )
    general = result.general
    if general and general.file and general.wanted:
        short = ""
        if general.mixed < general.wanted:
            short = f"; the set holds fewer than the {general.wanted} its share asks for"
        typer.echo(f"general: {general.mixed} records of {general.file} mixed in{short}")
    if result.schedule:
        s = result.schedule
        typer.echo(
            f"schedule: {s.steps} optimizer steps ({s.epochs:.2f} epochs, sized by {s.sized_by}), accumulation "
            f"{s.accumulation}, warmup {s.warmup_steps}, loss logged every {s.logging_steps}"
        )
    if result.throughput:
        typer.echo(f"throughput: {result.throughput.line()}")


def eval_command(
    model: Annotated[str, typer.Option(help="Local path or Hub id of the model; with --endpoint, the served model.")],
    adapter: Annotated[Path | None, typer.Option(help="LoRA adapter folder to apply to the model.")] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="Base URL of an OpenAI-compatible API instead of a local model.")
    ] = None,
    api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the endpoint's API key.")
    ] = "OPENAI_API_KEY",
    stop: Annotated[
        list[str] | None,
        typer.Option(
            "--stop",
            help="A stop string sent to the endpoint (repeatable). Default: the end of turn and EOS of the tokenizer "
            "in --model, when it is a local folder.",
        ),
    ] = None,
    tuned: Annotated[
        bool,
        typer.Option(
            "--tuned",
            help="The endpoint serves a task-tuned model (vLLM with a LoRA adapter, a merged model): its matrix row is "
            "a tuned one. Without it an endpoint's model is a base model, listed first.",
        ),
    ] = False,
    tasks: Annotated[list[str] | None, typer.Option("--tasks", help=TASKS_HELP)] = None,
    langs: Annotated[str, typer.Option(help="Languages to evaluate: en, zh or en,zh (each task's own).")] = "en,zh",
    release: Annotated[str | None, typer.Option(help=RELEASE_HELP + " Default: the data folder's build.")] = None,
    revision: Annotated[str | None, typer.Option(help="Revision of a Hub release.")] = None,
    name: Annotated[str | None, typer.Option(help="Row name in the matrix (default: from model and adapter).")] = None,
    out: Annotated[Path, typer.Option(help="Evaluation runs folder; this run goes to <out>/<name>.")] = Path(
        "runs/eval"
    ),
    batch_size: Annotated[int, typer.Option(help="Prompts per generation batch (local) or requests in flight.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Longest reply generated.")] = 512,
    limit: Annotated[int | None, typer.Option(help="At most this many test records per task and language.")] = None,
    judge_endpoint: Annotated[
        str | None,
        typer.Option(help="Base URL of an OpenAI-compatible API whose model grades free-text answers by rubric."),
    ] = None,
    judge_model: Annotated[str | None, typer.Option(help="The judge's model name (needs --judge-endpoint).")] = None,
    judge_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the judge endpoint's API key.")
    ] = "OPENAI_API_KEY",
) -> None:
    """Greedy generation on each selected task's test split, scored by the task's metric (per task and language);
    with --judge-endpoint, free-text tasks are also graded by an LLM judge against their rubric.

    Writes <out>/<name>/predictions.jsonl (resumable: done records are skipped on a rerun) and scores.json.
    """
    import polars as pl

    from training.data import DataError, ReleaseSource, load_split, resolve_release, select_tasks
    from training.evaluation import EvalRun, evaluate
    from training.fingerprint import run_fingerprint
    from training.formatting import PROMPT_FORMAT

    catalog = catalog_or_exit()
    try:
        specs = select_tasks(catalog, split_values(tasks, ["all"]))
        wanted = tuple(lang.strip() for lang in langs.split(",") if lang.strip())
        if not set(wanted) <= {"en", "zh"}:
            raise DataError(f"--langs: unknown language in {langs!r}; use en, zh or en,zh")
        folder = resolve_release(ReleaseSource(release or str(own_build()), revision), specs)
        records = load_split(folder, specs, "test", wanted)
    except DataError as err:
        raise _fail(str(err)) from None
    if limit is not None:
        records = records.filter(pl.int_range(pl.len()).over("task", "lang") < limit)
    # What the model is decides its row (base models first), not how it is reached.
    kind = "adapter" if adapter else ("tuned" if tuned else "base")
    run_name = name or _default_name(model, adapter, endpoint)
    stops: list[str] = []
    if endpoint:
        from training.endpoint import stop_strings

        stops = list(stop) if stop else stop_strings(model)
    fingerprint = run_fingerprint(
        model=model,
        adapter=str(adapter) if adapter else None,
        endpoint=endpoint,
        generation={"greedy": True, "max_new_tokens": max_new_tokens, "stop": stops},
        prompt_format=PROMPT_FORMAT,
    )
    backend = "endpoint" if endpoint else "local"
    run = EvalRun(run_name, kind, model, str(adapter) if adapter else None, fingerprint, backend)
    if endpoint:
        from training.endpoint import EndpointError, endpoint_predictor

        key = os.environ.get(api_key_env, "EMPTY")  # local servers (vLLM) accept any key
        predict = endpoint_predictor(endpoint, model, key, max_new_tokens, concurrency=batch_size, stop=stops)
        errors: tuple[type[Exception], ...] = (EndpointError,)
        chunk = batch_size  # one round of requests in flight: a failure loses at most those
    else:
        from training.generation import local_predictor
        from training.sft import load_for_inference

        try:
            loaded, tokenizer = load_for_inference(model, adapter)
        except (OSError, ValueError) as err:
            raise _fail(f"{model}: cannot load the model: {err}") from None
        predict = local_predictor(loaded, tokenizer, batch_size, max_new_tokens)
        errors = ()
        chunk = max(64, 8 * batch_size)  # generation sorts a chunk by length: larger chunks pad less
    judge = _judge_or_exit(judge_endpoint, judge_model, judge_key_env, batch_size)
    if judge is not None:
        from training.endpoint import EndpointError

        errors = (*errors, EndpointError)
    try:
        summary = evaluate(catalog, records, predict, run, out / run_name, chunk_size=chunk, judge=judge)
    except errors as err:
        raise _fail(f"{err} (predictions and judgements made so far are kept; rerun to resume)") from None
    for task, entry in summary["tasks"].items():
        graded = ""
        if "judge" in entry:
            graded = f"  judge {100 * entry['judge']:5.1f} ({entry['judge_failures']} unreadable, scored 0)"
        typer.echo(f"{entry['code']:>4} {task:<28} {100 * entry['score']:5.1f}  (n={entry['n']}){graded}")
    typer.echo(f"scores: {out / run_name / 'scores.json'}")


def _judge_or_exit(endpoint: str | None, model: str | None, key_env: str, concurrency: int) -> tuple | None:
    """The judge and its chat function from the --judge-* options; None without an endpoint."""
    if endpoint is None:
        if model is not None:
            raise _fail("--judge-model needs --judge-endpoint")
        return None
    if model is None:
        raise _fail("--judge-endpoint needs --judge-model: the model that grades")
    from training.endpoint import endpoint_chat
    from training.judge import Judge

    chat = endpoint_chat(endpoint, model, os.environ.get(key_env, "EMPTY"), max_tokens=300, concurrency=concurrency)
    return Judge(endpoint, model), chat


def _default_name(model: str, adapter: Path | None, endpoint: str | None) -> str:
    base = model.rstrip("/").split("/")[-1]
    if adapter:
        run = adapter.resolve().parent.name if adapter.name == "adapter" else adapter.name
        return f"{base}+{run}"
    return f"{base}@endpoint" if endpoint else base


def matrix_command(
    runs: Annotated[Path, typer.Option(help="Evaluation runs folder (each run's scores.json).")] = Path("runs/eval"),
    out: Annotated[Path, typer.Option(help="Where the matrix files go.")] = Path("runs/matrix"),
    human: Annotated[
        bool, typer.Option(help="Add the human row: the data folder's blind second annotations, scored like a model.")
    ] = True,
) -> None:
    """The model × task matrix from all evaluation runs: CSV, Markdown and heatmap PNG, overall and per language,
    each cell with its 95% bootstrap interval, and the human-agreement row."""
    from training.matrix import INTERVALS_FILE, MatrixError, human_result, view_file, write_matrix
    from validation.agreement import annotation_scores, read_folder_annotations

    catalog = catalog_or_exit()
    row = None
    if human:
        found = read_folder_annotations(catalog, Settings.from_env())
        if found.problems:
            raise _fail(f"{len(found.problems)} invalid line(s) in reviews/ or adjudication/: {found.problems[0]}")
        scored = annotation_scores(found.annotations, found.references, found.adjudications, catalog)
        row = human_result(scored, catalog)
    try:
        matrices = write_matrix(catalog, runs, out, human=row)
    except MatrixError as err:
        raise _fail(str(err)) from None
    typer.echo((out / "matrix.md").read_text(encoding="utf-8").split("\n\n###")[0])
    files = ", ".join([*(view_file(name) for name in matrices), INTERVALS_FILE, "matrix.md", "matrix.png"])
    typer.echo(f"written: {out}/{files} ({len(matrices['all'])} rows)")


def compare_command(
    first: Annotated[str, typer.Argument(help="A run's name (its folder under --runs).")],
    second: Annotated[str, typer.Argument(help="The run to compare it with.")],
    runs: Annotated[Path, typer.Option(help="Evaluation runs folder.")] = Path("runs/eval"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Does FIRST beat SECOND? Per task, a paired bootstrap over the test records both runs scored: the mean
    difference (points), its 95% interval, and the verdict the interval supports."""
    from training.matrix import MatrixError, compare_runs

    try:
        rows = compare_runs(catalog_or_exit(), runs, first, second)
    except MatrixError as err:
        raise _fail(str(err)) from None
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print_table(rows, title=f"{first} vs {second}: paired bootstrap, 95% intervals, points")


def calibrate_judge_command(
    judge_endpoint: Annotated[str, typer.Option(help="Base URL of the judge's OpenAI-compatible API.")],
    judge_model: Annotated[str, typer.Option(help="The judge's model name.")],
    judge_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the judge endpoint's API key.")
    ] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(help="Requests in flight.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """How far to trust the judge: it grades the data folder's blind second annotations of the free-text tasks (an
    expert's answer) and the same answers moved to another record of the task; a judge worth using accepts the
    first and tells them apart."""
    from training.endpoint import EndpointError
    from training.judge import calibration_items, calibration_table, has_rubric, judge_items
    from validation.agreement import read_folder_annotations

    catalog = catalog_or_exit()
    found = read_folder_annotations(catalog, Settings.from_env())
    if found.problems:
        raise _fail(f"{len(found.problems)} invalid line(s) in reviews/ or adjudication/: {found.problems[0]}")
    judged = [spec.id for spec in catalog if has_rubric(spec)]
    rows = found.annotations.filter(found.annotations["task"].is_in(judged)).join(
        found.references.select("id", "instruction", "input", found.references["output"].alias("reference")),
        left_on="record",
        right_on="id",
    )
    if rows.is_empty():
        raise _fail("no blind annotation of a task with a judge rubric to calibrate on (reviews/, verdict annotate)")
    who, chat = _judge_or_exit(judge_endpoint, judge_model, judge_key_env, concurrency) or (None, None)
    try:
        graded = judge_items(chat, who, catalog.get, calibration_items(rows.to_dicts()))
    except EndpointError as err:
        raise _fail(str(err)) from None
    table = calibration_table(graded)
    if as_json:
        typer.echo(json.dumps(table, ensure_ascii=False, indent=2))
        return
    shown = [{k: (f"{v:.3f}" if isinstance(v, float) else "" if v is None else v) for k, v in r.items()} for r in table]
    print_table(shown, title=f"judge {judge_model}: experts' answers (human, accepted) vs moved answers (pairwise)")


def merge_command(
    model: Annotated[str, typer.Option(help="The base model the adapter was trained on (path or Hub id).")],
    adapter: Annotated[Path, typer.Option(help="LoRA adapter folder.")],
    out: Annotated[Path, typer.Option(help="Folder for the merged model.")],
) -> None:
    """Fold a LoRA adapter into its base model's weights and save a plain model (for vLLM, the Hub, or eval)."""
    from training.sft import merge_adapter

    try:
        merge_adapter(model, adapter, out)
    except (OSError, ValueError) as err:
        raise _fail(f"{adapter}: cannot merge: {err}") from None
    typer.echo(f"merged model: {out}")


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the `anytasktune` app."""
    app.command("train")(train_command)
    app.command("eval")(eval_command)
    app.command("matrix")(matrix_command)
    app.command("compare")(compare_command)
    app.command("calibrate-judge")(calibrate_judge_command)
    app.command("merge")(merge_command)
