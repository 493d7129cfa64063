"""`anytasktune release` and `pull`: check the build, render the card, publish to the local registry or the Hub.

The build folder is never changed: the release is staged in a copy beside it, the card rendered there, and the
copy published. Nothing is tagged unless every earlier step succeeded.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from cards import CardContext, write_card_files
from cards.changelog import read_history
from catalog import Catalog
from catalog.errors import Problem, display_path
from catalog.settings import Settings
from publish.hub import HubTarget, hub_tags, publish_to_hub, pull_from_hub
from publish.registry import LocalRegistry
from publish.release_check import check_release
from publish.versions import check_new_version, parse_version
from validation.release_data import read_release

DEFAULT_NAMESPACE = "anytasktune"  # the organisation in repo ids of a shared local registry: <namespace>/<name>
PREVIOUS_FILES = ["data/**", "changelog.json"]


class ReleaseError(RuntimeError):
    """The release was refused or failed; the registry or Hub repo is left without the new tag."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class ReleaseResult:
    version: str
    commit: str
    where: str  # the registry repository, or the Hub repo id at its endpoint
    previous: str | None
    staged: Path
    added: int
    removed: int


@dataclass(frozen=True)
class Destination:
    """Where releases go: a local registry, or a Hub repo when `hub` is set."""

    registry: LocalRegistry
    hub: HubTarget | None = None

    def tags(self, name: str) -> list[str]:
        return hub_tags(self.hub) if self.hub else self.registry.tags(name)

    def describe(self, name: str) -> str:
        return f"{self.hub.repo_id} at {self.hub.endpoint}" if self.hub else display_path(self.registry.repo(name))

    def fetch(self, name: str, version: str, dest: Path, allow: list[str] | None = None) -> None:
        if self.hub:
            pull_from_hub(self.hub, version, dest, allow)
        else:
            self.registry.export(name, version, dest)

    def publish(self, name: str, folder: Path, version: str, message: str) -> str:
        if self.hub:
            return publish_to_hub(self.hub, folder, version, message)
        return self.registry.publish(name, folder, version, message)


def release(
    catalog: Catalog,
    settings: Settings,
    destination: Destination,
    *,
    name: str,
    version: str,
    license: str = "apache-2.0",
    title: str = "AnyTaskTune",
    homepage: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    date: str | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> ReleaseResult:
    """Validate the build, render its card and publish it as `version`; raises ReleaseError when refused."""
    if destination.hub and not destination.hub.token:  # refuse before any work, not after rendering
        raise ReleaseError(
            f"publishing to {destination.hub.repo_id} needs a token: set HF_TOKEN or run `hf auth login`"
        )
    try:
        parse_version(version)
        previous = check_new_version(version, destination.tags(name))
    except ValueError as err:
        raise ReleaseError(f"{destination.describe(name)}: {err}") from None
    build = settings.build_dir / name
    problems = check_release(build, catalog)
    if problems:
        raise ReleaseError(f"{display_path(build)}: the build is not valid, nothing was published", problems)
    say(f"build {display_path(build)} is valid; previous release: {previous or 'none'}")

    staged = settings.build_dir / f".release-{name}"
    if staged.exists():
        shutil.rmtree(staged)
    shutil.copytree(build, staged)
    context = CardContext(
        name=name,
        version=version,
        date=date or dt.date.today().isoformat(),
        repo_id=destination.hub.repo_id if destination.hub else f"{namespace}/{name}",
        license=license,
        title=title,
        homepage=homepage,
        previous_version=previous,
    )
    if previous:
        context.previous, context.previous_history = _previous_release(destination, name, previous, catalog)
    write_card_files(staged, catalog, context)
    say(f"card rendered in {display_path(staged)}; publishing to {destination.describe(name)}")
    message = f"Release {name} {version}"
    commit = destination.publish(name, staged, version, message)
    history = read_history(staged)
    return ReleaseResult(
        version,
        commit,
        destination.describe(name),
        previous,
        staged,
        history[0]["added"] if history else 0,
        history[0]["removed"] if history else 0,
    )


def _previous_release(
    destination: Destination, name: str, version: str, catalog: Catalog
) -> tuple[pl.DataFrame, list[dict]]:
    """The previous release's records (for the changelog diff) and its changelog history."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / version
        destination.fetch(name, version, folder, allow=PREVIOUS_FILES)
        return read_release(folder, catalog).select("id", "task"), read_history(folder)


def pull(destination: Destination, *, name: str, version: str, dest: Path) -> Path:
    """Fetch `version` into `dest`; an existing `dest` is replaced only once the whole download succeeded."""
    parse_version(version)
    if version not in destination.tags(name):
        raise ReleaseError(f"{destination.describe(name)}: no release {version}")
    staging = dest.with_name(f".pull-{dest.name}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        destination.fetch(name, version, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return dest
