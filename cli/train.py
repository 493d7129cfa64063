"""The `anytasktune` commands of the train layer: train, eval, matrix, merge."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from catalog.settings import Settings
from cli.common import catalog_or_exit, fail, project_or_exit, split_values

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
    typer.echo(f"adapter: {result.adapter_dir}  ({result.train_records} training records)")
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
) -> None:
    """Greedy generation on each selected task's test split, scored by the task's metric (per task and language).

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
    kind = "endpoint" if endpoint else ("adapter" if adapter else "base")
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
    run = EvalRun(run_name, kind, model, str(adapter) if adapter else None, fingerprint)
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
    try:
        summary = evaluate(catalog, records, predict, run, out / run_name, chunk_size=chunk)
    except errors as err:
        raise _fail(f"{err} (predictions made so far are kept; rerun to resume)") from None
    for task, entry in summary["tasks"].items():
        typer.echo(f"{entry['code']:>4} {task:<28} {100 * entry['score']:5.1f}  (n={entry['n']})")
    typer.echo(f"scores: {out / run_name / 'scores.json'}")


def _default_name(model: str, adapter: Path | None, endpoint: str | None) -> str:
    base = model.rstrip("/").split("/")[-1]
    if adapter:
        run = adapter.resolve().parent.name if adapter.name == "adapter" else adapter.name
        return f"{base}+{run}"
    return f"{base}@endpoint" if endpoint else base


def matrix_command(
    runs: Annotated[Path, typer.Option(help="Evaluation runs folder (each run's scores.json).")] = Path("runs/eval"),
    out: Annotated[Path, typer.Option(help="Where the matrix files go.")] = Path("runs/matrix"),
) -> None:
    """The model × task matrix from all evaluation runs: CSV, Markdown and heatmap PNG, overall and per language."""
    from training.matrix import MatrixError, view_file, write_matrix

    try:
        matrices = write_matrix(catalog_or_exit(), runs, out)
    except MatrixError as err:
        raise _fail(str(err)) from None
    typer.echo((out / "matrix.md").read_text(encoding="utf-8").split("\n\n###")[0])
    files = ", ".join([*(view_file(name) for name in matrices), "matrix.md", "matrix.png"])
    typer.echo(f"written: {out}/{files} ({len(matrices['all'])} models)")


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
    app.command("merge")(merge_command)
