"""What every command module needs: the data folder's settings, catalog and project, and one way to fail."""

from __future__ import annotations

import typer

from catalog import Catalog, CatalogError, load_catalog
from catalog.project import Project, load_project
from catalog.settings import Settings


def fail(message: str) -> typer.Exit:
    """Print `message` on stderr and return the exit to raise (status 1)."""
    typer.echo(message, err=True)
    return typer.Exit(1)


def settings() -> Settings:
    return Settings.from_env()


def catalog_or_exit() -> Catalog:
    try:
        return load_catalog(settings().tasks_dir)
    except CatalogError as err:
        raise fail(str(err)) from None


def project_or_exit() -> Project:
    try:
        return load_project(settings().data_dir)
    except CatalogError as err:
        raise fail(str(err)) from None


def split_values(values: list[str] | None, default: list[str]) -> list[str]:
    """Values given as repeated flags, comma-separated, or both."""
    if not values:
        return default
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
