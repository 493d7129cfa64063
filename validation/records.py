"""Read record files (seed or synthesized JSONL) and check every record against the catalog."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import polars as pl

from catalog import Catalog
from catalog.errors import Problem, display_path
from catalog.records import HUMAN_GENERATOR, RECORD_COLUMNS, compact_json, record_id
from validation.language import language_problem
from validation.outputs import check_output, output_texts
from validation.report import Report

REQUIRED_FIELDS = ("task", "lang", "instruction", "input", "output")
# `group` ties a record to its translation (or any record it must share a split with), across languages and tasks.
OPTIONAL_FIELDS = ("id", "domain", "source", "generator", "provenance", "role", "scenario", "group")
_REQUIRED, _ALLOWED = frozenset(REQUIRED_FIELDS), frozenset(REQUIRED_FIELDS + OPTIONAL_FIELDS)
FRAME_COLUMNS = (*RECORD_COLUMNS, "role", "group", "file", "line")
FRAME_SCHEMA = {c: (pl.Int64 if c == "line" else pl.String) for c in FRAME_COLUMNS}


@dataclass
class RecordFile:
    """The records of one file that could be read, as a frame in the record contract, and the lines that could not."""

    frame: pl.DataFrame
    problems: list[Problem]
    # Claims a file outside the seeds folder may not make (`source: seed`, a seed role): overridden, and listed here.
    overridden: list[Problem] = dataclass_field(default_factory=list)


def read_record_file(path: Path, catalog: Catalog, *, trusted: bool = True) -> RecordFile:
    """Each JSONL line as a full record: ids derived, seed defaults filled; unreadable lines become problems.

    `trusted` is for files under the seeds folder: only they may carry `source: seed` and a seed role. Any other
    file's records are synthesized whatever their lines claim, and each overridden claim is listed.
    """
    chunks = list(iter_record_chunks(path, catalog, trusted=trusted))
    return RecordFile(
        pl.concat([c.frame for c in chunks]),
        [p for c in chunks for p in c.problems],
        [p for c in chunks for p in c.overridden],
    )


def iter_record_chunks(
    path: Path, catalog: Catalog, *, trusted: bool = True, lines_per_chunk: int | None = None
) -> Iterator[RecordFile]:
    """`read_record_file` a chunk of lines at a time (all lines in one chunk when `lines_per_chunk` is None), so a
    large store is never in memory whole; a file always yields at least one chunk."""
    name = display_path(path)
    problems: list[Problem] = []
    overridden: list[Problem] = []
    columns: dict[str, list[Any]] = {c: [] for c in FRAME_COLUMNS}  # columnar: far cheaper than a dict a row
    yielded = False
    with path.open("rb") as lines:  # a line at a time: a large store never sits in memory twice
        for number, raw in enumerate(lines, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a BOM an editor wrote: not part of the record
                raw = raw[3:]
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                problems.append(Problem(name, number, None, f"not UTF-8 text ({err.reason} at byte {err.start})"))
                continue
            if line.strip():
                row, found = _complete(line, catalog, name, number, trusted)
                if row is not None and not trusted:
                    row, claims = _distrust(row, name, number)
                    overridden.extend(claims)
                problems.extend(found)
                if row is not None:
                    for column, value in row.items():
                        columns[column].append(value)
            if lines_per_chunk and number % lines_per_chunk == 0:
                yield RecordFile(pl.DataFrame(columns, schema=FRAME_SCHEMA), problems, overridden)
                yielded = True
                problems, overridden = [], []
                columns = {c: [] for c in FRAME_COLUMNS}
    if not yielded or columns["id"] or problems or overridden:
        yield RecordFile(pl.DataFrame(columns, schema=FRAME_SCHEMA), problems, overridden)


def _distrust(row: dict[str, Any], name: str, number: int) -> tuple[dict[str, Any], list[Problem]]:
    """A record from outside the seeds folder, as what it is: synthesized, with no seed role."""
    claims = []
    if row["source"] == "seed":
        claims.append(Problem(name, number, "source", "'seed' is only for files under the seeds folder: read as synth"))
    if row["role"] is not None:
        claims.append(Problem(name, number, "role", f"{row['role']!r} is only for seed files: dropped"))
    if not claims:
        return row, []
    generator = row["generator"] if row["generator"] != HUMAN_GENERATOR else ""
    return {**row, "source": "synth", "role": None, "generator": generator or "unknown"}, claims


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _unpaired_surrogate(value: str) -> int | None:
    """Where a lone UTF-16 surrogate sits in a decoded JSON string (`"\\ud83d"` alone), or None when there is none."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        return err.start
    return None


def _complete(
    line: str, catalog: Catalog, name: str, number: int, trusted: bool = True
) -> tuple[dict[str, Any] | None, list[Problem]]:
    def problem(field: str | None, reason: str) -> Problem:
        return Problem(name, number, field, reason)

    try:
        raw = json.loads(line)
    except json.JSONDecodeError as err:
        return None, [problem(None, f"not valid JSON: {err.msg} at column {err.colno}")]
    if not isinstance(raw, dict):
        return None, [problem(None, f"a record must be a JSON object, not {type(raw).__name__}")]
    problems = []
    if not (raw.keys() <= _ALLOWED and raw.keys() >= _REQUIRED):
        problems += [problem(key, "unknown field") for key in raw if key not in _ALLOWED]
        problems += [problem(key, "missing") for key in REQUIRED_FIELDS if key not in raw]
    problems += [
        problem(key, f"must be a string, not {type(value).__name__}")
        for key, value in raw.items()
        if value is not None and not isinstance(value, str) and key != "provenance"
    ]
    # JSON may spell a lone surrogate, which no UTF-8 text (or Parquet) can hold. Only an escape can (UTF-8 text
    # cannot carry one), so lines without a surrogate escape skip the per-field check.
    for key, value in raw.items() if "\\u" in line and _SURROGATE_ESCAPE.search(line) else ():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if (at := _unpaired_surrogate(text)) is not None:
            problems.append(problem(key, f"a lone surrogate \\u{ord(text[at]):04x} at character {at}: not valid text"))
    if problems:
        return None, problems
    if raw["task"] not in catalog:
        return None, [problem("task", f"unknown task {raw['task']!r}")]

    spec = catalog.get(raw["task"])
    derived = record_id(raw["task"], raw["lang"], raw["input"])
    if raw.get("id") not in (None, derived):
        problems.append(problem("id", f"{raw['id']!r} is not the id derived from task, lang and input ({derived})"))
    source = raw.get("source") or ("seed" if trusted else "synth")  # a line that says nothing is what its file is
    provenance = raw.get("provenance")
    if provenance is None:
        provenance = compact_json({"scenario": raw["scenario"]} if raw.get("scenario") else {})
    elif isinstance(provenance, dict):
        provenance = compact_json(provenance)
    if source == "seed" and trusted and raw.get("role") is None:
        problems.append(problem("role", "a seed record needs a role (exemplar or gold)"))
    row = {
        "id": derived,
        "task": raw["task"],
        "domain": raw.get("domain") or spec.domain,
        "lang": raw["lang"],
        "instruction": raw["instruction"],
        "input": raw["input"],
        "output": raw["output"],
        "source": source,
        "generator": raw.get("generator") or (HUMAN_GENERATOR if source == "seed" else ""),
        "provenance": provenance,
        "role": raw.get("role"),
        "group": raw.get("group"),
        "file": name,
        "line": number,
    }
    return row, problems


def check_frame(
    frame: pl.DataFrame, catalog: Catalog, *, duplicates: bool = True, languages: bool = True
) -> list[Problem]:
    """Every problem of the records in `frame`: the pandera schema first, then each task's own contract.

    The build checks duplicates and languages in its own vectorised steps and turns those two off here.
    """
    # Imported here: pandera brings pandas (~180 MB), which reading records and checking one record never need.
    import pandera.polars as pa

    from validation.schema import DOMAIN_CHECK, record_schema

    problems: list[Problem] = []
    broken: set[int] = set()
    try:
        record_schema(catalog, unique_ids=duplicates).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        for case in err.failure_cases.iter_rows(named=True):
            index = case["index"]
            if index is None:
                continue
            row = frame.row(index, named=True)
            broken.add(index)
            if case["check"] == DOMAIN_CHECK:  # a frame-wide check: name the field, not the whole row
                expected = catalog.get(row["task"]).domain if row["task"] in catalog else "?"
                reason = f"{row['domain']!r} is not the domain of task {row['task']} ({expected!r})"
                problems.append(Problem(row["file"], row["line"], "domain", reason, row["id"]))
                continue
            problems.append(
                Problem(
                    row["file"], row["line"], case["column"] or "record", _pandera_reason(case, frame, index), row["id"]
                )
            )
    first_line: dict[str, int] = {}
    needed = frame.select("id", "task", "lang", "instruction", "input", "output", "file", "line")
    for index, row in enumerate(needed.iter_rows(named=True)):
        if duplicates and row["id"] in first_line and first_line[row["id"]] != row["line"]:
            problems.append(
                Problem(row["file"], row["line"], "input", f"same input as line {first_line[row['id']]}", row["id"])
            )
        first_line.setdefault(row["id"], row["line"])
        if index not in broken:
            problems.extend(
                Problem(row["file"], row["line"], field, reason, row["id"])
                for field, reason in check_record(row, catalog, languages)
            )
    return problems


def check_record(row: dict[str, Any], catalog: Catalog, languages: bool = True) -> list[tuple[str, str]]:
    """(field, reason) for each way one schema-valid record breaks its task's contract."""
    spec = catalog.get(row["task"])
    lang = row["lang"]
    if lang not in spec.languages:  # nothing else of the task's contract exists in this language
        return [("lang", f"task {spec.id} is written in {', '.join(spec.languages)} only, not {lang}")]
    found: list[tuple[str, str]] = []
    if not catalog.allows_instruction(spec.id, lang, row["instruction"]):
        found.append(("instruction", f"not one of the {lang} instructions of task {spec.id}"))
    for field in ("instruction", "input") if languages else ():
        if reason := language_problem(row[field], lang):
            found.append((field, reason))
    output_problems = check_output(spec, lang, row["output"])
    found.extend((p.field, p.reason) for p in output_problems)
    if (
        languages
        and not output_problems
        and (reason := language_problem("\n".join(output_texts(spec, row["output"])), lang))
    ):
        found.append(("output", reason))
    return found


def _pandera_reason(case: dict[str, Any], frame: pl.DataFrame, index: int) -> str:
    check = case["check"] or ""
    if check.startswith("field_uniqueness") or "uniqueness" in check:
        return "duplicate id (the same task, language and input appear twice)"
    value = frame[case["column"]][index] if case["column"] in frame.columns else case["failure_case"]
    return f"{value!r} fails {check}"


def record_files(paths: Iterable[Path]) -> list[Path]:
    """JSONL files named directly or found under the folders given."""
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.rglob("*.jsonl")) if path.is_dir() else [path])
    return found


def is_trusted(path: Path, seeds_dir: Path) -> bool:
    """Only files under the seeds folder may carry `source: seed` and seed roles."""
    return path.resolve().is_relative_to(seeds_dir.resolve())


def validate_files(paths: Iterable[Path], catalog: Catalog, seeds_dir: Path) -> Report:
    """Read and check each record file, then the seed files together for leakage (validation.leakage); one report
    for all of them."""
    from validation.leakage import seed_leaks  # near_dup brings NumPy's hashing: only validate needs it here

    report = Report()
    seeds = []
    for path in record_files(paths):
        trusted = is_trusted(path, seeds_dir)
        loaded = read_record_file(path, catalog, trusted=trusted)
        report.files += 1
        report.records += loaded.frame.height + len({(p.file, p.line) for p in loaded.problems})
        report.failures.extend(loaded.problems)
        report.failures.extend(loaded.overridden)
        report.failures.extend(check_frame(loaded.frame, catalog))
        if trusted:
            seeds.append(loaded.frame)
    if seeds:  # across the seed files: a gold record leaks into another task's exemplar as easily as its own
        report.failures.extend(seed_leaks(pl.concat(seeds)))
    return report
