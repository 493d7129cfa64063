"""Comparison keys for near-duplicate detection: the form of a text that MinHash shingles, never a stored form.

The key is a character-by-character map, so the Python form (`dedup_key`, `str.translate`) and the Polars form
(`dedup_key_expr`, one Aho-Corasick pass of `str.replace_many`) run the same table and agree on every string.
Each character becomes:

- its compatibility decomposition with the marks stripped (NFKD, then no category M): full-width and
  mathematical letters, ligatures, circled digits and compatibility ideographs fold like NFKC folds them, and
  accents are dropped, so "réfund" and "refund" agree. Recomposition, the one step of NFKC a per-character map
  cannot do, changes nothing once marks are gone;
- Latin for the Cyrillic, Greek, Armenian and IPA letters that look like Latin ones (a hand-kept table of the
  look-alikes used to dodge filters: "rеfund" with a Cyrillic е);
- case-folded (Python's `str.casefold`: "İ" becomes "i", "ß" becomes "ss");
- one simplified Chinese character for each family of traditional and simplified variants OpenCC knows (t2s,
  tw2s, hk2s and their inverses character by character, and the character pairs of its phrase dictionaries,
  joined into families): 發, 髮 and 发 agree, so do 著 and 着, 裡, 裏 and 里, 揹 and 背. A text and its OpenCC
  s2t, s2tw or s2hk conversion get the same key (tested on every zh seed);
- nothing, for punctuation, whitespace, control and format characters (soft hyphen, zero-width, bidi marks,
  tags), combining marks, variation selectors and the invisible fillers (Hangul fillers, braille blank). So
  "p l e a s e  r e f u n d", "please, refund!" and "please refund" agree, in Chinese as in English.

Not caught: look-alikes outside the table (Cherokee, Coptic, letter-like symbols, digits for letters: "0" for
"O", "1" for "l"), which TR39's confusables list would fold; regional vocabulary (软件 and 軟體, OpenCC's s2twp),
which is other words rather than other characters; conjoining Hangul jamo against precomposed syllables;
paraphrase and translation. Folding merges a few distinct simplified characters that share a traditional form
(复 and 覆 through 覆), which only makes two texts that differ there a little more alike. The table (~18,000
characters) is built once, lazily (~0.6 s), from Python's own Unicode tables, so its Unicode version is
Python's; characters Python does not know are left as they are, by both forms.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import unicodedata
import warnings
from functools import cache
from pathlib import Path

import polars as pl

# Planes that hold assigned characters: BMP to the CJK extensions of plane 3, and plane 14 (tags, variation
# selectors). Planes 4-13 are unassigned and 15-16 private use: nothing there is folded or dropped.
_SCANNED = (range(0x0000, 0xD800), range(0xE000, 0x34000), range(0xE0000, 0xE1000))

# Invisible characters that are letters or symbols by category but render as nothing.
_INVISIBLE = "\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5"

# Letters that look like Latin ones. Upper case maps to upper case first, so Greek Μ (looks like M) and μ (looks
# like u) can go different ways; the lower-case pass then handles what lower-casing produces.
_LOOK_ALIKES = {
    # Cyrillic
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J", "К": "K", "М": "M", "О": "O",
    "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I", "Ԁ": "D",
    "а": "a", "в": "b", "с": "c", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "м": "m", "н": "h",
    "о": "o", "р": "p", "ѕ": "s", "т": "t", "х": "x", "у": "y", "ү": "y", "ԁ": "d", "ԛ": "q", "ԝ": "w",
    "ӏ": "l", "ь": "b", "ѵ": "v", "ѡ": "w",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C", "Ϳ": "J",
    "α": "a", "β": "b", "γ": "y", "ε": "e", "ι": "i", "κ": "k", "μ": "u", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    # Armenian and Latin IPA / dotless letters
    "օ": "o", "ս": "u", "ո": "n", "հ": "h", "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɩ": "i", "ɪ": "i", "ʏ": "y",
}  # fmt: skip

# Which OpenCC conversions define the variant families, and which of them point towards simplified.
_TO_SIMPLIFIED = ("t2s", "tw2s", "hk2s")
_TO_TRADITIONAL = ("s2t", "s2tw", "s2hk")
_PHRASE_DICTIONARIES = (("STPhrases", False), ("TSPhrases", True))
_CJK = (range(0x3400, 0x4DC0), range(0x4E00, 0xA000), range(0xF900, 0xFB00), range(0x20000, 0x323B0))


def dedup_key(text: str) -> str:
    """The comparison form of one text (see the module docstring)."""
    return text.translate(_table())


def dedup_key_expr(column: str) -> pl.Expr:
    """`dedup_key` over a whole column: one `str.replace_many` pass with the same character table."""
    sources, targets = _pairs()
    return pl.col(column).str.replace_many(sources, targets)


@cache
def _table() -> dict[int, str]:
    return {ord(source): target for source, target in zip(*_pairs(), strict=True)}


@cache
def _pairs() -> tuple[list[str], list[str]]:
    """Every character the key changes, and what it becomes ("" where it is dropped)."""
    chinese = _chinese_families()
    sources: list[str] = []
    targets: list[str] = []
    for block in _SCANNED:
        for code in block:
            char = chr(code)
            if (
                not unicodedata.decomposition(char)
                and char.casefold() == char
                and char not in chinese
                and char not in _LOOK_ALIKES
                and not _dropped(char)
            ):
                continue  # the common case, decided without normalizing
            target = _fold(char, chinese)
            if target != char:
                sources.append(char)
                targets.append(target)
    return sources, targets


def _dropped(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "PZM" or category in ("Cc", "Cf") or char in _INVISIBLE or 0xE0000 <= ord(char) <= 0xE0FFF


def _fold(char: str, chinese: dict[str, str]) -> str:
    """What one character becomes, applied until nothing changes (a key of a key is the key)."""
    text = char
    for _ in range(4):
        if len(text) == 1 and 0xAC00 <= ord(text) <= 0xD7A3:
            return text  # a Hangul syllable: NFKD would split it into jamo, which is no folding
        folded = unicodedata.normalize("NFKD", text)
        folded = "".join(_LOOK_ALIKES.get(c, c) for c in folded if not _dropped(c))
        folded = unicodedata.normalize("NFKD", folded.casefold())
        folded = "".join(chinese.get(c, _LOOK_ALIKES.get(c, c)) for c in folded if not _dropped(c))
        if folded == text:
            break
        text = folded
    return text


def _chinese_families() -> dict[str, str]:
    """Each CJK character that has traditional/simplified variants → one member of its family (the simplified).

    Families are the connected pieces of the graph OpenCC's conversions draw, character by character and from
    its phrase dictionaries; a member no to-simplified conversion changes is preferred as the name, then the
    lowest code point.
    """
    import opencc  # the C++ OpenCC: converting all CJK code points at once takes ~0.1 s

    chars = [chr(code) for block in _CJK for code in block]
    joined = "\n".join(chars)  # newline-separated, so phrase rules never join two neighbours
    parent: dict[str, str] = {}

    def root(char: str) -> str:
        while parent.get(char, char) != char:
            parent[char] = parent.get(parent[char], parent[char])
            char = parent[char]
        return char

    changed_by: dict[str, int] = {}
    pairs: list[tuple[str, str, bool]] = []  # (source, target, whether target is the simplified side)
    for config in _TO_SIMPLIFIED + _TO_TRADITIONAL:
        converted = opencc.OpenCC(config).convert(joined).split("\n")
        pairs.extend((s, t, config in _TO_SIMPLIFIED) for s, t in zip(chars, converted, strict=True))
    pairs.extend(_phrase_pairs())
    for source, target, simplifies in pairs:
        if source == target or len(target) != 1:
            continue
        if simplifies:
            changed_by[source] = changed_by.get(source, 0) + 1
        parent.setdefault(source, source)
        parent.setdefault(target, target)
        a, b = root(source), root(target)
        if a != b:
            parent[a] = b
    families: dict[str, list[str]] = {}
    for char in parent:
        families.setdefault(root(char), []).append(char)
    mapping: dict[str, str] = {}
    for members in families.values():
        name = min(members, key=lambda c: (changed_by.get(c, 0), ord(c)))
        mapping.update({member: name for member in members if member != name})
    return mapping


def _phrase_pairs() -> list[tuple[str, str, bool]]:
    """Character pairs from OpenCC's phrase dictionaries: s2t writes 背着 as 揹着 and 回复 as 回覆, which no
    character-level conversion pairs. The dictionaries ship as binary tries; the wheel's own `opencc_dict` tool
    dumps them to text (~30 ms). Without the tool the families are character-level only, with a warning."""
    import opencc

    clib = Path(opencc.__file__).parent / "clib"
    tool = clib / "bin" / ("opencc_dict.exe" if os.name == "nt" else "opencc_dict")
    pairs: list[tuple[str, str, bool]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, simplifies in _PHRASE_DICTIONARIES:
            dumped = Path(scratch) / f"{name}.txt"
            command = [str(tool), "-i", str(clib / "share" / "opencc" / f"{name}.ocd2"), "-o", str(dumped)]
            try:
                subprocess.run([*command, "-f", "ocd2", "-t", "text"], check=True, capture_output=True, timeout=60)
                lines = dumped.read_text(encoding="utf-8").splitlines()
            except (OSError, subprocess.SubprocessError) as err:
                warnings.warn(
                    f"dedup keys: OpenCC phrase dictionary {name} unreadable ({err}); characters only", stacklevel=2
                )
                return []
            for line in lines:
                phrase, _, converted = line.partition("\t")
                for candidate in converted.split(" "):
                    if len(candidate) == len(phrase):  # aligned character by character
                        pairs.extend((a, b, simplifies) for a, b in zip(phrase, candidate, strict=True) if a != b)
    return pairs
