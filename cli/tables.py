"""Tables for the terminal, in Markdown so they paste into the README and cards unchanged."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import typer


def _width(text: str) -> int:
    # Han characters take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """A pipe table with aligned columns; None shows as an empty cell."""
    if not rows:
        return "(no rows)"
    headers = list(rows[0])
    cells = [[("" if r.get(h) is None else str(r.get(h))) for h in headers] for r in rows]
    widths = [max(_width(h), *(_width(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=True)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def print_table(rows: Sequence[dict[str, Any]], title: str | None = None) -> None:
    if title:
        typer.echo(title)
    typer.echo(markdown_table(rows))
