"""Comparison keys: every evasion the review found gets the original's key, distinct texts keep distinct keys, and
the Polars expression equals the Python function on every code point and on generated hostile strings."""

from __future__ import annotations

import json
import random
from pathlib import Path

import opencc
import polars as pl
import pytest

from validation.keys import dedup_key, dedup_key_expr

SEEDS = Path(__file__).resolve().parent.parent / "datasets" / "seeds"

EN = "Please refund my order, it arrived broken."
ZH = "我在北京买的手机屏幕碎了，请给我退款。"


def _full_width(text: str) -> str:
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _math_bold(text: str) -> str:
    def bold(c: str) -> str:
        if "A" <= c <= "Z":
            return chr(0x1D400 + ord(c) - ord("A"))
        return chr(0x1D41A + ord(c) - ord("a")) if "a" <= c <= "z" else c

    return "".join(map(bold, text))


EN_EVASIONS = {
    "lower case, punctuation removed": "please refund my order it arrived broken",
    "shouted": "PLEASE REFUND MY ORDER!!! IT ARRIVED BROKEN!!!",
    "spaced out": "P l e a s e   r e f u n d   m y   o r d e r ,   i t   a r r i v e d   b r o k e n .",
    "Cyrillic look-alikes": EN.translate(str.maketrans("eaopcxyPBHKMT", "еаорсхуРВНКМТ")),
    "Cyrillic capitals": "РLЕАSЕ REFUND MY ОRDЕR, IТ АRRIVЕD BRОKЕN.",
    "Greek look-alikes": "Ρlease refund my οrder, it arrived brοken.",
    "soft hyphens": "Ple\u00adase re\u00adfund my or\u00adder, it ar\u00adrived bro\u00adken.",
    "zero-width characters": "\u200b".join(EN[:20]) + "\u200c" + EN[20:30] + "\u200d\u2060\ufeff" + EN[30:],
    "bidi controls": "\u202ePlease refund\u202c my \u2066order\u2069, it arrived\u200f broken.\u200e",
    "full-width letters": _full_width(EN),
    "mathematical bold": _math_bold(EN),
    "accents added": "Pléase réfünd my ørder, it arrîved brokèn.".replace("ø", "o"),
    "combining marks added": "Ple\u0301ase refu\u0308nd my order\u0336, it arrived\u20dd broken.",
    "tabs, new lines and dashes": "Please\tre-fund\nmy order — it arrived…broken",
    "NUL and control characters": "Please\x00 refund\x07 my order,\x1b it arrived broken.\x7f",
    "invisible fillers and variation selectors": "Please\u3164refund\ufe0f my\u2800order, it arrived\u115f broken.",
    "tag characters": "Please refund\U000e0041\U000e0042 my order, it arrived broken.",
}

ZH_EVASIONS = {
    "traditional (s2t)": opencc.OpenCC("s2t").convert(ZH),
    "Taiwan forms (s2tw)": opencc.OpenCC("s2tw").convert(ZH),
    "Hong Kong forms (s2hk)": opencc.OpenCC("s2hk").convert(ZH),
    "punctuation removed": "我在北京买的手机屏幕碎了请给我退款",
    "ASCII punctuation": "我在北京买的手机屏幕碎了, 请给我退款!",
    "spaced out": " ".join(ZH),
    "ideographic spaces": "\u3000".join(ZH),
    "zero-width and soft hyphens": "我在\u200b北京\u00ad买的手机\u200d屏幕碎了，\ufeff请给我退款。",
    "compatibility ideograph": ZH.replace("北", "\uf963"),  # CJK COMPATIBILITY IDEOGRAPH-F963, drawn as 北
    "mixed traditional and simplified": "我在北京買的手机屏幕碎了，請给我退款。",
}


@pytest.mark.parametrize("evasion", list(EN_EVASIONS))
def test_english_evasion_gets_the_original_key(evasion: str) -> None:
    assert EN_EVASIONS[evasion] != EN
    assert dedup_key(EN_EVASIONS[evasion]) == dedup_key(EN) == "pleaserefundmyorderitarrivedbroken"


@pytest.mark.parametrize("evasion", list(ZH_EVASIONS))
def test_chinese_evasion_gets_the_original_key(evasion: str) -> None:
    assert ZH_EVASIONS[evasion] != ZH
    assert dedup_key(ZH_EVASIONS[evasion]) == dedup_key(ZH) == "我在北京买的手机屏幕碎了请给我退款"


def _seed_records() -> list[dict]:
    return [json.loads(line) for path in sorted(SEEDS.glob("*.jsonl")) for line in path.read_text("utf-8").splitlines()]


@pytest.mark.parametrize("config", ["s2t", "s2tw", "s2hk"])
def test_every_zh_seed_and_its_traditional_form_share_a_key(config: str) -> None:
    convert = opencc.OpenCC(config).convert
    inputs = [r["input"] for r in _seed_records() if r["lang"] == "zh"] + [
        r["output"] for r in _seed_records() if r["lang"] == "zh"
    ]
    assert [x for x in inputs if dedup_key(convert(x)) != dedup_key(x)] == []


DIFFERENT = [
    ("Please refund my order.", "Please cancel my order."),
    ("I want a refund.", "I want no refund."),
    ("Order 1234 arrived broken.", "Order 1235 arrived broken."),
    ("It cost $100.", "It cost €100."),
    ("Great 👍", "Great 👎"),
    ("我要退款。", "我不要退款。"),
    ("头发掉了很多", "发展得很快"),
    ("他在上海工作。", "他在北京工作。"),
    ("resume", "résumés"),
]


@pytest.mark.parametrize(("one", "other"), DIFFERENT)
def test_different_texts_keep_different_keys(one: str, other: str) -> None:
    assert dedup_key(one) != dedup_key(other)


def test_distinct_seed_texts_keep_distinct_keys() -> None:
    records = _seed_records()
    for field in ("input", "output"):
        texts = {r[field] for r in records if len(r[field]) >= 20}
        assert len({dedup_key(t) for t in texts}) == len(texts)


def test_keys_keep_letters_digits_and_symbols() -> None:
    assert dedup_key("ＣＴ检查：2024年3月，费用¥350（已报销）") == "ct检查2024年3月费用¥350已报销"
    assert dedup_key("C++ & C# @ 50% off ①") == "c++c50off1"  # math symbols stay, punctuation goes
    assert dedup_key("Straße İstanbul ﬁnal") == "strasseistanbulfinal"
    assert dedup_key("") == dedup_key("  ...  ") == ""


def _expr_keys(texts: list[str | None]) -> list[str | None]:
    return pl.DataFrame({"t": texts}, schema={"t": pl.String}).select(dedup_key_expr("t")).to_series().to_list()


def test_expression_equals_function_on_every_code_point() -> None:
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    assert _expr_keys(chars) == [dedup_key(c) for c in chars]


# Building blocks of hostile strings: what filters get dodged with, and what breaks naive string code.
_HOSTILE = [
    "a", "Z", " ", "\t", "\n", "\r\n", "\x00", "\x7f", "\x1b", "\u00ad", "\u200b", "\u200d", "\u2060", "\ufeff",
    "\u202e", "\u2066", "\u061c", "\u034f", "\u0301", "\u0308\u0308", "\u20dd", "\ufe0f", "\U000e0100",
    "\U000e0041", "е", "а", "Ρ", "μ", "µ", "ı", "İ", "ß", "ẞ", "ǅ", "ﬁ", "ｆ", "Ａ", "①", "¼", "㎏", "℃", "™",
    "𝐀", "𝔷", "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇨🇳", "\U0001faf8", "𠮷", "\U00031350", "\U0002ebf0",
    "\ue000", "\U000f0000", "\U0010ffff", "\U00050000", "請", "請", "髮", "發", "着", "著", "乾", "\uf963",
    "한", "\u1100\u1161", "ㄱ", "\uffa0", "\u3164", "ｶﾞ", "が", "か\u3099", "ـ", "ﷺ", "ﻻ", "ก", "ำ", "्",
    "，", "。", "“", "—", "…", "\u3000", "\u2028", "\u00a0", "\u202f", "'", "-", "_", "~", "$", "¥", "€",
]  # fmt: skip


def test_expression_equals_function_on_hostile_strings() -> None:
    rng = random.Random(7)
    texts: list[str | None] = [None, ""]
    for _ in range(5000):
        parts = [rng.choice(_HOSTILE) for _ in range(rng.randrange(0, 24))]
        if rng.random() < 0.3:  # and any code point at all, surrogates aside
            parts.append(chr(rng.choice([rng.randrange(0, 0xD800), rng.randrange(0xE000, 0x110000)])))
        texts.append("".join(parts))
    texts += list(EN_EVASIONS.values()) + list(ZH_EVASIONS.values())
    texts += [r[f] for r in _seed_records() for f in ("instruction", "input", "output")]
    expected = [None if t is None else dedup_key(t) for t in texts]
    assert _expr_keys(texts) == expected
    # A key is its own key: keying twice (a stored key compared again) changes nothing.
    assert [dedup_key(k) for k in expected if k is not None] == [k for k in expected if k is not None]


def test_expression_works_lazily_and_on_other_columns() -> None:
    frame = pl.LazyFrame({"input": [EN, ZH_EVASIONS["traditional (s2t)"]], "n": [1, 2]})
    keys = frame.with_columns(key=dedup_key_expr("input")).collect()["key"].to_list()
    assert keys == [dedup_key(EN), dedup_key(ZH)]
