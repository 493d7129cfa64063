"""Review decisions: a person's verdict on a record, appended to `reviews/*.jsonl` and applied by the build.

One JSON object a line: `record` (the record id), `task`, `lang`, `reviewer`, `time` (ISO 8601), `verdict`
(`accept`, `reject` with a `reason`, or `fix` with the corrected `output`), and an optional `note`. Decisions are
data like the seeds: in git, checked here (a fixed output against its task's schema in its language), never
rewritten; a later decision on the same record supersedes an earlier one (by time, then by file and line).

`annotate` is not a decision but a blind second annotation (ANNOTATION.md): the `output` a reviewer wrote seeing
only the instruction and the input. The build never applies one; the agreement table scores them against the
reference. A reviewer's later annotation of the same record replaces their earlier one in the same blind `round`
(default 1; validation.agreement scores each task's latest round only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from catalog import Catalog
from catalog.errors import Problem
from validation.line_files import parse_time, read_line_files
from validation.outputs import check_output

VERDICTS: tuple[str, ...] = ("accept", "reject", "fix")  # the decisions the build applies
ANNOTATE = "annotate"
ANNOTATION_SCHEMA = {
    "record": pl.String,
    "task": pl.String,
    "lang": pl.String,
    "reviewer": pl.String,
    "time": pl.String,
    "at": pl.Datetime("us", "UTC"),  # `time` read
    "round": pl.Int64,  # the blind round: a task redefined after a round below the bar is annotated afresh
    "output": pl.String,
    "file": pl.String,
    "line": pl.Int64,
}
REQUIRED = ("record", "task", "lang", "reviewer", "time", "verdict")
OPTIONAL = ("reason", "output", "note", "round")
FIRST_ROUND = 1
DECISION_SCHEMA = {
    "record": pl.String,
    "verdict": pl.String,
    "output": pl.String,
    "review": pl.String,  # the decision as compact JSON: what the record's provenance carries
    "detail": pl.String,  # one line for the quarantine: who rejected it, when and why
    "file": pl.String,
    "line": pl.Int64,
}


@dataclass
class Reviews:
    decisions: pl.DataFrame  # the decision in force per record (DECISION_SCHEMA)
    annotations: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ANNOTATION_SCHEMA))
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    lines: int = 0


def read_reviews(folder: Path, catalog: Catalog) -> Reviews:
    """Every valid decision under `folder`, the latest per record, and a problem for each line that is not one."""
    read = read_line_files(folder, lambda line, name, number: parse_decision(line, catalog, name, number))
    reviews = Reviews(pl.DataFrame(schema=DECISION_SCHEMA), problems=read.problems, files=read.files, lines=read.lines)
    ordered = read.entries
    # The last one in time order wins: per record for decisions, per record, reviewer and round for annotations.
    latest = {d["record"]: d for d in ordered if d["verdict"] != ANNOTATE}
    if latest:
        rows = [{k: d.get(k) for k in DECISION_SCHEMA} for d in latest.values()]
        reviews.decisions = pl.DataFrame(rows, schema=DECISION_SCHEMA)
    annotated = {(d["record"], d["reviewer"], d["round"]): d for d in ordered if d["verdict"] == ANNOTATE}
    if annotated:
        rows = [{k: d.get(k) for k in ANNOTATION_SCHEMA} for d in annotated.values()]
        reviews.annotations = pl.DataFrame(rows, schema=ANNOTATION_SCHEMA)
    return reviews


def parse_decision(line: str, catalog: Catalog, name: str, number: int) -> tuple[dict[str, Any] | None, list[Problem]]:
    """One line of a reviews file: the decision (or annotation) it holds, or the problems that make it none.

    The review app runs every line it is about to append through here, so it never writes one the build refuses.
    """

    def problem(field_name: str | None, reason: str, record: str | None = None) -> Problem:
        return Problem(name, number, field_name, reason, record)

    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        return None, [problem(None, f"not valid JSON: {err.msg} at column {err.colno}")]
    if not isinstance(raw, dict):
        return None, [problem(None, "a decision must be a JSON object")]
    record = raw.get("record") if isinstance(raw.get("record"), str) else None
    problems = [problem(k, "missing", record) for k in REQUIRED if k not in raw]
    problems += [problem(k, "unknown field", record) for k in raw if k not in REQUIRED + OPTIONAL]
    problems += [
        problem(k, f"must be a string, not {type(v).__name__}", record)
        for k, v in raw.items()
        if k in REQUIRED + OPTIONAL and k != "round" and not isinstance(v, str)
    ]
    blind_round = raw.get("round", FIRST_ROUND)
    if type(blind_round) is not int or blind_round < FIRST_ROUND:
        problems.append(problem("round", f"must be a whole number from {FIRST_ROUND}, not {blind_round!r}", record))
    elif "round" in raw and raw.get("verdict") != ANNOTATE:
        problems.append(problem("round", "only an annotation belongs to a blind round", record))
    if problems:
        return None, problems
    verdict, task, lang = raw["verdict"], raw["task"], raw["lang"]
    if verdict not in (*VERDICTS, ANNOTATE):
        problems.append(problem("verdict", f"{verdict!r} is not one of {', '.join((*VERDICTS, ANNOTATE))}", record))
    if (when := parse_time(raw["time"])) is None:
        problems.append(problem("time", f"{raw['time']!r} is not an ISO 8601 time", record))
    if task not in catalog:
        problems.append(problem("task", f"unknown task {task!r}", record))
    elif lang not in catalog.get(task).languages:
        problems.append(problem("lang", f"task {task} is not written in {lang!r}", record))
    elif verdict in ("fix", ANNOTATE):
        if "output" not in raw:
            needs = "a fix needs the corrected output" if verdict == "fix" else "an annotation needs its output"
            problems.append(problem("output", needs, record))
        else:
            problems += [
                problem(f"output{'.' + e.field if e.field else ''}", e.reason, record)
                for e in check_output(catalog.get(task), lang, raw["output"])
            ]
    if verdict == "reject" and not raw.get("reason", "").strip():
        problems.append(problem("reason", "a rejection needs a reason", record))
    if problems or when is None:
        return None, problems
    review = {k: raw[k] for k in ("reviewer", "time", "verdict", "reason", "note") if k in raw}
    return {
        "record": record,
        "verdict": verdict,
        "task": task,
        "lang": lang,
        "reviewer": raw["reviewer"],
        "time": raw["time"],
        "output": raw.get("output") if verdict in ("fix", ANNOTATE) else None,
        "round": blind_round,
        "at": when,
        "review": json.dumps(review, ensure_ascii=False, separators=(",", ":")),
        "detail": f"rejected by {raw['reviewer']} at {raw['time']}: {raw.get('reason', '')}",
        "file": name,
        "line": number,
        "_when": when,
    }, []
