"""The `anytasktune` commands of the release layer: card, release, pull, serve."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import typer

from catalog import CatalogError, load_catalog
from catalog.errors import display_path
from catalog.project import Project
from catalog.settings import Settings
from cli.common import fail, project_or_exit
from publish.hub import REPO_VARIABLE, HubError, HubTarget
from publish.registry import LocalRegistry, RegistryError, registry_root
from publish.release import DEFAULT_NAMESPACE, Destination, ReleaseError, pull, release
from publish.versions import VersionError

NameOption = Annotated[
    str | None,
    typer.Option(help="Dataset name: the build folder and the repository name. Default: the project's name."),
]
VersionOption = Annotated[str, typer.Option("--version", help="The release tag, vMAJOR.MINOR.PATCH (e.g. v1.0.0).")]
RepoOption = Annotated[
    str | None,
    typer.Option(
        help=f"Hub repo id (org/name). Default: ${REPO_VARIABLE}, else the project's hub_repo; with none, the local "
        "registry is used. "
        "The token comes from HF_TOKEN (or `hf auth login`), the endpoint from HF_ENDPOINT.",
    ),
]
RegistryOption = Annotated[
    Path | None, typer.Option(help="Local registry folder. Default: $ANYTASKTUNE_REGISTRY or <data folder>/registry.")
]
NamespaceOption = Annotated[
    str, typer.Option(help="Organisation shown in repo ids of the local registry (<namespace>/<name>).")
]


def _destination(repo: str | None, registry: Path | None, project: Project) -> Destination:
    repo = repo or os.environ.get(REPO_VARIABLE) or project.hub_repo
    return Destination(LocalRegistry(registry or registry_root()), HubTarget.from_env(repo) if repo else None)


def register(app: typer.Typer) -> None:
    """Add this layer's commands to the `anytasktune` app."""

    @app.command("release")
    def release_command(
        version: VersionOption,
        name: NameOption = None,
        repo: RepoOption = None,
        registry: RegistryOption = None,
        namespace: NamespaceOption = DEFAULT_NAMESPACE,
        license: Annotated[
            str | None, typer.Option(help="License id in the card's YAML. Default: the project's.")
        ] = None,
    ) -> None:
        """Validate the build, render the dataset card and publish it as a tagged release.

        By default a commit and a tag in the local registry (one git repository per dataset); with --repo (or
        $ANYTASKTUNE_HUB_REPO) and a token, an upload to the Hugging Face Hub or the HF_ENDPOINT server. Refuses an
        invalid build, an existing tag, or a version not greater than the last.
        """
        project = project_or_exit()
        name = name or project.name
        try:
            catalog = load_catalog(Settings.from_env().tasks_dir)
            result = release(
                catalog,
                Settings.from_env(),
                _destination(repo, registry, project),
                name=name,
                version=version,
                license=license or project.license,
                title=project.title,
                homepage=project.homepage,
                namespace=namespace,
                date=dt.date.today().isoformat(),
                say=typer.echo,
            )
        except ReleaseError as err:
            for problem in err.problems:
                typer.echo(str(problem), err=True)
            raise fail(f"release refused: {err}") from None
        except (CatalogError, HubError, RegistryError, VersionError) as err:
            raise fail(f"release failed: {err}") from None
        typer.echo(
            f"released {name} {result.version} ({result.commit[:12]}) to {result.where}: "
            f"+{result.added} / -{result.removed} records since {result.previous or 'nothing'}"
        )

    @app.command("pull")
    def pull_command(
        version: VersionOption,
        name: NameOption = None,
        repo: RepoOption = None,
        registry: RegistryOption = None,
        dest: Annotated[
            Path | None,
            typer.Option(help="Folder to write the release into. Default: datasets/pulled/<name>-<version>."),
        ] = None,
    ) -> None:
        """Fetch a release from the local registry (or the Hub with --repo) into a folder that load_dataset reads."""
        project = project_or_exit()
        name = name or project.name
        folder = dest or Settings.from_env().data_dir / "pulled" / f"{name}-{version}"
        try:
            pull(_destination(repo, registry, project), name=name, version=version, dest=folder)
        except (ReleaseError, HubError, RegistryError, VersionError) as err:
            raise fail(f"pull failed: {err}") from None
        typer.echo(f"{name} {version} is in {display_path(folder)}: load_dataset({str(folder)!r}, '<config>')")

    @app.command("serve")
    def serve_command(
        host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for the whole network).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8808,
        registry: RegistryOption = None,
        namespace: NamespaceOption = DEFAULT_NAMESPACE,
    ) -> None:
        """Serve the local registry read-only through a Hub-compatible API.

        Colleagues run HF_ENDPOINT=http://HOST:PORT and load_dataset("<namespace>/<name>", config, revision="v1.0.0").
        """
        from publish.hub_server import RegistryStore, make_server

        store = RegistryStore(LocalRegistry(registry or registry_root()), namespace)
        server = make_server(store, host, port)
        names = ", ".join(f"{namespace}/{n}" for n in store.registry.names()) or "none yet"
        typer.echo(f"serving {display_path(store.registry.root)} at http://{host}:{server.server_port} ({names})")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.server_close()

    @app.command("card")
    def card_command(
        name: NameOption = None,
        version: Annotated[str, typer.Option("--version", help="Version shown in the card.")] = "v0.0.0-preview",
        out: Annotated[
            Path | None, typer.Option(help="Folder for the preview. Default: datasets/build/.card-<name>.")
        ] = None,
        namespace: NamespaceOption = DEFAULT_NAMESPACE,
    ) -> None:
        """Render the dataset card, plots and dataset_info.json of the build into a preview folder (no release)."""
        import shutil

        from cards import CardContext, write_card_files
        from cards.preview import write_preview

        settings = Settings.from_env()
        project = project_or_exit()
        name = name or project.name
        build = settings.build_dir / name
        if not build.is_dir():
            raise fail(f"{display_path(build)}: no build here: run `make datasets` first")
        folder = out or settings.build_dir / f".card-{name}"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(build, folder)
        repo_id = project.hub_repo or f"{namespace}/{name}"
        context = CardContext(
            name,
            version,
            dt.date.today().isoformat(),
            repo_id,
            project.license,
            title=project.title,
            homepage=project.homepage,
        )
        write_card_files(folder, load_catalog(settings.tasks_dir), context)
        page = write_preview(folder, project.title)
        shown = (display_path(folder / "README.md"), display_path(page), display_path(folder / "plots"))
        typer.echo("card: {}  page: {}  plots: {}".format(*shown))
