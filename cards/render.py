"""The release's README.md: a `DatasetCard` whose YAML the Hub and `load_dataset` read, and prose a user reads.

`write_card_files` writes everything a card needs into a release folder: README.md, plots, dataset_info.json for
LLaMA-Factory and the changelog history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from huggingface_hub import DatasetCard, DatasetCardData

from cards import sections
from cards.changelog import Change, read_history, write_history
from cards.hub_yaml import hub_metadata
from cards.llamafactory import write_dataset_info
from cards.plots import write_plots
from cards.provenance import summarize
from cards.stats import size_category
from catalog import Catalog
from catalog.layout import read_build_report, read_recipe
from catalog.records import HUMAN_GENERATOR
from validation.release_data import read_release

# Hub tags per domain of this catalog; a team's own domain is tagged by its id.
DOMAIN_TAGS = {
    "medical": "medical",
    "finance": "finance",
    "law": "legal",
    "psychology": "psychology",
    "consumer": "customer-service",
    "hr": "human-resources",
    "roleplay": "role-play",
}


@dataclass
class CardContext:
    """What the card says beyond the data itself."""

    name: str  # the dataset name: the release folder and the repository name
    version: str
    date: str  # ISO date of the release
    repo_id: str  # what users pass to load_dataset, e.g. "anytasktune/anytasktune"
    license: str = "apache-2.0"
    title: str = "AnyTaskTune"  # the card's heading and pretty name: a team's project names its own
    homepage: str | None = None  # the project's page, linked under the heading
    previous: pl.DataFrame | None = field(default=None, repr=False)  # the previous release's records (id, task)
    previous_version: str | None = None
    previous_history: list[dict[str, Any]] = field(default_factory=list)


def write_card_files(release: Path, catalog: Catalog, context: CardContext) -> str:
    """Render the card and write it with its plots, changelog and LLaMA-Factory metadata into `release`."""
    records = read_release(release, catalog)
    change = sections.changelog_diff(records, context)
    history = write_history(release, change, context.previous_history or read_history(release))
    write_plots(release, records, catalog)
    write_dataset_info(release, catalog)
    text = render_card(release, catalog, context, records=records, change=change, history=history)
    (release / "README.md").write_text(text, encoding="utf-8")
    return text


def render_card(
    release: Path,
    catalog: Catalog,
    context: CardContext,
    *,
    records: pl.DataFrame | None = None,
    change: Change | None = None,
    history: list[dict[str, Any]] | None = None,
) -> str:
    """The README.md text for the release folder (YAML header and Markdown body)."""
    records = read_release(release, catalog) if records is None else records
    change = change or sections.changelog_diff(records, context)
    report = read_build_report(release)
    provenance = summarize(records)
    data = DatasetCardData(
        pretty_name=context.title,
        license=context.license,
        language=catalog.languages,
        multilinguality="multilingual" if len(catalog.languages) > 1 else "monolingual",
        task_categories=task_categories(catalog),
        size_categories=size_category(records.height),
        source_datasets=["original"],
        tags=tags(catalog, records),
        **hub_metadata(release, catalog),
    )
    body = "\n\n".join(
        [
            sections.header(catalog, context, records),
            sections.about(catalog),
            sections.loading(catalog, context),
            sections.task_table(catalog, records),
            sections.statistics(catalog, records),
            sections.human_agreement(catalog, report),
            sections.task_details(catalog, records),
            sections.record_schema(),
            sections.provenance(provenance, report),
            sections.reproduce(context, read_recipe(release), provenance),
            sections.changelog(change, history or []),
            sections.limitations(),
            sections.citation(),
        ]
    )
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")
    return str(card)


def task_categories(catalog: Catalog) -> list[str]:
    """The Hub task categories the catalog's output formats amount to: every task generates its output; label tasks
    also classify."""
    formats = {spec.output.format for spec in catalog}
    return ["text-generation"] + (["text-classification"] if formats & {"label", "labels"} else [])


def tags(catalog: Catalog, records: pl.DataFrame) -> list[str]:
    """Hub tags: the method, the languages, the domains, and `synthetic` when LLM-written records are in."""
    found = ["anytasktune", "instruction-tuning", "alpaca", "sft"]
    found += ["bilingual"] if len(catalog.languages) > 1 else []
    found += [DOMAIN_TAGS.get(domain, domain.replace("_", "-")) for domain in catalog.domains]
    written_by_models = (pl.col("source") == "synth") | (pl.col("generator") != HUMAN_GENERATOR)  # drafted seeds too
    synthetic = records.height > 0 and records.filter(written_by_models).height > 0
    return found + (["synthetic"] if synthetic else [])
