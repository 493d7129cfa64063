"""Evaluation: predict each test record of the selected tasks, score it by its task's metric, summarize per task and
language. Predictions are appended as each chunk completes, so an interrupted run resumes where it stopped."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from catalog import Catalog
from training.fingerprint import answer_key
from training.judge import Chat, Judge, grade_score, has_rubric, item_messages, judge_items, judgement_key
from validation.metrics import EXTRA_METRICS, score

Predictor = Callable[[Sequence[tuple[str, str]]], list[str]]
PREDICTIONS_FILE = "predictions.jsonl"
JUDGEMENTS_FILE = "judgements.jsonl"
SCORES_FILE = "scores.json"


@dataclass(frozen=True)
class EvalRun:
    """Who is evaluated: the row name in the matrix and how the predictions were made."""

    name: str
    kind: str  # "base" (a model as published), "adapter" (ours, LoRA applied locally) or "tuned" (served tuned)
    model: str
    adapter: str | None = None
    # What the answers depend on (training.fingerprint.run_fingerprint): a prediction made under another is redone.
    fingerprint: str = ""
    backend: str = "local"  # "local" (generate here) or "endpoint" (an OpenAI-compatible API): not what it is

    @property
    def is_base(self) -> bool:
        return self.kind == "base"


def read_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """Predictions already made, by record id; a line cut short by a crash is ignored (its record is redone)."""
    done: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[row["id"]] = row
    return done


def evaluate(
    catalog: Catalog,
    records: pl.DataFrame,
    predict: Predictor,
    run: EvalRun,
    out_dir: Path,
    chunk_size: int = 32,
    judge: tuple[Judge, Chat] | None = None,
) -> dict[str, Any]:
    """Predict and score `records` (id, task, lang, instruction, input, output); write predictions and scores. With
    a `judge`, the predictions of tasks with a rubric are graded too (training.judge), resumably like predictions."""
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions_path = out_dir / PREDICTIONS_FILE
    done = read_predictions(predictions_path)
    keys = {
        row["id"]: answer_key(run.fingerprint, row["instruction"], row["input"])
        for row in records.select("id", "instruction", "input").iter_rows(named=True)
    }
    # Reused only when made by the same model, adapter, parameters and prompt: a rerun with anything changed asks again.
    done = {i: row for i, row in done.items() if row.get("key") == keys.get(i)}
    todo = [row for row in records.iter_rows(named=True) if row["id"] not in done]
    with predictions_path.open("a", encoding="utf-8") as sink:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            replies = predict([(row["instruction"], row["input"]) for row in chunk])
            for row, reply in zip(chunk, replies, strict=True):
                spec = catalog.get(row["task"])
                scored = {
                    "id": row["id"],
                    "key": keys[row["id"]],
                    "task": row["task"],
                    "lang": row["lang"],
                    "prediction": reply,
                    "reference": row["output"],
                    "score": score(spec, reply, row["output"]),
                }
                for name, extra in EXTRA_METRICS.get(row["task"], {}).items():
                    scored[name] = extra(reply, row["output"])
                sink.write(json.dumps(scored, ensure_ascii=False) + "\n")
                done[row["id"]] = scored
            sink.flush()
    wanted = set(records["id"].to_list())
    if judge is not None:
        graded = judge_predictions(catalog, records, done, judge, out_dir, chunk_size)
        for record_id, grade in graded.items():
            done[record_id] = {**done[record_id], "judge": grade_score(grade), "judge_grade": grade}
    summary = summarize(catalog, [row for key, row in done.items() if key in wanted], run)
    (out_dir / SCORES_FILE).write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary


def judge_predictions(
    catalog: Catalog,
    records: pl.DataFrame,
    done: dict[str, dict[str, Any]],
    judge: tuple[Judge, Chat],
    out_dir: Path,
    chunk_size: int,
) -> dict[str, int | None]:
    """The judge's grade (1-5, None: no grade in its reply) of each prediction of a task with a rubric, by record
    id; judgements already made under
    the same key (judge, prompt, answer) are read back from judgements.jsonl, the rest asked and appended."""
    who, chat = judge
    path = out_dir / JUDGEMENTS_FILE
    made = {}
    for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash: judged again
            continue
        made[row["key"]] = row
    judged = [t.id for t in catalog if has_rubric(t)]
    items = [
        {**r, "reference": r["output"], "answer": done[r["id"]]["prediction"]}
        for r in records.filter(pl.col("task").is_in(judged)).iter_rows(named=True)
        if r["id"] in done
    ]
    scores: dict[str, int | None] = {}
    todo = []
    for item in items:
        key = judgement_key(who, item_messages(catalog.get(item["task"]), item))
        if key in made:
            scores[item["id"]] = made[key]["grade"]
        else:
            todo.append(item)
    with path.open("a", encoding="utf-8") as sink:
        for start in range(0, len(todo), chunk_size):
            for row in judge_items(chat, who, catalog.get, todo[start : start + chunk_size]):
                kept = {k: row[k] for k in ("key", "id", "task", "lang", "grade", "judge", "reply")}
                sink.write(json.dumps(kept, ensure_ascii=False) + "\n")
                scores[row["id"]] = row["grade"]
            sink.flush()
    return scores


def summarize(catalog: Catalog, rows: list[dict[str, Any]], run: EvalRun) -> dict[str, Any]:
    """Mean score per task, overall and per language, with each task's extra figures and every record's score."""
    tasks: dict[str, Any] = {}
    for spec in catalog:
        mine = [r for r in rows if r["task"] == spec.id]
        if not mine:
            continue
        entry: dict[str, Any] = {"code": spec.code, "n": len(mine), "score": _mean(r["score"] for r in mine)}
        for lang in spec.languages:
            of_lang = [r["score"] for r in mine if r["lang"] == lang]
            entry[lang] = _mean(of_lang) if of_lang else None
            entry[f"n_{lang}"] = len(of_lang)
        for name in EXTRA_METRICS.get(spec.id, {}):
            entry[name] = _mean(r[name] for r in mine if name in r)
        # Each record's score, for the matrix's bootstrap intervals and the paired comparison of two runs.
        entry["items"] = sorted([r["id"], r["lang"], r["score"]] for r in mine)
        if judged := [r for r in mine if "judge" in r]:  # beside the metric, never instead of it
            entry["judge"] = _mean(r["judge"] for r in judged)
            entry["judge_failures"] = sum(r["judge_grade"] is None for r in judged)  # scored 0, and counted
            for lang in spec.languages:
                of_lang = [r["judge"] for r in judged if r["lang"] == lang]
                entry[f"judge_{lang}"] = _mean(of_lang) if of_lang else None
            entry["judge_items"] = sorted([r["id"], r["lang"], r["judge"]] for r in judged)
        tasks[spec.id] = entry
    return {
        "name": run.name,
        "kind": run.kind,
        "backend": run.backend,
        "model": run.model,
        "adapter": run.adapter,
        "records": len(rows),
        "tasks": tasks,
    }


def _mean(values: Any) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
