"""Leakage among the seeds, found before a build does it silently: what `validate` says about the seed files as a whole.

The build compares every record's input with every other's of the same language, across tasks (validation.near_dup),
puts near-twins (Jaccard ≥ GROUP_THRESHOLD) and records sharing a `group` (translations) in one split group, sends a
group with a gold seed to test and quarantines any exemplar in it as a gold leak; of two same-task twins at
NEAR_DUPLICATE_THRESHOLD or more it keeps one. Here the same comparisons run over the seeds alone, so an author
learns which exemplar a gold record leaks into (in which task, by which similarity or group), and which record
repeats another, with both places named, while the fix is still an edit.

Not seen: an undeclared translation (the other language shares no n-gram); declare it with `group`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from catalog.errors import Problem
from validation.keys import dedup_key_expr
from validation.near_dup import (
    GROUP_THRESHOLD,
    NEAR_DUPLICATE_THRESHOLD,
    VERIFY_MARGIN,
    candidate_pairs,
    components,
    exact_jaccard,
)


def seed_leaks(seeds: pl.DataFrame) -> list[Problem]:
    """Problems for the seed records `seeds` (id, task, lang, role, group, input, file, line; every seed file's
    records together): near-duplicates within a task, and exemplars in one split group with a gold record."""
    if seeds.height < 2:
        return []
    frame = seeds.with_columns(dedup_key_expr("input").alias("_key"))
    candidates = candidate_pairs(frame, "_key", GROUP_THRESHOLD - VERIFY_MARGIN)
    left, right = candidates["left"].to_numpy(), candidates["right"].to_numpy()
    similarity = exact_jaccard(frame["_key"], frame["lang"], left, right)
    pairs = candidates.with_columns(similarity=pl.Series(similarity, dtype=pl.Float64)).filter(
        pl.col("similarity") >= GROUP_THRESHOLD
    )
    rows = frame.select("id", "task", "role", "group", "file", "line").to_dicts()
    problems = [
        Problem(
            rows[b]["file"],
            rows[b]["line"],
            "input",
            f"near-duplicate of {_where(rows[a])} (Jaccard {s:.2f}): the build keeps only the first",
            rows[b]["id"],
        )
        for a, b, s in pairs.filter(pl.col("same_task") & (pl.col("similarity") >= NEAR_DUPLICATE_THRESHOLD))
        .select("left", "right", "similarity")
        .iter_rows()
    ]
    return problems + _gold_leaks(frame, pairs, rows)


def _gold_leaks(frame: pl.DataFrame, pairs: pl.DataFrame, rows: list[dict]) -> list[Problem]:
    """Exemplars whose split group (near-twins and `group` mates, transitively) holds a gold record."""
    declared = (
        frame.select("group", pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"))
        .filter(pl.col("group").is_not_null())
        .with_columns(pl.col("row").first().over("group").alias("first"))
    )
    left = np.concatenate([pairs["left"].to_numpy(), declared["first"].to_numpy()])
    right = np.concatenate([pairs["right"].to_numpy(), declared["row"].to_numpy()])
    label = components(frame.height, left, right)
    direct: dict[tuple[int, int], str] = {}
    for a, b, s in pairs.select("left", "right", "similarity").iter_rows():
        direct[(a, b)] = direct[(b, a)] = f"near-twin inputs, Jaccard {s:.2f}"
    gold_of: dict[int, int] = {}
    for row, record in enumerate(rows):
        if record["role"] == "gold":
            gold_of.setdefault(int(label[row]), row)
    problems = []
    for row, record in enumerate(rows):
        gold = gold_of.get(int(label[row]))
        if record["role"] != "exemplar" or gold is None:
            continue
        if (row, gold) in direct:
            how = direct[(row, gold)]
        elif record["group"] is not None and record["group"] == rows[gold]["group"]:
            how = f"both in group {record['group']!r}"
        else:
            how = "linked through other near-twins or group mates"
        reason = (
            f"in one split group with gold {_where(rows[gold])} ({how}): the build would quarantine this exemplar "
            "as a gold leak; rewrite one of them or make both the same role"
        )
        problems.append(Problem(record["file"], record["line"], "input", reason, record["id"]))
    return problems


def _where(record: dict) -> str:
    return f"{record['file']}:{record['line']} ({record['task']}, {record['role']})"
