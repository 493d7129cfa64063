"""The build's README: the Hub YAML header (`configs`, `dataset_info`, from `cards`) over a short body."""

from __future__ import annotations

from pathlib import Path

import yaml

from cards.hub_yaml import hub_metadata
from catalog import Catalog
from catalog.spec import LANG_NAMES


def write_release_readme(release: Path, catalog: Catalog, name: str) -> None:
    """A README.md with the Hub YAML header and a short body; the full dataset card is rendered by `cards`."""
    header = {
        "pretty_name": "AnyTaskTune",
        "language": catalog.languages,
        **hub_metadata(release, catalog),
    }
    languages = " and ".join(LANG_NAMES[lang] for lang in catalog.languages)
    body = (
        f"# {name}\n\nExplicit instruction datasets ({languages}) for {len(catalog)} domain sub-tasks, built by "
        "AnyTaskTune. One config per task, one per domain, and `all`; each holds its languages in a `lang` column "
        "and the splits train, validation and test.\n"
    )
    text = "---\n" + yaml.safe_dump(header, allow_unicode=True, sort_keys=False, width=1000) + "---\n\n" + body
    (release / "README.md").write_text(text, encoding="utf-8")
