"""A hostile synth store, line by line: every case the outside review found (and more), each line's fate asserted.

Fates: kept (published, possibly cleaned), or quarantined with a reason whose detail names the field and the cause.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from catalog import Catalog
from catalog.records import compact_json
from catalog.settings import Settings
from pipeline.build import BuildResult, build
from tests.conftest import DATA, sample_seeds

TASK = "fin_news_sentiment"
NEG_EN = {"sentiment": "negative", "reason": "The company cut its outlook and losses widened."}
NEG_ZH = {"sentiment": "负面", "reason": "公司下调业绩预期，亏损扩大。"}
POS_ZH = {"sentiment": "正面", "reason": "订单增长，利好公司。"}


def _cn_id(prefix17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return prefix17 + "10X98765432"[sum(int(d) * w for d, w in zip(prefix17, weights, strict=True)) % 11]


def record(catalog: Catalog, lang: str, text: str, output: dict[str, Any] | None = None, **extra: Any) -> dict:
    return {
        "task": TASK,
        "lang": lang,
        "instruction": catalog.get(TASK).instructions_for(lang if lang in ("en", "zh") else "en")[0],
        "input": text,
        "output": compact_json(output or (NEG_EN if lang != "zh" else NEG_ZH)),
        "source": "synth",
        "generator": "test-model",
        "provenance": {"template": "t1"},
        **extra,
    }


BASE_EN = (
    "Northwind Freight Holdings lowered its full-year revenue guidance on Tuesday after a sharp fall in "
    "container volumes on its transpacific routes, and said it would close two regional depots."
)
BASE_ZH = "华宇精密机械周二公告称，受海外订单大幅下滑影响，公司下调全年营收预期，并将关闭两家区域工厂，股价应声下跌。"
BASE_ZH_TRADITIONAL = (
    "華宇精密機械週二公告稱，受海外訂單大幅下滑影響，公司下調全年營收預期，並將關閉兩家區域工廠，股價應聲下跌。"
)
CYRILLIC = str.maketrans({"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у"})


def hostile_lines(catalog: Catalog) -> list[tuple[str | dict, str, str]]:
    """(line, expected fate, a fragment its detail must hold): fate is 'kept' or a quarantine reason."""
    r = lambda *a, **k: record(catalog, *a, **k)  # noqa: E731
    chain_a = "Redwood Pharma said its phase three trial of the migraine drug met its primary endpoint in May."
    chain_b = "Redwood Pharma said its phase three trial of the migraine drug met its main endpoint in late May."
    chain_c = "Redwood Pharma said its phase three study of a migraine drug met its main endpoint in late May 2025."
    return [
        (r("en", BASE_EN), "kept", ""),
        (r("zh", BASE_ZH, NEG_ZH), "kept", ""),
        # Near-duplicates that used to slip through: the copy goes, naming the original and the similarity.
        # Traditional Chinese is not what the zh datasets hold (see validation.language) ...
        (r("zh", BASE_ZH_TRADITIONAL, NEG_ZH), "language", "traditional Chinese"),
        # ... and a copy with a few traditional forms folded in is still the same text to the comparison key.
        (r("zh", BASE_ZH.replace("订单", "訂單").replace("营收", "營收").replace("关闭", "關閉"), NEG_ZH), "near_duplicate", "Jaccard"),
        (r("en", BASE_EN.translate(CYRILLIC)), "near_duplicate", "Jaccard"),
        (r("en", BASE_EN.replace("guidance", "guid\u00adance").replace("container", "con\u00adtainer")), "near_duplicate", ""),
        (r("en", " ".join(BASE_EN)), "near_duplicate", ""),
        (r("en", BASE_EN.replace(",", "").replace(".", "")), "near_duplicate", ""),
        # A chain a ~ b ~ c with a and c apart: b goes for a, c stays (its only twin, b, is not kept).
        (r("en", chain_a), "kept", ""),
        (r("en", chain_b), "near_duplicate", "Jaccard"),
        (r("en", chain_c), "kept", ""),
        # Broken text: quarantined with file, line and field; the build goes on.
        ('{"task": "fin_news_sentiment", "lang": "en", "input": "\\ud83d broken", "instruction": "x", "output": "y"}', "unreadable", "input: a lone surrogate \\ud83d"),
        ("{not json", "unreadable", "not valid JSON"),
        # Text hygiene: controls, NUL, ANSI escapes and bidi overrides are removed, the record kept.
        (r("en", "Alder Mining\x00 shares \x1b[31mplunged\x1b[0m after the \u202eCFO\u202c resigned over an accounting probe at its copper unit."), "kept", ""),
        (r("en", "Loss widened. " * 15_000), "too_long", "input: 209999 characters, over the task's limit of 12000"),
        # Languages: the label must be what the text is.
        (r("zh", "東京の自動車部品メーカーは、海外需要の減少により通期の業績予想を下方修正したと発表した。"), "language", "input"),
        (r("zh", "서울의 반도체 장비 업체는 해외 수요 감소로 올해 실적 전망을 하향 조정했다고 발표했다."), "language", "input"),
        (r("en", "서울의 반도체 장비 업체는 해외 수요 감소로 올해 실적 전망을 하향 조정했다고 발표했다."), "language", "input"),
        (r("en", "Московская компания снизила прогноз выручки на год из-за падения спроса на экспорт."), "language", "input"),
        (r("en", "Le groupe lyonnais a abaissé ses prévisions annuelles après une forte baisse des commandes à l'export."), "language", "input"),
        (r("en", "Analysts at Minsheng said founder Wang Jianguo (王建国) would step down after the company missed its targets."), "kept", ""),
        # Personal data, in the formats that used to be missed; and valid numbers that are not personal data.
        (r("zh", "公司董秘的电话0086-139-1234-5678被挂到网上，锦程科技股价大跌。", NEG_ZH), "pii", "input: phone"),
        (r("zh", "投资者致电公司总机010 62345678反映问题后，锦程科技股价仍然大跌。", NEG_ZH), "pii", "input: phone"),
        (r("zh", "深圳分公司电话(0755)88886666遭泄露，锦程科技股价下跌三成。", NEG_ZH), "pii", "input: phone"),
        (r("zh", f"据悉，锦程科技实控人身份证号{_cn_id('11010519491231002')[:6]} {_cn_id('11010519491231002')[6:14]} {_cn_id('11010519491231002')[14:]}被曝光，股价大跌。", NEG_ZH), "pii", "input"),
        (r("en", "Investors wrote to ir＠quarry-peak.com after Quarry Peak Mining cut its guidance sharply."), "pii", "input: email"),
        (r("zh", "锦程科技公告称订单增长，公司股价上涨，市场反应积极。", {"sentiment": "正面", "reason": "董秘手机１３９１２３４５６７８称订单增长。"}), "pii", "output: phone"),
        (r("zh", "锦程科技去年净利润13500000000元，同比增长两成，公司宣布提高分红。", POS_ZH), "kept", ""),
        (r("en", "Parcel tracking number 4111111111111111 shows Lantern Foods shipped its largest export order this quarter, beating estimates."), "kept", ""),
        # Contract: a language outside en/zh, a domain that is not the task's; both named briefly.
        (r("fr", "Le groupe a relevé ses prévisions annuelles grâce à une forte demande."), "invalid", "lang"),
        (r("en", "Harbor Bank reported a record loss after a fraud at its trading desk.", domain="medical"), "invalid", "domain"),
        # The trust boundary: a synth line cannot make itself a seed or a gold record.
        (r("en", "Cobalt Airways cut its capacity forecast after engine shortages grounded part of its fleet.", role="gold"), "kept", ""),
        (r("en", "Juniper Retail warned that holiday sales would fall short as shoppers cut spending.", source="seed", role="exemplar"), "kept", ""),
    ]  # fmt: skip


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalog: Catalog) -> tuple[BuildResult, list, Settings]:
    shutil.copytree(DATA / "tasks", tmp_path / "datasets" / "tasks")
    shutil.copytree(sample_seeds(), tmp_path / "datasets" / "seeds")
    synth_dir = tmp_path / "datasets" / "synth"
    synth_dir.mkdir()
    lines = hostile_lines(catalog)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line, _, _ in lines)
    (synth_dir / "hostile.jsonl").write_bytes(b"\xef\xbb\xbf" + text.encode() + b"\n\xff\xfe not utf-8\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings(tmp_path / "datasets")
    return build(catalog, settings), lines, settings


def test_every_hostile_line_meets_its_fate(hostile: tuple[BuildResult, list, Settings]) -> None:
    result, lines, _ = hostile
    quarantine = [json.loads(line) for line in result.quarantine.read_text(encoding="utf-8").splitlines()]
    fate = {q["line"]: q for q in quarantine if q["file"].endswith("hostile.jsonl")}
    kept = set(result.records.filter(pl.col("file").str.ends_with("hostile.jsonl"))["line"].to_list())
    wrong = []
    for number, (_, expected, fragment) in enumerate(lines, start=1):
        if expected == "kept":
            if number not in kept:
                wrong.append(
                    f"line {number}: expected kept, got {fate.get(number, {}).get('reason')}: {fate.get(number, {}).get('detail')}"
                )
        elif number not in fate or fate[number]["reason"] != expected or fragment not in (fate[number]["detail"] or ""):
            got = fate.get(number, {})
            wrong.append(
                f"line {number}: expected {expected} ({fragment!r}), got {got.get('reason', 'kept')}: {got.get('detail')}"
            )
    assert not wrong, "\n".join(wrong)
    assert fate[len(lines) + 1]["reason"] == "unreadable" and "not UTF-8" in fate[len(lines) + 1]["detail"]  # fmt: skip


def test_duplicates_name_their_kept_twin_and_the_similarity(hostile: tuple[BuildResult, list, Settings]) -> None:
    result, _, _ = hostile
    quarantine = [json.loads(line) for line in result.quarantine.read_text(encoding="utf-8").splitlines()]
    published = set(result.records["id"].to_list())
    near = [q for q in quarantine if q["reason"] == "near_duplicate"]
    assert near and all(q["twin"] in published and q["similarity"] >= 0.7 for q in near)
    chain_b = next(q for q in near if "main endpoint in late May." in q["input"])
    chain_a = result.records.filter(pl.col("input").str.ends_with("primary endpoint in May."))
    assert chain_b["twin"] == chain_a["id"].item()


def test_cleaned_text_and_overridden_claims(hostile: tuple[BuildResult, list, Settings]) -> None:
    result, _, _ = hostile
    synth = result.records.filter(pl.col("file").str.ends_with("hostile.jsonl"))
    alder = synth.filter(pl.col("input").str.starts_with("Alder Mining"))["input"].item()
    assert alder == "Alder Mining shares plunged after the CFO resigned over an accounting probe at its copper unit."
    claimed = synth.filter(
        pl.col("input").str.starts_with("Cobalt Airways") | pl.col("input").str.starts_with("Juniper")
    )
    assert claimed["source"].to_list() == ["synth", "synth"] and claimed["role"].to_list() == [None, None]
    assert result.report["overridden_claims"] == 3  # a role twice, a source once
    assert synth.filter(pl.col("line") == 1).height == 1  # the BOM did not cost the first line


def test_the_report_counts_every_record_including_unknown_languages(
    hostile: tuple[BuildResult, list, Settings],
) -> None:
    result, _, _ = hostile
    totals = result.report["totals"]
    assert totals["in"] == totals["out"] + sum(
        totals[r] for r in result.report["totals"] if r not in ("in", "out", "train", "validation", "test")
    )
    assert any(row["task"].startswith("(unknown") and row["invalid"] == 1 for row in result.report["rows"])


def test_validate_names_the_overridden_claims(hostile: tuple[BuildResult, list, Settings], catalog: Catalog) -> None:
    from validation.records import validate_files

    _, _, settings = hostile
    report = validate_files([settings.synth_dir], catalog, settings.seeds_dir)
    claims = [str(f) for f in report.failures if f.field in ("source", "role")]
    assert len(claims) == 3 and all("hostile.jsonl" in c for c in claims)
