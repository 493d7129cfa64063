"""The drafts folder: drafted tasks and their candidate seeds wait in `drafts/<id>/` until a person keeps them.

`task.yaml` is the drafted catalog file (a person may edit it), `seeds.jsonl` the candidate seeds, one a line (the
line number is how a person picks them), `draft.json` what was asked and what came back. Keeping moves the task into
`tasks/` and the chosen seeds into `seeds/`, both checked first against the whole catalog, both or neither.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from catalog import Catalog, TaskSpec
from catalog.authoring import task_yaml, write_atomically
from catalog.errors import Problem, display_path
from catalog.loader import load_task_file
from catalog.settings import Settings
from validation.records import validate_files

TASK_FILE, SEEDS_FILE, META_FILE = "task.yaml", "seeds.jsonl", "draft.json"
GOLD_EVERY = 4  # of each language's kept seeds, every fourth is gold (about a quarter, as FORMAT.md asks)


class DraftError(RuntimeError):
    """A draft cannot be written or kept; carries the problems that say why (file, line, field)."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        self.problems = problems or []
        super().__init__(message)


@dataclass(frozen=True)
class Draft:
    task_id: str
    folder: Path
    seeds: list[dict[str, Any]]  # the candidate seeds, in line order (line i + 1 is seeds[i])
    meta: dict[str, Any]


def write_draft(
    settings: Settings, document: dict[str, Any], seeds: list[dict[str, Any]], meta: dict[str, Any]
) -> Path:
    """The draft folder of a task, written whole (beside it, then renamed) or not at all."""
    task_id = document["id"]
    folder = settings.drafts_dir / task_id
    if folder.exists():
        raise DraftError(f"{display_path(folder)}: a draft of {task_id!r} exists already; keep or delete it first")
    staging = settings.drafts_dir / f".{task_id}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    comment = (
        f"Drafted by {meta.get('model', 'an LLM')} from: {' '.join(str(meta.get('description', '')).split())[:300]}\n"
        f"Review it (edit freely), then: anytasktune task keep {task_id} --seeds 1-16"
    )
    (staging / TASK_FILE).write_text(task_yaml(document, comment), encoding="utf-8")
    (staging / SEEDS_FILE).write_text(
        "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in seeds), encoding="utf-8"
    )
    (staging / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    staging.rename(folder)
    return folder


def list_drafts(settings: Settings) -> list[str]:
    root = settings.drafts_dir
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def read_draft(settings: Settings, task_id: str) -> Draft:
    folder = settings.drafts_dir / task_id
    if not (folder / TASK_FILE).is_file():
        known = ", ".join(list_drafts(settings)) or "none"
        raise DraftError(f"{display_path(folder)}: no draft of {task_id!r} (drafts: {known})")
    seeds, problems = [], []
    path = folder / SEEDS_FILE
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    for number, line in enumerate(lines, start=1):
        try:
            seeds.append(json.loads(line))
        except json.JSONDecodeError as err:
            problems.append(Problem(display_path(path), number, None, f"not valid JSON: {err.msg}"))
            seeds.append({})
    if problems:
        raise DraftError(f"{display_path(path)}: unreadable candidate seeds", problems)
    meta_path = folder / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    return Draft(task_id, folder, seeds, meta)


def parse_selection(text: str, count: int) -> list[int]:
    """1-based line numbers from "1-10,12,15": each once, in order; ValueError names what is wrong."""
    chosen: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"{part!r} is not a line number or a range such as 3-7")
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= count:
            raise ValueError(f"{part!r} is outside the draft's {count} candidate seeds")
        chosen.extend(n for n in range(first, last + 1) if n not in chosen)
    if not chosen:
        raise ValueError("no seed chosen")
    return chosen


def keep_draft(
    settings: Settings, catalog: Catalog, task_id: str, lines: list[int], reviewer: str
) -> tuple[Path, Path]:
    """Move a draft into the catalog: its task file into `tasks/`, the chosen seeds (about a quarter of each
    language gold) into `seeds/`. Everything is checked against the whole catalog first; nothing is written
    unless all of it passes."""
    draft = read_draft(settings, task_id)
    spec, problems = load_task_file(draft.folder / TASK_FILE, named_by_id=False)
    if spec is None:
        raise DraftError(f"{display_path(draft.folder / TASK_FILE)}: the drafted task is not valid", problems)
    task_path, seeds_path = settings.tasks_dir / f"{spec.id}.yaml", settings.seeds_dir / f"{spec.id}.jsonl"
    clashes = [
        Problem(display_path(draft.folder / TASK_FILE), None, attribute, f"{attribute} {value!r} is taken by {t.id}")
        for t in catalog
        for attribute, value in (("id", spec.id), ("code", spec.code))
        if getattr(t, attribute) == value
    ]
    if task_path.exists() or seeds_path.exists() or clashes:
        raise DraftError(f"{spec.id}: the catalog has this task already (or its code); nothing was kept", clashes)
    rows = _kept_rows(spec, draft, lines, reviewer)
    merged = Catalog(tuple(sorted((*catalog.tasks, spec), key=lambda t: t.id)))
    staged = settings.seeds_dir / f".{spec.id}.jsonl.partial"  # under seeds/, so it is read as seeds are
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    try:
        report = validate_files([staged], merged, settings.seeds_dir)
    finally:
        staged.unlink()
    if not report.ok:
        where = display_path(draft.folder / SEEDS_FILE)
        found = [
            Problem(where, lines[p.line - 1] if p.line else None, p.field, p.reason, p.record) for p in report.failures
        ]
        raise DraftError(f"{len(found)} problem(s) in the chosen seeds; nothing was kept", found)
    write_atomically(task_path, (draft.folder / TASK_FILE).read_text(encoding="utf-8"))
    try:
        write_atomically(seeds_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    except OSError:
        task_path.unlink()  # both or neither
        raise
    shutil.rmtree(draft.folder)
    return task_path, seeds_path


def _kept_rows(spec: TaskSpec, draft: Draft, lines: list[int], reviewer: str) -> list[dict[str, Any]]:
    rows, per_language = [], dict.fromkeys(spec.languages, 0)
    for number in lines:
        seed = {k: v for k, v in draft.seeds[number - 1].items() if k not in ("id", "role")}
        lang = seed.get("lang")
        position = per_language.get(lang, 0)
        per_language[lang] = position + 1
        provenance = seed.get("provenance") if isinstance(seed.get("provenance"), dict) else {}
        rows.append(
            {
                "task": spec.id,
                **{k: v for k, v in seed.items() if k != "task"},
                # the last of every GOLD_EVERY is gold: a small pick still gets an exemplar first
                "role": "gold" if position % GOLD_EVERY == GOLD_EVERY - 1 else "exemplar",
                "provenance": {**provenance, "kept_by": reviewer, "draft_line": number},
            }
        )
    return rows


def task_summary(path: Path) -> dict[str, Any]:
    """The few fields of a drafted task a person reads first."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    output = raw.get("output") or {}
    return {
        "id": raw.get("id"),
        "code": raw.get("code"),
        "domain": raw.get("domain"),
        "languages": raw.get("languages", ["en", "zh"]),
        "format": output.get("format"),
        "closed_sets": {k: len(v) for k, v in (raw.get("closed_sets") or {}).items()},
    }
