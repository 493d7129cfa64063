"""The project a data folder builds, from `<data folder>/anytasktune.yaml`: release name, card title, Hub repo.

A team's folder names its own project, so its release, card and Hub repo describe its tasks, not this catalog's.
A folder without the file builds under the defaults (this repository's own `anytasktune`).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from catalog.errors import CatalogError, Problem, display_path

PROJECT_FILE = "anytasktune.yaml"


class Project(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="anytasktune", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # build folder, repo name
    title: str = Field(default="AnyTaskTune", min_length=1)  # the card's heading
    hub_repo: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")  # org/name
    license: str = "apache-2.0"
    homepage: str | None = None  # linked from the card


def load_project(data_dir: Path) -> Project:
    """The project of a data folder; raises CatalogError naming the file, line and field of what is wrong."""
    path = data_dir / PROJECT_FILE
    if not path.exists():
        return Project()
    name = display_path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        mark = getattr(err, "problem_mark", None)
        raise CatalogError([Problem(name, mark.line + 1 if mark else None, None, f"not valid YAML: {err}")]) from None
    if raw is None:
        return Project()
    if not isinstance(raw, dict):
        raise CatalogError([Problem(name, 1, None, "the project file must be a YAML mapping")])
    try:
        return Project.model_validate(raw)
    except ValidationError as err:
        problems = [
            Problem(
                name,
                None,
                ".".join(str(p) for p in e["loc"]),
                "unknown field" if e["type"] == "extra_forbidden" else e["msg"],
            )
            for e in err.errors()
        ]
        raise CatalogError(problems) from None
