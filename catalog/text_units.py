"""The units texts are compared in: words for Latin script, single characters for Chinese (and other CJK scripts).

Whitespace carries no meaning in Chinese, so splitting it into characters is what makes ROUGE-L and set matching fair
across languages (a whitespace tokenizer, as in the original Alpaca ROUGE, sees one Chinese sentence as one word).
"""

from __future__ import annotations

import re

from catalog.records import comparison_key

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# One CJK character, or a run of letters and digits of any other script; punctuation and spaces are dropped.
_UNIT = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


def text_units(text: str) -> list[str]:
    """Comparison units of `text` after NFKC and lower-casing (full-width digits and letters become ASCII)."""
    return _UNIT.findall(comparison_key(text))


def unit_key(text: str) -> str:
    """A text's identity for set matching: its units joined, so `故意 伤害罪` and `故意伤害罪。` are the same item."""
    return " ".join(text_units(text))
