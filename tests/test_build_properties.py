"""The build's invariants on a generated store of ~20,000 records with every kind of injected defect.

The store comes from bench/build_data.py (the benchmark's generator, at a smaller size) and the invariants are
measured from the outside by bench/build_checks.py, which reads the release and the quarantine as any reader would
and finds leaks with another library's MinHash (datasketch) and exact verification. The checker itself is tested
first, on hand-built release folders whose answers are known, and the generator on the truth it reports.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from bench import build_checks as checks
from bench.build_data import build_pools, exact_copy, fresh_records, generate_shard, near_copy, write_store
from catalog import Catalog
from catalog.records import RECORD_COLUMNS, record_id
from catalog.settings import Settings
from tests.conftest import DATA, sample_seeds

STORE_LINES = 20_000
PER_FILE = 10_000  # two shards, so some twins sit in another file than their original


# --- the checker, on hand-built releases ----------------------------------------------------------------------


def test_similarities_by_hand() -> None:
    assert checks.ngrams("abcdef", 5) == {"abcde", "bcdef"}
    assert checks.ngrams("abc", 5) == {"abc"}  # shorter than n: the text itself
    assert checks.jaccard(checks.ngrams("abcdef", 5), checks.ngrams("abcdeg", 5)) == pytest.approx(1 / 3)
    # The leak key folds width, case and whitespace, and nothing else.
    assert checks.leak_key("  ＡＢＣ  Def\tghi ") == "abc def ghi"
    assert checks.leak_similarity("Refund  my ORDER", "refund my order") == 1.0
    assert checks.leak_similarity("refund my order", "refund my orders") < 1.0
    assert checks.build_similarity("银行卡丢了", "银行卡丢了", "zh") == 1.0


def _write_release(data_dir: Path, rows: list[dict[str, Any]], quarantine: list[dict[str, Any]]) -> None:
    release = data_dir / "build" / "anytasktune" / "data"
    frame = pl.DataFrame(
        [{c: r.get(c, "") for c in RECORD_COLUMNS} | {"split": r["split"]} for r in rows],
        schema={**dict.fromkeys(RECORD_COLUMNS, pl.String), "split": pl.String},
    )
    for (task, split), part in frame.group_by("task", "split"):
        path = release / str(task) / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.drop("split").write_parquet(path)
    q = data_dir / "build" / "_quarantine" / "anytasktune.jsonl"
    q.parent.mkdir(parents=True, exist_ok=True)
    q.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in quarantine), encoding="utf-8")


def _row(task: str, lang: str, text: str, split: str) -> dict[str, Any]:
    return {"id": record_id(task, lang, text), "task": task, "lang": lang, "input": text, "split": split}


BASE = "The replacement card arrived broken and the branch refused to swap it without a new fee."
UNRELATED = [
    "Quarterly revenue at the northern mill rose on strong timber prices and a weaker currency.",
    "My landlord kept the whole deposit for a stain that was there when I moved in last spring.",
    "Since the new manager came, nobody in our team gets feedback on anything except mistakes.",
    "Patient reports chest tightness on stairs for two weeks, worse in cold air, no fever.",
    "I was charged twice for the same insurance premium and the app shows only one payment.",
    "He keeps telling me I overreact, and now I wonder whether every feeling I have is wrong.",
]


@pytest.fixture
def hand_built(tmp_path: Path) -> Path:
    """A release whose answers are known: two leaks, one chain, one dissimilar twin, a gold seed out of test."""
    data_dir = tmp_path / "datasets"
    (data_dir / "seeds").mkdir(parents=True)
    gold_in, gold_out = "The gold record about a frozen account.", "A second gold record, about a lost card."
    seeds = [
        {"task": "fin_intent", "lang": "en", "role": "gold", "input": gold_in, "output": "x", "instruction": "i"},
        {"task": "fin_intent", "lang": "en", "role": "gold", "input": gold_out, "output": "x", "instruction": "i"},
        {
            "task": "fin_intent",
            "lang": "en",
            "role": "exemplar",
            "input": "exemplar",
            "output": "x",
            "instruction": "i",
        },
    ]
    (data_dir / "seeds" / "fin_intent.jsonl").write_text("".join(json.dumps(s) + "\n" for s in seeds))
    edited = BASE.replace("broken", "bent")  # one word: a near-twin by 5-grams
    assert checks.leak_similarity(BASE, edited) >= checks.LEAK_THRESHOLD  # the case holds what it claims
    rows = [
        _row("fin_intent", "en", gold_in, "test"),
        _row("fin_intent", "en", gold_out, "train"),  # gold outside test
        _row("fin_intent", "en", BASE, "train"),
        _row("fin_intent", "en", edited, "test"),  # leak 1: near-twin in train, same task
        _row("con_complaint_routing", "en", UNRELATED[0], "test"),
        _row("fin_news_sentiment", "en", UNRELATED[0], "validation"),  # leak 2: the same text under another task
        _row("fin_intent", "zh", "银行卡丢了，请帮我挂失，谢谢。", "test"),
        _row("fin_intent", "zh", "我想查询一下信用卡的账单。", "train"),  # no leak: unrelated
    ]
    rows += [_row("fin_intent", "en", text, "train") for text in UNRELATED[1:]]
    kept = rows[2]
    chain_mid = BASE.replace("branch", "bank")
    quarantine = [
        # good: the twin is published and ≥ 0.7 by the build's definition
        {"reason": "near_duplicate", "file": "datasets/synth/bench-0000.jsonl", "line": 3, "id": "n1",
         "lang": "en", "input": BASE.replace("fee", "fees"), "twin": kept["id"], "similarity": 0.9},
        # chain: the twin was itself dropped
        {"reason": "near_duplicate", "file": "datasets/synth/bench-0000.jsonl", "line": 4, "id": "n2",
         "lang": "en", "input": chain_mid, "twin": "n1", "similarity": 0.8},
        # the twin is published but not a near-twin
        {"reason": "near_duplicate", "file": "datasets/synth/bench-0000.jsonl", "line": 5, "id": "n3",
         "lang": "en", "input": UNRELATED[2], "twin": kept["id"], "similarity": 0.71},
        # no twin named
        {"reason": "near_duplicate", "file": "datasets/synth/bench-0000.jsonl", "line": 6, "id": "n4",
         "lang": "en", "input": BASE, "twin": None, "similarity": None},
        {"reason": "pii", "file": "datasets/synth/bench-0000.jsonl", "line": 7, "id": "p1", "lang": "en",
         "input": "call me", "twin": None, "similarity": None},
    ]  # fmt: skip
    _write_release(data_dir, rows, quarantine)
    return data_dir


def test_checker_on_a_hand_built_release(hand_built: Path) -> None:
    built = checks.load_build(hand_built)
    assert built.records.height == 13 and built.quarantine.height == 5
    assert checks.gold_in_test(built).value == 0.5  # one of the two gold seeds is in train

    shares = checks.split_shares(built)  # 11 non-gold records: 3 test, 1 validation
    assert shares["test"].value == pytest.approx(3 / 11) and shares["validation"].value == pytest.approx(1 / 11)

    precision = checks.near_duplicate_precision(built)
    assert (precision.value, precision.over, precision.failures) == (0.25, 4, 3)
    assert sorted(e["why"].split(":")[0].split(" ")[0] for e in precision.examples) == ["chain", "no", "similarity"]

    at = checks.quarantined(built, [("bench-0000", 7), ("bench-0000", 8)], ("pii",))
    assert (at.value, at.failures) == (0.5, 1)
    assert checks.falsely_quarantined(built, [("bench-0000", 7), ("bench-0000", 9)], ("pii",)).value == 1
    chains = checks.chains_resolved(built, [(("bench-0000", 1), ("bench-0000", 3), ("bench-0000", 2))])
    assert chains.value == 1.0  # A and C kept, B dropped as a near-duplicate
    broken = checks.chains_resolved(built, [(("bench-0000", 1), ("bench-0000", 2), ("bench-0000", 3))])
    assert broken.value == 0.0  # C dropped

    ids = {(r["task"], r["input"]): r["id"] for r in built.records.iter_rows(named=True)}
    base, edited = ids[("fin_intent", BASE)], ids[("fin_intent", BASE.replace("broken", "bent"))]
    together = [base, ids[("fin_intent", UNRELATED[1])]]  # both in train
    half_absent = [ids[("fin_intent", "The gold record about a frozen account.")], "not-published"]
    assert checks.groups_split_apart(built, [together, half_absent]).value == 0
    assert checks.groups_split_apart(built, [together, [base, edited]]).value == 1


@pytest.mark.parametrize("backend", ["datasketch", "rensa"])
def test_leakage_finds_exactly_the_known_leaks(hand_built: Path, backend: str) -> None:
    if backend == "rensa":
        pytest.importorskip("rensa")
    leaks = checks.leakage(checks.load_build(hand_built), backend)
    assert leaks.value == 2, leaks.describe()
    assert {(e["test_task"], e["twin_task"]) for e in leaks.examples} == {
        ("fin_intent", "fin_intent"),
        ("con_complaint_routing", "fin_news_sentiment"),
    }


def test_leakage_lsh_misses_nothing_a_brute_force_finds(tmp_path: Path, catalog: Catalog) -> None:
    """On 1,500 generated records with near-copies spread over the splits, LSH + verification = all pairs."""
    pools = build_pools(catalog, DATA / "seeds")
    rng = np.random.default_rng(3)
    records = fresh_records(pools, rng, 1_200)
    for source in records[:300]:
        made = near_copy(source["input"], source["lang"], rng, 0.6, 0.95)
        if made:
            records.append({**source, "input": made[0]})
    rows = [
        _row(r["task"], r["lang"], r["input"], ("train", "validation", "test")[int(k)])
        for r, k in zip(records, rng.integers(0, 3, size=len(records)), strict=True)
    ]
    rows = list({r["id"]: r for r in rows}.values())
    _write_release(tmp_path, rows, [])
    (tmp_path / "seeds").mkdir()
    built = checks.load_build(tmp_path)
    grams = {r["id"]: checks.ngrams(checks.leak_key(r["input"]), checks.LEAK_NGRAM) for r in rows}
    test = [r for r in rows if r["split"] == "test"]
    others = [r for r in rows if r["split"] != "test"]
    expected = {
        t["id"]
        for t in test
        if any(o["lang"] == t["lang"] and checks.jaccard(grams[t["id"]], grams[o["id"]]) >= 0.6 for o in others)
    }
    assert len(expected) > 20  # the case has leaks to find
    assert checks.leakage(built, "datasketch").value == len(expected)
    try:
        import rensa  # noqa: F401 - the benchmark's backend, in the bench extra
    except ModuleNotFoundError:
        return
    assert checks.leakage(built, "rensa").value == len(expected)


# --- the generator, on its own truth ------------------------------------------------------------------------------


def test_generator_truth_holds(catalog: Catalog) -> None:
    pools = build_pools(catalog, DATA / "seeds")
    lines, truth = generate_shard(pools, seed=5, shard=1, size=6_000, has_next=True)
    assert generate_shard(pools, seed=5, shard=1, size=6_000, has_next=True)[0] == lines  # deterministic
    assert len(lines) == truth.lines and truth.records == truth.lines - len(truth.unreadable)
    unreadable = {ref[1] for ref in truth.unreadable}
    rows = {n: json.loads(text) for n, text in enumerate(lines, start=1) if n not in unreadable}

    def text(ref: tuple[str, int, str]) -> str:
        return rows[ref[1]]["input"]

    for original, copy in truth.exact:
        if original[1]:  # carried in from the previous shard when 0
            assert original[2] == copy[2] and text(original) != text(copy)
    for original, copy, score in truth.near:
        assert 0.75 <= score <= 0.95 and original[2] != copy[2]
        if original[1]:
            assert checks.build_similarity(text(original), text(copy), rows[copy[1]]["lang"]) == pytest.approx(
                score, abs=1e-4
            )
    for a, b, c in truth.chains:
        lang = rows[a[1]]["lang"]
        assert checks.build_similarity(text(a), text(b), lang) >= 0.74
        assert checks.build_similarity(text(b), text(c), lang) >= 0.74
        assert checks.build_similarity(text(a), text(c), lang) < 0.66
    for en, zh in truth.translations:
        assert rows[en[1]]["group"] == rows[zh[1]]["group"] and (rows[en[1]]["lang"], rows[zh[1]]["lang"]) == (
            "en",
            "zh",
        )
    for original, copy in truth.cross_task:
        assert text(original) == text(copy) and rows[original[1]]["task"] != rows[copy[1]]["task"]
    from stdnum.cn import ric

    ids = [m for ref in truth.pii["cn_id"] for m in re.findall(r"\d{17}[\dX]", text(ref))]
    assert len(ids) == len(truth.pii["cn_id"]) and all(ric.is_valid(number) for number in ids)
    for ref in truth.wrong_language:
        row = rows[ref[1]]
        assert row["instruction"] in catalog.get(row["task"]).instructions_for(row["lang"])
    # Every record's instruction is one of its task's, and unrelated records are far apart.
    assert all(r["instruction"] in catalog.get(r["task"]).instructions_for(r["lang"]) for r in rows.values())
    plain = fresh_records(pools, np.random.default_rng(9), 4_000)
    by_template: dict[str, list[str]] = {}
    for r in plain:
        by_template.setdefault(r["provenance"]["exemplar"], []).append(r["input"])
    worst = max(checks.leak_similarity(a, b) for texts in by_template.values() for a, b in itertools.pairwise(texts))
    assert worst < 0.4, worst
    assert exact_copy("Refund me", np.random.default_rng(0)) != "Refund me"


# --- the build, on a generated store -------------------------------------------------------------------------------


FIGURES = (
    "gold_in_test",
    "test_share",
    "validation_share",
    "leakage",
    "translations_split",
    "cross_task_split",
    "gold_copies_outside_test",
    "near_dup_precision",
    "near_dup_recall",
    "exact_dup_recall",
    "chains_resolved",
    "pii_recall_cn_id",
    "pii_recall_email",
    "pii_recall_phone",
    "wrong_language_recall",
    "decoys_dropped_as_pii",
    "unreadable_quarantined",
    "plain_records_dropped",
    "lines_unaccounted",
)
Store = tuple[checks.Built, Any, list[list[str]], Path]  # what the build left, the truth, the groups, the data dir


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Store:
    """A generated store of 20,000 lines, built in process: what the build left, and the generator's truth."""
    from pipeline.build import build

    data_dir = tmp_path_factory.mktemp("properties") / "datasets"
    shutil.copytree(DATA / "tasks", data_dir / "tasks")
    shutil.copytree(sample_seeds(), data_dir / "seeds")
    truth = write_store(catalog, data_dir / "seeds", data_dir / "synth", STORE_LINES, seed=11, per_file=PER_FILE)
    build(catalog, Settings(data_dir))
    return checks.load_build(data_dir), truth, checks.store_groups(data_dir / "synth"), data_dir


@pytest.fixture(scope="module")
def figures(store: Store) -> dict[str, tuple[checks.Measure, Any]]:
    built, truth, groups, data_dir = store
    measured = checks.store_figures(built, truth, groups, "datasketch", data_dir)
    return {name: (measure, target) for name, measure, target in measured}


@pytest.mark.parametrize("name", FIGURES)
def test_invariant(figures: dict[str, tuple[checks.Measure, Any]], name: str) -> None:
    measure, target = figures[name]
    assert target.passes(measure.value), f"{name} = {measure.describe()} (target {target.text()})"


def test_every_figure_is_asserted(figures: dict[str, tuple[checks.Measure, Any]]) -> None:
    assert set(figures) == set(FIGURES)


def test_checks_catch_a_tampered_release(store: Store, figures: dict[str, tuple[checks.Measure, Any]]) -> None:
    """The same real release, with known damage done to it: each check sees exactly that damage."""
    built, truth, _, _ = store
    published = set(built.records["id"])
    pairs = [(a[2], b[2]) for a, b in truth.cross_task if a[2] in published and b[2] in published][:3]
    assert len(pairs) == 3
    moved = {a: "test" for a, _ in pairs} | {b: "train" for _, b in pairs}  # each pair split across test/train
    gold = next(iter(built.gold & published))
    moved[gold] = "validation"
    records = built.records.with_columns(
        pl.col("id").replace_strict(moved, default=pl.col("split"), return_dtype=pl.String).alias("split")
    )
    # The twin of one near-duplicate drop unpublished: that drop no longer has a kept twin.
    near = built.quarantine.filter((pl.col("reason") == "near_duplicate") & ~pl.col("twin").is_in(list(built.gold)))
    twin = near["twin"][0]
    records = records.filter(pl.col("id") != twin)
    tampered = checks.Built(records, built.quarantine, built.gold, built.report)

    before = figures["leakage"][0].value
    # Each moved record leaks at least once; moving it can also expose other near-twins of its group, so more
    # may appear. The moved copies are identical texts (similarity 1.0), so they lead the examples.
    found = checks.leakage(tampered, "datasketch")
    assert found.value >= before + 3
    assert {a for a, _ in pairs} <= {example["test"] for example in found.examples}
    assert checks.groups_split_apart(tampered, [list(p) for p in pairs]).value == 3
    assert checks.gold_in_test(tampered).failures == checks.gold_in_test(built).failures + 1
    drops_on_twin = built.quarantine.filter(pl.col("twin") == twin).height
    assert checks.near_duplicate_precision(tampered).failures == (
        checks.near_duplicate_precision(built).failures + drops_on_twin
    )
