"""Rewrite the README's generated tables from the repository's files: `anytasktune seeds stats` between the
seeds-stats markers and `anytasktune agreement` between the agreement markers. `make readme-tables` runs it;
tests/test_readme_tables.py fails when the README no longer shows what the commands print."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from typer.testing import CliRunner

from catalog.settings import DATA_DIR_VARIABLE

REPO = Path(__file__).resolve().parent.parent
BLOCKS = {"seeds-stats": ["seeds", "stats"], "agreement": ["agreement"]}


def command_output(args: list[str], data_dir: Path) -> str:
    from cli.main import app

    result = CliRunner().invoke(app, args, env={DATA_DIR_VARIABLE: str(data_dir)})
    if result.exit_code != 0:
        raise SystemExit(f"anytasktune {' '.join(args)} failed: {result.output}")
    return "".join(line for line in result.stdout.splitlines(keepends=True) if "--open lists them" not in line)


def rendered(readme: str, data_dir: Path) -> str:
    """The README with every generated block replaced by the command's current output."""
    for name, args in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.DOTALL)
        block = "```\n" + command_output(args, data_dir).rstrip("\n") + "\n```\n"
        readme, found = pattern.subn(lambda m, b=block: m.group(1) + b + m.group(2), readme)
        if found != 1:
            raise SystemExit(f"README.md: expected one {name} block, found {found}")
    return readme


def main() -> None:
    path = REPO / "README.md"
    path.write_text(rendered(path.read_text(encoding="utf-8"), REPO / "datasets"), encoding="utf-8")
    print(f"rewrote {', '.join(BLOCKS)} in {path.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
