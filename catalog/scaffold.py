"""`anytasktune init`: a new data folder for a team's own tasks, with one worked example task and its seeds.

The folder is written beside its destination and renamed into place, so it exists whole or not at all.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from catalog.errors import display_path
from catalog.project import PROJECT_FILE, Project

TEMPLATES = Path(__file__).parent / "templates"
EXAMPLE_TASK = "desk_request_type"
RUN_CONFIG = "train.yaml"
IGNORED = ("build/", "registry/", "pulled/", "runs/", "drafts/.*.partial/")


class FolderExists(RuntimeError):
    """The destination holds files already: init writes only into a new or empty folder."""


def project_name(folder: Path) -> str:
    """A release name from a folder name: letters, digits, `-`, `_` and `.` only."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).strip("-.") or "tasks"
    return name if name[0].isalnum() else f"tasks-{name}"


def init_folder(target: Path, project: Project, example: bool = True) -> list[Path]:
    """Create the data folder `target`; returns the files written, relative to it."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FolderExists(f"{display_path(target)}: exists and is not empty; init writes only into a new folder")
    staging = target.parent / f".{target.name}.init-partial"
    if staging.exists():
        shutil.rmtree(staging)
    for sub in ("tasks", "seeds", "reviews", "drafts"):
        (staging / sub).mkdir(parents=True)
    (staging / PROJECT_FILE).write_text(_project_yaml(project), encoding="utf-8")
    (staging / RUN_CONFIG).write_text(_run_config(project), encoding="utf-8")
    (staging / ".gitignore").write_text("".join(f"{p}\n" for p in IGNORED), encoding="utf-8")
    (staging / "reviews" / ".gitkeep").write_text("", encoding="utf-8")
    (staging / "drafts" / ".gitkeep").write_text("", encoding="utf-8")
    if example:
        shutil.copyfile(TEMPLATES / f"{EXAMPLE_TASK}.yaml", staging / "tasks" / f"{EXAMPLE_TASK}.yaml")
        shutil.copyfile(TEMPLATES / f"{EXAMPLE_TASK}.jsonl", staging / "seeds" / f"{EXAMPLE_TASK}.jsonl")
    written = sorted(p.relative_to(staging) for p in staging.rglob("*") if p.is_file())
    if target.exists():
        target.rmdir()  # empty, checked above
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    return written


def _project_yaml(project: Project) -> str:
    fields = project.model_dump(exclude_none=True)
    text = yaml.safe_dump(fields, allow_unicode=True, sort_keys=False)
    hub = "" if project.hub_repo else "# hub_repo: your-org/your-dataset   # where `anytasktune release` publishes\n"
    return (
        "# The project this folder builds: its release (build/<name>), the card's title, its Hub repo.\n" + text + hub
    )


def _run_config(project: Project) -> str:
    return (
        "# LoRA fine-tuning on this folder's release (its train split):\n"
        f"#   anytasktune --data-dir <this folder> train --config <this folder>/{RUN_CONFIG}\n"
        "# Without `release:`, the run reads the folder's own build (build/<name>); --model and --max-steps override.\n"
        + yaml.safe_dump(
            {
                "name": project.name,
                "model": "Qwen/Qwen2-0.5B-Instruct",
                "tasks": ["all"],
                "max_length": 2048,
                "epochs": 3,
                "learning_rate": 2.0e-4,
                "micro_batch_size": 4,
                "gradient_accumulation_steps": 4,
                "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
                "output_dir": "runs/train",
            },
            sort_keys=False,
        )
    )
