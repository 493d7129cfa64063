"""Does a text read as the language it is labelled with (`en` or `zh`)? Script facts first, lingua where they can't.

What is counted (the text's "units"): one per CJK character (Han, kana, Hangul) and per character of the scripts
written without spaces (Thai, Lao, Khmer, Myanmar); one per word (a run of letters of one script) of the others:
Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari and any other alphabet. A word that mixes Latin letters with
Cyrillic or Greek ones is a Latin word spelt with look-alikes ("Nоrthwind" with a Cyrillic о), so English
dressed up that way stays English here and is left to the near-duplicate keys (validation.keys).

`zh` records must read as simplified Chinese:
- kana 10% or more of the CJK characters (at least 3 kana) → Japanese; Hangul, Cyrillic, Arabic, ... together
  10% or more of the units (at least 3) → Korean, Russian, Arabic, ... (the script with most units names it);
- Han under half the units → English (or other Latin-script text). Technical words (Kubernetes, PostgreSQL, CT,
  MRI) inside Chinese are fine: a Latin word is one unit against every Han character;
- traditional Chinese → quarantined, because the zh datasets are simplified: a record reads as traditional when
  at least 4 of its Han characters, and 12% or more of them, are traditional-only forms (characters OpenCC's
  t2s, tw2s or hk2s changes that are not themselves the simplified form of anything). A simplified sentence
  that names one person, place or school in traditional characters stays under (陳志強: 2 characters;
  國立臺灣大學 in a 37-character sentence: 4, 11%). Run through s2t, s2tw or s2hk, 99.3-99.5% of the seeds' zh
  instructions and inputs are caught (all but at most one of the 1,026 with 30 Han characters or more; the median
  share is 30%), while no zh seed has a single traditional-only character.

`en` records must read as English:
- non-Latin units more than the Latin words → Chinese, Japanese (kana 10% of CJK characters), Korean, Russian,
  ... A name, an address or a quoted term in Han characters ("my colleague Wang Fang (王芳) said ...") is fine
  in an otherwise English text;
- a Latin-script text is English, without a model, when it has an English-only function word (the, and, with,
  which, ...), no function word of French, German, Spanish, Portuguese, Italian or Dutch (les, und, que, não,
  della, het, ...) and no letter with a diacritic. Nearly all English settles so. Anything else with 3 Latin
  words or more goes to lingua (English and 11 other Latin-script languages, high-accuracy models, loaded on
  first use, ~350 MB), which names the language when it is not English with confidence 0.5 or more (0.6 for a
  phrase under 5 words: "handling stolen goods" reads as Swedish at 0.51).

Texts under 3 units ("OK", "好的", a label) are not judged, nor are labels other than en and zh.

Not caught: Japanese written with (almost) no kana reads as Chinese; a Latin-script language outside lingua's set
here (Tagalog, Swahili, ...) can read as English when it shares no function word or diacritic with the listed
ones; a short traditional text with fewer than 4 traditional-only characters passes; a mixed text passes while
the labelled language holds the majority; English whose every letter is a Cyrillic look-alike reads as Russian.

`language_problems` settles clean rows with cheap vectorised screens (a few Polars regex passes, no Python per
row), and counts the full facts, decides and asks lingua only for the rest; `language_problem` runs the same screens
on its one text in Python, then counts the full facts where they do not settle it. The screens only settle what the
full decision passes, so both give the same answers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

import polars as pl

if TYPE_CHECKING:
    from lingua import ConfidenceValue, LanguageDetector

MIN_UNITS = 3  # shorter texts (a label, "OK") say too little to judge
MIN_LINGUA_WORDS = 3
MAX_EN_FOREIGN_SHARE = 0.5  # of units that are not Latin words, in an en text
MIN_ZH_HAN_SHARE = 0.5
MIN_KANA_SHARE = 0.1  # of CJK characters: Chinese has none, Japanese ~30-60%
MIN_FOREIGN_SHARE = 0.1  # of units of another script (Hangul, Cyrillic, ...) in a zh text
MIN_FOREIGN = 3
MIN_TRADITIONAL = 4
MIN_TRADITIONAL_SHARE = 0.12  # of Han characters
MIN_LINGUA_CONFIDENCE = 0.5
# A phrase of 3 or 4 words gives lingua little to go on: the legal term "handling stolen goods" reads as Swedish at
# 0.51, while French or German of that length scores 0.6 and more.
MIN_SHORT_LINGUA_CONFIDENCE = 0.6
SHORT_LINGUA_WORDS = 5

# English-only function words: none is a common word of the languages lingua checks here ("of" is Dutch, "to"
# Polish, "in", "is", "was", "will" German or Dutch, "he" Spanish, "my" and "by" Polish).
_EN_WORDS = (
    "the and that with this you your have has they their there which would been were from are for it not be but "
    "our she his what can should could about just when who how if does did than then them these those some any only "
    "into after before because while very other such may might must shall its him why where here"
)
# Lower case only: these words mid-sentence are lower case, and capitals would catch names (Los Angeles, Che).
_FOREIGN_WORDS = (
    "le la les des du au aux une est dans avec sont nous cette très pas qui que je il "  # French
    "der das und ist nicht ein eine auf für sich auch oder aber noch sind ich wir mit "  # German
    "el los las una pero muy como "  # Spanish
    "não uma muito também "  # Portuguese
    "della che sono anche nel gli "  # Italian
    "het een niet zijn voor maar ook"  # Dutch
)

_LINGUA_LANGUAGES = (
    "ENGLISH FRENCH GERMAN SPANISH PORTUGUESE ITALIAN DUTCH POLISH SWEDISH TURKISH INDONESIAN VIETNAMESE"
)

# Blocks by script. Their letters are counted, and their marks too for the scripts that write vowels as marks.
_HAN_BLOCKS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x323AF))
_BMP_HAN_BLOCKS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF))  # 3 bytes each in UTF-8
_KANA = ((0x3041, 0x3096), (0x309D, 0x309F), (0x30A1, 0x30FA), (0x30FC, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9D))
# U+30FB (katakana middle dot) is left out: Chinese text uses it between the parts of foreign names.
_HANGUL = ((0x1100, 0x11FF), (0x3131, 0x318E), (0xA960, 0xA97F), (0xAC00, 0xD7A3), (0xD7B0, 0xD7FF), (0xFFA0, 0xFFDC))
_LATIN = ((0x41, 0x5A), (0x61, 0x7A), (0xC0, 0x24F), (0x1E00, 0x1EFF), (0x2C60, 0x2C7F), (0xA720, 0xA7FF))
_LATIN += ((0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
_ALPHABETS: dict[str, tuple[tuple[int, int], ...]] = {
    "Cyrillic": ((0x400, 0x52F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F)),
    "Greek": ((0x370, 0x3FF), (0x1F00, 0x1FFF)),
    "Arabic": ((0x600, 0x6FF), (0x750, 0x77F), (0x8A0, 0x8FF), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    "Hebrew": ((0x590, 0x5FF), (0xFB1D, 0xFB4F)),
    "Devanagari": ((0x900, 0x97F), (0xA8E0, 0xA8FF)),
    # Written without spaces between words: counted by character, like CJK.
    "Southeast Asian": ((0xE00, 0xE7F), (0xE80, 0xEFF), (0x1000, 0x109F), (0x1780, 0x17FF)),
}
_BY_CHARACTER = {"Southeast Asian"}
_LANGUAGE_OF = {
    "Han": "Chinese",
    "kana": "Japanese",
    "Hangul": "Korean",
    "Cyrillic": "Russian or another Cyrillic-script language",
    "Greek": "Greek",
    "Arabic": "Arabic or another Arabic-script language",
    "Hebrew": "Hebrew",
    "Devanagari": "Hindi or another Devanagari-script language",
}
_SCRIPTS = ("Hangul", *_ALPHABETS, "other")  # the foreign scripts besides Han and kana, in _Facts order


class _Facts(NamedTuple):
    """What the decision looks at, counted the same way by Python `re` and by Polars."""

    latin: int  # words of Latin, Cyrillic and Greek letters with at least one Latin letter in them
    han: int  # characters
    traditional: int  # Han characters in traditional-only form
    kana: int
    hangul: int
    european: int  # words of Latin, Cyrillic and Greek letters
    cyrillic_letters: int
    greek_letters: int
    arabic: int  # words, as are the rest of the scripts but Southeast Asian
    hebrew: int
    devanagari: int
    southeast_asian: int  # characters: Thai, Lao, Khmer, Myanmar
    other: int  # words of any other script
    english: int  # 1 where an English-only function word is there
    foreign: int  # 1 where a function word of another Latin-script language is there
    accented: int  # Latin letters beyond ASCII

    @property
    def units(self) -> int:
        return self.latin + self.han + self.kana + sum(self.foreign_scripts)

    @property
    def foreign_scripts(self) -> tuple[int, ...]:
        """Units of Hangul, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Southeast Asian, other: `_SCRIPTS` order.

        A word mixing Latin with Cyrillic or Greek letters is a Latin word spelt with look-alikes ("Nоrthwind"
        with a Cyrillic о), not a Russian one; the words with no Latin letter go to the larger of the two."""
        alphabet = self.european - self.latin
        cyrillic = alphabet if self.cyrillic_letters >= self.greek_letters else 0
        return (self.hangul, cyrillic, alphabet - cyrillic, *self[8:13])


class _Ask(Enum):
    """The facts cannot decide: lingua names the language of a Latin-script en text."""

    LINGUA = "lingua"


REASON_PREFIX = "reads as "  # every reason below starts so: callers tell language problems from others by it


def is_language_reason(reason: str) -> bool:
    return reason.startswith(REASON_PREFIX)


def language_problem(text: str, lang: str, *, screens: bool = True) -> str | None:
    """Why `text` does not read as `lang`, or None when it does (or is too short, or `lang` is not en or zh).

    The screens of `language_problems` settle most clean texts first, with a regex search or two instead of counting
    every fact; `screens=False` decides from the full facts alone (the tests compare the two)."""
    if lang not in ("en", "zh") or not text or (screens and _passes_screens(text, lang)):
        return None
    facts = _facts(text)
    verdict = _decide(facts, lang, text)
    if verdict is _Ask.LINGUA:
        return _lingua_reason(_detector().compute_language_confidence_values(text), facts.latin)
    return verdict


# What `language_problems(..., lingua=False)` says of a text only lingua can decide: the caller asks later.
LINGUA_PENDING = "lingua pending"


def language_problems(frame: pl.DataFrame, column: str, lang_column: str = "lang", *, lingua: bool = True) -> pl.Series:
    """`language_problem` over a whole column at once: the reason per row (a Series named `column`), or null.

    `lingua=False` leaves the few texts only lingua can decide as `LINGUA_PENDING`, for a process that can
    afford lingua's models (~310 MB) to decide later; build workers do so.
    """
    data = frame.select(pl.col(column).alias("text"), pl.col(lang_column).alias("lang")).with_row_index("row")
    text = pl.col("text")
    en = data.filter((pl.col("lang") == "en") & (text.str.len_bytes() > 0))
    zh = data.filter((pl.col("lang") == "zh") & (text.str.len_bytes() > 0))
    p = _patterns()
    # en: settled when no letter is beyond ASCII, an English-only function word is there and no function word of
    # another language is. Each screen only settles rows the full decision would pass (the tests check it).
    en_open = en.filter(
        text.str.contains(p.non_ascii_letter) | ~text.str.contains(p.english) | text.str.contains(p.foreign)
    )
    # zh, one regex pass: no letter but ASCII Latin and simplified Han, no Latin letter before the first Han
    # character and none after another Latin word without Han between: each Latin word then has a Han character
    # of its own before it, so Han is at least half the units.
    zh_open = zh.filter(text.str.contains(p.zh_doubt))
    # zh, on what is left (Latin first, "Spring Boot"): at least as many Han runs as Latin words.
    zh_open = zh_open.filter(
        text.str.contains(p.zh_suspicious) | (text.str.count_matches(p.han_run) < text.str.count_matches(p.latin_word))
    )
    open_rows = pl.concat([en_open, zh_open])
    reasons = pl.Series(column, [None] * data.height, dtype=pl.String)
    if open_rows.is_empty():
        return reasons
    counted = open_rows.select(
        (text.str.contains(pattern).cast(pl.Int64) if presence else text.str.count_matches(pattern)).alias(str(i))
        for i, (pattern, presence) in enumerate(p.counts)
    ).rows()
    verdicts: list[str | None] = []
    ask: list[int] = []
    words: list[int] = []
    for index, (counts, body, lang) in enumerate(zip(counted, open_rows["text"], open_rows["lang"], strict=True)):
        facts = _Facts(*counts)
        verdict = _decide(facts, lang, body)
        if verdict is _Ask.LINGUA:
            ask.append(index)
            words.append(facts.latin)
            verdict = None
        verdicts.append(verdict)
    if ask and not lingua:
        for index in ask:
            verdicts[index] = LINGUA_PENDING
    elif ask:
        texts = open_rows["text"].gather(ask).to_list()
        distinct = list(dict.fromkeys(texts))  # a text that recurs (a templated list of keywords) is asked once
        values = dict(zip(distinct, _detector().compute_language_confidence_values_in_parallel(distinct), strict=True))
        for index, text, count in zip(ask, texts, words, strict=True):
            verdicts[index] = _lingua_reason(values[text], count)
    return reasons.scatter(open_rows["row"], pl.Series(verdicts, dtype=pl.String))


def prepare() -> None:
    """Build the patterns now (~0.3 s, once per process) rather than at the first text; lingua stays unloaded."""
    _patterns()


def _passes_screens(text: str, lang: str) -> bool:
    """`language_problems`' screens for one text, in Python: True only where the full decision passes it."""
    p = _patterns()
    if lang == "en":
        english, foreign = p.python_words
        return not p.python_non_ascii(text) and english.search(text) is not None and not foreign.search(text)
    return not p.python_zh_doubt(text) or (
        not p.python_zh_suspicious(text)
        and len(p.python_han_run.findall(text)) >= len(p.python_latin_word.findall(text))
    )


def _decide(facts: _Facts, lang: str, text: str) -> str | _Ask | None:
    units = facts.units
    if units < MIN_UNITS:
        return None
    cjk = facts.han + facts.kana
    kana_share = facts.kana / cjk if cjk else 0.0
    japanese = facts.kana >= MIN_FOREIGN and kana_share >= MIN_KANA_SHARE
    if lang == "zh":
        if japanese:
            return f"reads as Japanese (kana {kana_share:.0%} of CJK characters), expected zh"
        foreign = facts.kana + sum(facts.foreign_scripts)
        if foreign >= MIN_FOREIGN and foreign / units >= MIN_FOREIGN_SHARE:
            script, count = _main_script(facts)
            return (
                f"reads as {_name(script, text)} ({_label(script, text)} {count / units:.0%} of the text), expected zh"
            )
        if facts.han / units < MIN_ZH_HAN_SHARE:
            if facts.latin >= max(foreign, 1):
                name = "English" if _settled_english(facts) else "Latin-script text"
                return f"reads as {name} (Han {facts.han / units:.0%} of the text), expected zh"
            script, count = _main_script(facts)
            return f"reads as {_name(script, text)} (Han {facts.han / units:.0%} of the text), expected zh"
        if facts.traditional >= MIN_TRADITIONAL and facts.traditional / facts.han >= MIN_TRADITIONAL_SHARE:
            share = facts.traditional / facts.han
            return (
                f"reads as traditional Chinese ({share:.0%} of Han characters are traditional forms), "
                "expected simplified zh"
            )
        return None
    foreign = units - facts.latin
    if foreign / units > MAX_EN_FOREIGN_SHARE:
        if cjk >= max(facts.foreign_scripts):
            if japanese:
                return f"reads as Japanese (kana {kana_share:.0%} of CJK characters), expected en"
            return f"reads as Chinese (Han {facts.han / units:.0%} of the text), expected en"
        script, count = _main_script(facts)
        return f"reads as {_name(script, text)} ({_label(script, text)} {count / units:.0%} of the text), expected en"
    if facts.latin < MIN_LINGUA_WORDS or _settled_english(facts):
        return None
    return _Ask.LINGUA


def _settled_english(facts: _Facts) -> bool:
    return facts.english > 0 and facts.foreign == 0 and facts.accented == 0


def _main_script(facts: _Facts) -> tuple[str, int]:
    """The foreign script (besides Han) with the most units, and its count."""
    counts = dict(zip(_SCRIPTS, facts.foreign_scripts, strict=True), kana=facts.kana)
    script = max(counts, key=counts.__getitem__)  # ties: the first, in a fixed order
    return script, counts[script]


def _name(script: str, text: str) -> str:
    if script in _LANGUAGE_OF:
        return _LANGUAGE_OF[script]
    # Named by Unicode's name of the script's first letter in the text ("THAI CHARACTER KO KAI", "GEORGIAN ...").
    first = _patterns().naming[script].search(text)
    name = unicodedata.name(first.group(), "UNKNOWN").split()[0].title() if first else script
    return name if script in _BY_CHARACTER else f"{name}-script text"


def _label(script: str, text: str) -> str:
    if script in _BY_CHARACTER:
        return _name(script, text)
    return "letters of other scripts" if script == "other" else script


def _lingua_reason(values: list[ConfidenceValue], latin_words: int) -> str | None:
    top = values[0] if values else None
    least = MIN_SHORT_LINGUA_CONFIDENCE if latin_words < SHORT_LINGUA_WORDS else MIN_LINGUA_CONFIDENCE
    if top is None or top.language.name == "ENGLISH" or top.value < least:
        return None
    return f"reads as {top.language.name.title()} (lingua, confidence {top.value:.2f}), expected en"


def _facts(text: str) -> _Facts:
    return _Facts(*(count(text) for count in _patterns().python_counts))


@cache
def _detector() -> LanguageDetector:
    """lingua over a restricted set: every language added costs memory (~35 MB) and chances of a wrong guess."""
    from lingua import Language, LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_languages(
        *(getattr(Language, name) for name in _LINGUA_LANGUAGES.split())
    ).build()


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class _Search(NamedTuple):
    """A search with a huge character class, made fast for Python's re: the class cut to the BMP first (re tests
    every character against each range beyond it, ~0.4 µs a character), the whole class only for a text that holds
    a character beyond the BMP at all. Same answer as `full.search`."""

    bmp: re.Pattern[str]
    full: re.Pattern[str]

    def __call__(self, text: str) -> bool:
        if self.bmp.search(text) is not None:
            return True
        return _ASTRAL.search(text) is not None and self.full.search(text) is not None


class _Patterns(NamedTuple):
    counts: tuple[tuple[str, bool], ...]  # Rust regexes for Polars in _Facts order, and whether presence is counted
    python_counts: tuple[Callable[[str], int], ...]  # the same counts in Python
    non_ascii_letter: str
    english: str
    foreign: str
    zh_doubt: str
    zh_suspicious: str
    han_run: str
    latin_word: str
    naming: dict[str, re.Pattern[str]]  # for the buckets of several scripts
    # The screens compiled for Python (one text at a time): the English and foreign function words, and the rest.
    python_words: tuple[re.Pattern[str], re.Pattern[str]]
    python_non_ascii: _Search
    python_zh_doubt: _Search
    python_zh_suspicious: _Search
    python_han_run: re.Pattern[str]
    python_latin_word: re.Pattern[str]


@cache
def _patterns() -> _Patterns:
    """Character classes from Python's Unicode tables, written out as ranges so both regex engines read the same."""
    han = _codes(_HAN_BLOCKS)
    traditional = _traditional_only()
    kana, hangul, latin = _codes(_KANA), _codes(_HANGUL), _codes(_LATIN, letters=True)
    alphabets = {name: _codes(blocks, letters=True, marks=True) for name, blocks in _ALPHABETS.items()}
    european = latin | alphabets["Cyrillic"] | alphabets["Greek"]
    named = han | kana | hangul | latin | set().union(*alphabets.values())
    other = {c for c in range(0x80, 0x323B0) if c not in named and unicodedata.category(chr(c)).startswith("L")}
    ascii_ = set(range(0x80))
    bmp_han = _codes(_BMP_HAN_BLOCKS)
    e, l_ = _class(european)[1:-1], _class(latin)[1:-1]
    rest = {name: codes for name, codes in alphabets.items() if name not in ("Cyrillic", "Greek")}
    classes = [
        f"[{e}]*[{l_}][{e}]*",  # one match per word that has a Latin letter: greedy from its first letter to its last
        _class(han),
        _class(traditional),
        _class(kana),
        _class(hangul),
        f"[{e}]+",
        _class(alphabets["Cyrillic"]),
        _class(alphabets["Greek"]),
        *(_class(codes) + ("" if name in _BY_CHARACTER else "+") for name, codes in rest.items()),
        _class(other) + "+",
    ]
    english = "|".join(f"[{w[0].upper()}{w[0]}]{w[1:]}" for w in _EN_WORDS.split())
    foreign = "|".join(_FOREIGN_WORDS.split())
    # A word with ASCII word boundaries: the neighbours consumed for Rust (which has no look-arounds; only presence
    # is asked, so consuming them changes nothing), look-arounds for Python.
    rust_words = [rf"(?:^|[^0-9A-Za-z_])(?:{words})(?:[^0-9A-Za-z_]|$)" for words in (english, foreign)]
    python_words = [re.compile(rf"(?<![0-9A-Za-z_])(?:{words})(?![0-9A-Za-z_])") for words in (english, foreign)]
    accented = _class(latin - ascii_)
    # Python's backtracking would take quadratic time on the Latin-word pattern over a long run without a Latin
    # letter; it finds the words first and looks for a Latin letter in each.
    word, latin_letter = re.compile(f"[{e}]+"), re.compile(f"[{l_}]")
    python_counts = [
        lambda text: sum(1 for w in word.findall(text) if latin_letter.search(w)),
        *(_counter(re.compile(pattern)) for pattern in classes[1:]),
        *(_presence(regex) for regex in python_words),
        _counter(re.compile(accented)),
    ]
    suspicious = _class((named | other) - ascii_ - (bmp_han - traditional))
    h = _class(bmp_han)[1:-1]
    non_ascii_letter = _class((named | other) - ascii_)
    zh_doubt = f"{suspicious}|^[^{h}]*[A-Za-z]|[A-Za-z][^{h}A-Za-z]+[A-Za-z]"
    bmp = set(range(0x10000))
    bmp_suspicious = _class(((named | other) - ascii_ - (bmp_han - traditional)) & bmp)
    return _Patterns(
        counts=tuple((p, False) for p in classes) + tuple((p, True) for p in rust_words) + ((accented, False),),
        python_counts=tuple(python_counts),
        non_ascii_letter=non_ascii_letter,
        english=rust_words[0],
        foreign=rust_words[1],
        zh_doubt=zh_doubt,
        zh_suspicious=suspicious,
        han_run=f"[{h}]+",
        latin_word=_class(latin) + "+",
        naming={name: re.compile(_class(codes)) for name, codes in [*alphabets.items(), ("other", other)]},
        python_words=(python_words[0], python_words[1]),
        python_non_ascii=_Search(re.compile(_class((named | other) - ascii_ & bmp)), re.compile(non_ascii_letter)),
        python_zh_doubt=_Search(re.compile(zh_doubt.replace(suspicious, bmp_suspicious, 1)), re.compile(zh_doubt)),
        python_zh_suspicious=_Search(re.compile(bmp_suspicious), re.compile(suspicious)),
        python_han_run=re.compile(f"[{h}]+"),
        python_latin_word=re.compile(_class(latin) + "+"),
    )


def _counter(regex: re.Pattern[str]) -> Callable[[str], int]:
    return lambda text: len(regex.findall(text))


def _presence(regex: re.Pattern[str]) -> Callable[[str], int]:
    return lambda text: int(regex.search(text) is not None)


def _codes(blocks: tuple[tuple[int, int], ...], letters: bool = False, marks: bool = False) -> set[int]:
    kinds = ("L" if letters else "") + ("M" if marks else "")
    return {
        c
        for first, last in blocks
        for c in range(first, last + 1)
        if not kinds or unicodedata.category(chr(c))[0] in kinds
    }


def _class(codes: set[int]) -> str:
    """A regex character class of `codes` as ranges (literal characters: both engines read them alike)."""
    ordered = sorted(codes)
    parts: list[str] = []
    start = previous = ordered[0]
    for code in [*ordered[1:], -1]:
        if code == previous + 1:
            previous = code
            continue
        parts.append(_literal(start) if start == previous else f"{_literal(start)}-{_literal(previous)}")
        start = previous = code
    return "[" + "".join(parts) + "]"


def _literal(code: int) -> str:
    char = chr(code)
    return "\\" + char if code < 0x80 and not char.isalnum() else char


@cache
def _traditional_only() -> frozenset[int]:
    import opencc  # C++ OpenCC: all BMP Han characters in one call each, ~20 ms

    chars = [chr(c) for c in sorted(_codes(_BMP_HAN_BLOCKS))]
    joined = "\n".join(chars)  # one per line: phrase rules never join neighbours
    changed: set[str] = set()
    simplified_forms: set[str] = set()
    for config in ("t2s", "tw2s", "hk2s"):  # 説 is Hong Kong's form of 說: only hk2s changes it
        converted = opencc.OpenCC(config).convert(joined).split("\n")
        changed |= {c for c, s in zip(chars, converted, strict=True) if c != s}
        simplified_forms |= {s for c, s in zip(chars, converted, strict=True) if c != s}
    to_traditional = opencc.OpenCC("s2t").convert(joined).split("\n")
    has_traditional = {c for c, t in zip(chars, to_traditional, strict=True) if c != t}
    # 乾 stays in (t2s changes it, although 乾隆 keeps it): one such character never reaches the bars above.
    return frozenset(ord(c) for c in changed - simplified_forms - has_traditional)
