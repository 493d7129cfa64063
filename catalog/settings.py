"""Where things live, from environment variables with defaults relative to the working directory."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_VARIABLE = "ANYTASKTUNE_DATA_DIR"


@dataclass(frozen=True)
class Settings:
    """Paths of the data folder (`ANYTASKTUNE_DATA_DIR`, default `./datasets`) and of what lies under it."""

    data_dir: Path

    @classmethod
    def from_env(cls) -> Settings:
        return cls(data_dir=Path(os.environ.get(DATA_DIR_VARIABLE, "datasets")))

    @property
    def tasks_dir(self) -> Path:
        return self.data_dir / "tasks"

    @property
    def seeds_dir(self) -> Path:
        return self.data_dir / "seeds"

    @property
    def synth_dir(self) -> Path:
        return self.data_dir / "synth"

    @property
    def build_dir(self) -> Path:
        return self.data_dir / "build"

    @property
    def reviews_dir(self) -> Path:
        return self.data_dir / "reviews"

    @property
    def adjudication_dir(self) -> Path:
        """The adjudication log of the gold records (ANNOTATION.md, step 4)."""
        return self.data_dir / "adjudication"

    @property
    def drafts_dir(self) -> Path:
        """Drafted tasks and candidate seeds waiting for a person's review; never read by the build."""
        return self.data_dir / "drafts"
