"""Language checks by script: Chinese text is mostly Han characters, English text has almost none.

Latin is counted in words, not letters, so a Chinese resume full of `Kubernetes` and `PostgreSQL` stays Chinese.
"""

from __future__ import annotations

import re

import polars as pl

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")

MIN_ZH_HAN_SHARE = 0.5  # of Han characters among Han characters plus Latin words
MAX_EN_HAN_SHARE = 0.02
MIN_UNITS = 3  # shorter texts (a label, "OK") say too little to judge


def han_share(text: str) -> tuple[float, int]:
    """Share of Han characters among Han characters and Latin words, and how many units that share is of."""
    han = len(_HAN.findall(text))
    units = han + len(_LATIN_WORD.findall(text))
    return (han / units if units else 0.0), units


def language_problem(text: str, lang: str) -> str | None:
    """Why `text` does not read as `lang`, or None when it does (or is too short to tell)."""
    share, units = han_share(text)
    if units < MIN_UNITS:
        return None
    if lang == "zh" and share < MIN_ZH_HAN_SHARE:
        return f"expected Chinese: Han share {share:.2f} < {MIN_ZH_HAN_SHARE}"
    if lang == "en" and share > MAX_EN_HAN_SHARE:
        return f"expected English: Han share {share:.2f} > {MAX_EN_HAN_SHARE}"
    return None


def language_problems(frame: pl.DataFrame, column: str, lang_column: str = "lang") -> pl.Series:
    """`language_problem` over a whole column at once: the reason per row, or null where the text is fine."""
    counted = frame.select(
        pl.col(lang_column).alias("lang"),
        pl.col(column).str.count_matches(_HAN.pattern).cast(pl.Float64).alias("han"),
        pl.col(column).str.count_matches(_LATIN_WORD.pattern).cast(pl.Float64).alias("latin"),
    ).with_columns(units=pl.col("han") + pl.col("latin"))
    share = pl.when(pl.col("units") > 0).then(pl.col("han") / pl.col("units")).otherwise(0.0)
    lang = pl.col("lang")
    reason = (
        pl.when(pl.col("units") < MIN_UNITS)
        .then(None)
        .when((lang == "zh") & (share < MIN_ZH_HAN_SHARE))
        .then(pl.format("expected Chinese: Han share {} < {}", share.round(2), pl.lit(MIN_ZH_HAN_SHARE)))
        .when((lang == "en") & (share > MAX_EN_HAN_SHARE))
        .then(pl.format("expected English: Han share {} > {}", share.round(2), pl.lit(MAX_EN_HAN_SHARE)))
        .otherwise(None)
    )
    return counted.select(reason.alias(column)).to_series()
