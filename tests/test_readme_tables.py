"""The README shows what `anytasktune seeds stats` and `anytasktune agreement` print for the repository's data
(`make readme-tables` rewrites them)."""

from __future__ import annotations

from docs.readme_tables import rendered
from tests.conftest import DATA, REPO


def test_the_readme_tables_are_current() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert rendered(readme, DATA) == readme, "run `make readme-tables`"
