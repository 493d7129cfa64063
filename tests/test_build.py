"""The build, end to end on real files: filters catch what they should and keep the rest, splits don't leak,
the release loads with `datasets.load_dataset`, builds are reproducible and atomic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from catalog import Catalog
from catalog.layout import SPLITS, config_files
from catalog.records import RECORD_COLUMNS, compact_json, comparison_key
from catalog.settings import Settings
from pipeline.build import BuildConfig, BuildResult, build
from tests.conftest import DATA, sample_seeds, seed_records, write_jsonl
from validation.near_dup import NGRAM, signatures

TASK = "fin_news_sentiment"


def _cn_id(prefix17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return prefix17 + "10X98765432"[sum(int(d) * w for d, w in zip(prefix17, weights, strict=True)) % 11]


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A scratch data folder: the real tasks and seeds, and an empty synth store."""
    shutil.copytree(DATA / "tasks", tmp_path / "datasets" / "tasks")
    shutil.copytree(sample_seeds(), tmp_path / "datasets" / "seeds")
    (tmp_path / "datasets" / "synth").mkdir()
    monkeypatch.chdir(tmp_path)
    return Settings(tmp_path / "datasets")


def synth(catalog: Catalog, lang: str, text: str, output: dict[str, Any], task: str = TASK) -> dict[str, Any]:
    spec = catalog.get(task)
    return {
        "task": task,
        "lang": lang,
        "instruction": spec.instructions_for(lang)[0],
        "input": text,
        "output": compact_json(output),
        "source": "synth",
        "generator": "test-model",
        "provenance": {"template": "t1", "exemplars": []},
    }


def _quarantine(result: BuildResult) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.quarantine.read_text(encoding="utf-8").splitlines()]


def test_seeds_alone_build_a_release_every_config_of_which_loads(
    data: Settings, catalog: Catalog, tmp_path: Path
) -> None:
    import datasets

    result = build(catalog, data)
    assert result.report["totals"]["out"] == result.report["totals"]["in"] > 800
    for config in config_files(catalog):
        loaded = datasets.load_dataset(str(result.release), config, cache_dir=str(tmp_path / "hf-cache"))
        assert set(loaded) == set(SPLITS), config
        for split in SPLITS:
            assert loaded[split].column_names == list(RECORD_COLUMNS)
        assert set(loaded["train"]["lang"]) == {"en", "zh"} and set(loaded["test"]["lang"]) == {"en", "zh"}, config
    header = (result.release / "README.md").read_text(encoding="utf-8").split("---")[1]
    assert "config_name: med_triage" in header and "config_name: medical" in header and "dataset_info:" in header


def test_gold_seeds_land_in_test_and_exemplars_never_do(data: Settings, catalog: Catalog) -> None:
    result = build(catalog, data)
    roles = result.records.group_by("role", "split").len()
    assert roles.filter((pl.col("role") == "exemplar") & (pl.col("split") == "test")).is_empty()
    assert roles.filter((pl.col("role") == "gold") & (pl.col("split") != "test")).is_empty()


def test_each_filter_drops_what_it_should_and_keeps_the_rest(data: Settings, catalog: Catalog) -> None:
    seed = next(r for r in seed_records(TASK) if r["lang"] == "en")
    negative = {"sentiment": "negative", "reason": "Losses widened and the outlook was cut."}
    zh_negative = {"sentiment": "负面", "reason": "公司亏损扩大，对股价不利。"}
    rows = [
        synth(catalog, "en", "Quarry Peak Mining reported a wider loss and withdrew its 2025 outlook.", negative),
        synth(catalog, "zh", "Quarry Peak Mining reported a wider loss and suspended its dividend.", zh_negative),
        synth(catalog, "en", "Investors e-mailed ir.desk@quarrypeak-mining.com after Quarry Peak cut guidance.", negative),
        synth(catalog, "zh", f"据悉，锦程科技实控人身份证号{_cn_id('11010519491231002')}被曝光，公司股价大跌。", zh_negative),
        synth(catalog, "zh", "锦程科技董秘手机13812345678被挂在网上，公司股价应声下跌。", zh_negative),
        synth(catalog, "en", "Rowan Bank card 4111 1111 1111 1111 was leaked; Rowan Bank shares fell.", negative),
        synth(catalog, "en", "Quarry Peak Mining posted revenue of 12,345,678 dollars, below forecasts, on 2024-03-15.", negative),
        synth(catalog, "en", seed["input"], json.loads(seed["output"])),  # exact twin of a seed
        synth(catalog, "en", seed["input"][:-1] + " ", json.loads(seed["output"])),  # a near twin of it
        synth(catalog, "en", "Lantern Foods beat estimates and raised its dividend by ten percent.", {"sentiment": "happy", "reason": "x"}),
    ]  # fmt: skip
    write_jsonl(data.synth_dir / "part-0001.jsonl", [*rows, "{broken"])
    result = build(catalog, data)
    reasons = {(q["file"], q["line"]): q["reason"] for q in _quarantine(result) if "synth" in q["file"]}
    synth_file = "datasets/synth/part-0001.jsonl"
    assert reasons == {
        (synth_file, 2): "language",
        (synth_file, 3): "pii",
        (synth_file, 4): "pii",
        (synth_file, 5): "pii",
        (synth_file, 6): "pii",
        (synth_file, 8): "exact_duplicate",
        (synth_file, 9): "near_duplicate",
        (synth_file, 10): "invalid",
        (synth_file, 11): "unreadable",
    }
    kept = result.records.filter(pl.col("source") == "synth")
    assert sorted(kept["line"].to_list()) == [1, 7]  # ordinary numbers and dates are not personal data
    details = {q["line"]: q["detail"] for q in _quarantine(result) if "synth" in q["file"]}
    # The field, the kind, where, and the value masked: enough to find it, never the value itself.
    assert details[3].startswith("input: email at 19 (") and "ir.desk@" not in details[3]
    assert details[4].startswith("input: cn_id_number at ") and "19491231" not in details[4]
    assert details[5].startswith("input: phone at ") and "13812345678" not in details[5]
    assert details[6].startswith("input: bank_card at ") and "4111 1111 1111 1111" not in details[6]
    assert "output.sentiment: 'happy' is not in the closed set" in details[10]
    assert details[8].startswith("same input as datasets/seeds/fin_news_sentiment.jsonl:")
    totals = result.report["totals"]
    assert totals["in"] == totals["out"] + sum(
        totals[r] for r in ("unreadable", "language", "invalid", "pii", "exact_duplicate", "near_duplicate")
    )


def _jaccard_estimate(a: str, b: str) -> float:
    sig = signatures([comparison_key(a), comparison_key(b)], NGRAM["en"])
    return float((sig[0] == sig[1]).mean())


def test_no_test_record_has_a_near_twin_in_train(data: Settings, catalog: Catalog) -> None:
    gold = next(r for r in seed_records(TASK) if r["lang"] == "en" and r["role"] == "gold")
    # Loosely similar to a gold seed (kept, not a duplicate), so it must follow the gold record into test.
    cousin = (
        gold["input"] + " Separately, the company said its annual meeting will be held in Leeds in May, that it plans"
        " to publish its sustainability report on the same day, and that two directors will stand down."
    )
    config = BuildConfig()
    assert config.group_threshold <= _jaccard_estimate(gold["input"], cousin) < config.near_duplicate_threshold
    fresh = [
        synth(catalog, "en", f"Company number {i} in the widget sector reported results for quarter {i % 4 + 1}.", {"sentiment": "neutral", "reason": "Routine results."})
        for i in range(40)
    ]  # fmt: skip
    write_jsonl(data.synth_dir / "part-0001.jsonl", [synth(catalog, "en", cousin, json.loads(gold["output"])), *fresh])
    result = build(catalog, data)
    records = result.records
    cousin_row = records.filter(pl.col("input") == cousin.strip())
    assert cousin_row["split"].to_list() == ["test"]
    # Across the whole release: records of one group share one split.
    assert records.group_by("split_group").agg(pl.col("split").n_unique()).filter(pl.col("split") > 1).is_empty()


def test_two_builds_of_the_same_inputs_give_byte_identical_parquet(data: Settings, catalog: Catalog) -> None:
    first = build(catalog, data)
    files = sorted(first.release.rglob("*.parquet"))
    before = {f.relative_to(first.release): f.read_bytes() for f in files}
    second = build(catalog, data)
    after = {f.relative_to(second.release): f.read_bytes() for f in sorted(second.release.rglob("*.parquet"))}
    assert before == after and len(before) == 3 * len(catalog)


def test_splits_stay_put_when_the_data_grows(data: Settings, catalog: Catalog) -> None:
    first = build(catalog, data).records.select("id", "split")
    more = [synth(catalog, "en", f"Harbor {i} Holdings announced a routine board meeting date for spring.", {"sentiment": "neutral", "reason": "Routine notice."}) for i in range(5)]  # fmt: skip
    write_jsonl(data.synth_dir / "part-0002.jsonl", more)
    second = build(catalog, data).records.select("id", "split")
    joined = first.join(second, on="id", suffix="_after")
    assert joined.height == first.height and (joined["split"] == joined["split_after"]).all()


def test_a_failed_build_leaves_the_previous_release_untouched(
    data: Settings, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.build

    release = build(catalog, data).release
    before = {p.relative_to(release): p.read_bytes() for p in release.rglob("*") if p.is_file()}
    quarantine = build(catalog, data).quarantine.read_bytes()

    def write_half_then_fail(path: Path, parts: list[Path]) -> None:
        path.write_text("half a quarantine")
        raise OSError("disk full")

    monkeypatch.setattr(pipeline.build, "_write_quarantine", write_half_then_fail)
    write_jsonl(data.synth_dir / "part-0001.jsonl", [synth(catalog, "en", "Harbor Holdings cut its dividend.", {"sentiment": "negative", "reason": "A cut."})])  # fmt: skip
    with pytest.raises(OSError, match="disk full"):
        build(catalog, data)
    after = {p.relative_to(release): p.read_bytes() for p in release.rglob("*") if p.is_file()}
    assert after == before
    assert (data.build_dir / "_quarantine" / "anytasktune.jsonl").read_bytes() == quarantine
    monkeypatch.undo()
    result = build(catalog, data)  # the next build cleans the half-written run up
    assert "Harbor Holdings cut its dividend." in result.records["input"].to_list()
    assert len(list((data.build_dir / "runs").iterdir())) == 2  # the current run and the one before it


def test_a_broken_catalog_stops_the_cli_build_before_touching_the_release(data: Settings, catalog: Catalog) -> None:
    import subprocess
    import sys

    release = build(catalog, data, BuildConfig()).release
    stamp = (release / "README.md").read_bytes()
    (data.tasks_dir / "fin_intent.yaml").write_text("id: fin_intent\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "cli", "build"], capture_output=True, text=True, cwd=data.data_dir.parent, check=False,
        env={"PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 1 and "fin_intent.yaml:1: code: Field required" in result.stderr
    assert (release / "README.md").read_bytes() == stamp


def test_text_is_normalized_for_storage_but_chinese_punctuation_stays(data: Settings, catalog: Catalog) -> None:
    messy = "\ufeff锦程科技发布公告：２０２４年净利润预增\u200b３０％，ＣＥＯ称订单充足。  \r\n\r\n\r\n\r\n  股价涨停！"
    write_jsonl(
        data.synth_dir / "part-0001.jsonl", [synth(catalog, "zh", messy, {"sentiment": "正面", "reason": "业绩预增。"})]
    )
    kept = build(catalog, data).records.filter(pl.col("source") == "synth")
    assert kept["input"].to_list() == ["锦程科技发布公告：2024年净利润预增30％，CEO称订单充足。\n\n股价涨停！"]


def test_a_release_of_the_old_layout_is_adopted_then_replaced(data: Settings, catalog: Catalog) -> None:
    # Before run folders, the release was a real folder and the quarantine a real file.
    old = data.build_dir / "anytasktune"
    (old / "data").mkdir(parents=True)
    (old / "README.md").write_text("the old release", encoding="utf-8")
    (data.build_dir / "_quarantine").mkdir()
    (data.build_dir / "_quarantine" / "anytasktune.jsonl").write_text("{}\n", encoding="utf-8")
    (data.build_dir / ".staging-anytasktune").mkdir()  # what a crashed build of the old layout left
    result = build(catalog, data)
    assert result.release.is_symlink() and result.quarantine.is_symlink()
    assert "the old release" not in (result.release / "README.md").read_text(encoding="utf-8")
    runs = sorted((data.build_dir / "runs").iterdir())
    assert len(runs) == 2  # the adopted old release is kept as the previous run
    assert any((run / "release" / "README.md").read_text(encoding="utf-8") == "the old release" for run in runs)
    assert not (data.build_dir / ".staging-anytasktune").exists()
