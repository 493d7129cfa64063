"""The `anytasktune synth` command: grow the datasets through any OpenAI-compatible endpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from catalog import CatalogError, load_catalog
from catalog.settings import Settings
from catalog.spec import LANGS
from cli.common import split_values
from synth.batch import BatchJob, BatchOptions
from synth.config import Budget, EndpointMissing, Limits, resolve_endpoint
from synth.job import JobConfig, SynthJob
from synth.judge import JudgeConfig
from synth.prices import price_of
from synth.progress import ProgressBar
from synth.prompts import Options
from synth.report import JobStats

DEFAULT_MODEL = "gpt-4o-mini"
EXIT_NO_ENDPOINT = 2

_ENDPOINT = "Endpoint"
_LIMITS = "Limits"
_BUDGET = "Budget"
_BATCH = "Batch API"
_PROMPTS = "Prompts"
_JUDGE = "Judge"


# The endpoint options, shared with `task draft`.
ModelOption = Annotated[
    str, typer.Option(envvar="ANYTASKTUNE_SYNTH_MODEL", help="Model id the endpoint serves.", rich_help_panel=_ENDPOINT)
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        help="Chat Completions base URL, e.g. http://localhost:8000/v1. Default: $OPENAI_BASE_URL.",
        rich_help_panel=_ENDPOINT,
        show_default=False,
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        help="API key. Prefer $OPENAI_API_KEY (a flag lands in shell history). Never written anywhere.",
        rich_help_panel=_ENDPOINT,
        show_default=False,
    ),
]


def synth(
    tasks: Annotated[
        list[str] | None,
        typer.Option("--tasks", "-t", help="Task ids, codes or domains, comma-separated or repeated; 'all'."),
    ] = None,
    langs: Annotated[list[str] | None, typer.Option("--langs", "-l", help="Languages: en, zh (default both).")] = None,
    per_task: Annotated[
        int,
        typer.Option(
            "--per-task",
            "-n",
            min=1,
            help="Synthesized records wanted per task and language, those already in the store included.",
        ),
    ] = 10,
    model: ModelOption = DEFAULT_MODEL,
    base_url: BaseUrlOption = None,
    api_key: ApiKeyOption = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at most.", rich_help_panel=_LIMITS)] = 16,
    rpm: Annotated[float | None, typer.Option(help="Requests per minute at most.", rich_help_panel=_LIMITS)] = None,
    tpm: Annotated[float | None, typer.Option(help="Tokens per minute at most.", rich_help_panel=_LIMITS)] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds per request before it is retried.", rich_help_panel=_LIMITS)
    ] = 120.0,
    max_retries: Annotated[
        int, typer.Option(min=0, help="Retries per request (429, 5xx, timeouts).", rich_help_panel=_LIMITS)
    ] = 6,
    breaker_cooldown: Annotated[
        float, typer.Option(help="Seconds the circuit stays open after repeated failures.", rich_help_panel=_LIMITS)
    ] = 30.0,
    max_requests: Annotated[
        int | None, typer.Option(help="Stop after this many requests.", rich_help_panel=_BUDGET)
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Stop after this many tokens.", rich_help_panel=_BUDGET)
    ] = None,
    max_cost: Annotated[float | None, typer.Option(help="Stop at this cost in USD.", rich_help_panel=_BUDGET)] = None,
    price_in: Annotated[
        float | None,
        typer.Option(help="USD per million prompt tokens (overrides the price table).", rich_help_panel=_BUDGET),
    ] = None,
    price_out: Annotated[
        float | None, typer.Option(help="USD per million completion tokens.", rich_help_panel=_BUDGET)
    ] = None,
    records_per_request: Annotated[
        int, typer.Option(min=1, max=50, help="Records asked for in one request.", rich_help_panel=_PROMPTS)
    ] = 5,
    exemplars: Annotated[
        int, typer.Option(min=0, help="Exemplar seeds shown per request.", rich_help_panel=_PROMPTS)
    ] = 3,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.", rich_help_panel=_PROMPTS)] = 1.0,
    top_p: Annotated[float | None, typer.Option(help="Nucleus sampling.", rich_help_panel=_PROMPTS)] = None,
    max_output_tokens: Annotated[
        int | None, typer.Option(help="max_tokens of each answer.", rich_help_panel=_PROMPTS)
    ] = None,
    two_stage: Annotated[
        bool,
        typer.Option(
            help="Ask for inputs first, then for their outputs (better outputs, twice the requests).",
            rich_help_panel=_PROMPTS,
        ),
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            help="Send records that fail the contract back once with their errors, and keep what gets fixed.",
            rich_help_panel=_PROMPTS,
        ),
    ] = True,
    judge: Annotated[
        bool, typer.Option(help="Score records with an LLM judge; drop low scores.", rich_help_panel=_JUDGE)
    ] = False,
    judge_model: Annotated[
        str | None, typer.Option(help="Judge model (default: --model).", rich_help_panel=_JUDGE)
    ] = None,
    judge_threshold: Annotated[
        float, typer.Option(min=1, max=5, help="Lowest judge score (1–5) kept.", rich_help_panel=_JUDGE)
    ] = 4.0,
    cache_only: Annotated[
        bool, typer.Option(help="Re-read cached answers only (after a parser fix); never call the endpoint.")
    ] = False,
    batch: Annotated[
        bool,
        typer.Option(
            help="Go through the endpoint's Batch API (upload, create, poll, download) instead of live requests.",
            rich_help_panel=_BATCH,
        ),
    ] = False,
    batch_poll: Annotated[
        float, typer.Option(min=0.01, help="Seconds between polls of a batch.", rich_help_panel=_BATCH)
    ] = 30.0,
    batch_export: Annotated[
        Path | None,
        typer.Option(help="Write the requests a batch would carry to this file, send nothing.", rich_help_panel=_BATCH),
    ] = None,
    batch_import: Annotated[
        Path | None,
        typer.Option(
            help="Read a batch runner's output file (e.g. vLLM run_batch) into the cache, then check it.",
            rich_help_panel=_BATCH,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final report as JSON.")] = False,
    report: Annotated[Path | None, typer.Option(help="Also write the final report as JSON to this file.")] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress bar (on a terminal).")] = True,
) -> None:
    """Generate records through an OpenAI-compatible endpoint until each task and language holds --per-task.

    The endpoint is any server that speaks Chat Completions: OpenAI, vLLM, SGLang, Ollama, llama.cpp. Accepted
    records go to datasets/synth/<task>.jsonl, rejects with their reason to datasets/synth/_quarantine/, raw answers
    to the cache datasets/synth/_cache/: a re-run sends no request for work already done.
    """
    settings = Settings.from_env()
    try:
        endpoint = resolve_endpoint(base_url, api_key, model)
    except EndpointMissing as err:
        if not (cache_only or batch_export or batch_import):  # those send nothing: no endpoint needed
            typer.echo(f"synth: {err}", err=True)
            raise typer.Exit(EXIT_NO_ENDPOINT) from None
        endpoint = resolve_endpoint("http://cache-only.invalid/v1", None, model)
    try:
        catalog = load_catalog(settings.tasks_dir)
        specs = catalog.select(split_values(tasks, ["all"]))
    except CatalogError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(1) from None
    except KeyError as err:
        typer.echo(f"synth: --tasks: {err.args[0]}", err=True)
        raise typer.Exit(1) from None
    languages = split_values(langs, list(LANGS))
    if unknown := [lang for lang in languages if lang not in LANGS]:
        typer.echo(f"synth: --langs: unknown language(s) {', '.join(unknown)}; known: {', '.join(LANGS)}", err=True)
        raise typer.Exit(1)
    if (price_in is None) != (price_out is None):
        typer.echo("synth: give both --price-in and --price-out, or neither", err=True)
        raise typer.Exit(1)
    override = (price_in, price_out) if price_in is not None and price_out is not None else None
    price = price_of(model, override, batch=batch)
    if max_cost is not None and not price.known:
        typer.echo(f"synth: --max-cost: no price for {model!r}; pass --price-in and --price-out", err=True)
        raise typer.Exit(1)
    config = JobConfig(
        tasks=specs,
        langs=languages,
        per_task=per_task,
        options=Options(records_per_request, exemplars, temperature, top_p, max_output_tokens, two_stage),
        judge=JudgeConfig(judge_model or model, judge_threshold) if judge else None,
        cache_only=cache_only,
        repair=repair,
    )
    limits = Limits(concurrency, rpm, tpm, timeout, max_retries, breaker_cooldown=breaker_cooldown)
    budget = Budget(max_requests, max_tokens, max_cost)
    total = per_task * len(specs) * len(languages)
    if batch or batch_export or batch_import:
        batched = BatchJob(catalog, settings, endpoint, config, limits, budget, price, BatchOptions(batch_poll))
        if batch_import is not None:
            stats = asyncio.run(batched.import_results(batch_import))
        elif batch_export is not None:
            stats = asyncio.run(batched.export(batch_export))
        else:
            stats = asyncio.run(batched.run())
    else:
        with ProgressBar(total, enabled=progress and not as_json) as bar:
            job = SynthJob(catalog, settings, endpoint, config, limits, budget, price, on_progress=bar.update)
            stats = asyncio.run(job.run())
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(stats.to_json() + "\n", encoding="utf-8")
    typer.echo(stats.to_json() if as_json else stats.render())
    if stats.stopped is not None:
        typer.echo(f"synth: stopped ({stats.stop_kind}): {stats.stopped}", err=True)
    raise typer.Exit(exit_status(stats))


EXIT_STATUS = {None: 0, "budget": 0, "unavailable": 3}  # any other stop: 1 (see the README's synth section)


def exit_status(stats: JobStats) -> int:
    """0: every target met, or a budget reached; 3: the endpoint was unreachable or only answered 429 (run again
    later, the cache keeps what was paid for); 1: any other stop (refused credentials, model or quota, a circuit
    that stayed open, too many rejects, an internal error)."""
    return EXIT_STATUS.get(stats.stop_kind, 1) if stats.stopped is not None else 0


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the `anytasktune` app."""
    app.command("synth")(synth)
