"""Personal data detectors: e-mails, phone numbers (Chinese mobiles too), Chinese ID numbers, bank cards.

Checksums keep false alarms down: a Chinese ID number must pass ISO 7064 mod 11-2 and hold a real birth date, a
bank card number must pass Luhn. A cheap pattern (`PII_HINT`) lets vectorised callers skip most texts.
"""

from __future__ import annotations

import datetime as dt
import re

# Any text with personal data matches this; most texts don't, so callers test it first (Polars-compatible).
PII_HINT = r"@|\d{7,}|\d{2,4}[ \-.)]{1,2}\d{3,4}[ \-.]\d{3,4}"

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_CN_MOBILE = re.compile(r"(?<![\d\-])(?:\+?86[\- ]?)?1[3-9]\d[\- ]?\d{4}[\- ]?\d{4}(?![\d\-])")
_PHONE = re.compile(
    r"(?<![\d\-])(?:(?:\+\d{1,3}[\- .]?)?(?:\(\d{2,4}\)[\- .]?|\d{2,4}[\- .])\d{3,4}[\- .]\d{3,4}"
    r"|0\d{2,3}-\d{7,8})(?![\d\-])"  # the second form: a Chinese landline, 010-62345678
)
_CN_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_CARD = re.compile(r"(?<![\d\-])(?:\d[ \-]?){12,18}\d(?![\d\-])")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def is_cn_id_number(text: str) -> bool:
    """An 18-character Chinese resident ID number with a valid birth date and check character."""
    if len(text) != 18 or not text[:17].isdigit():
        return False
    try:
        dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        return False
    total = sum(int(d) * w for d, w in zip(text[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == text[17].upper()


def passes_luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def find_pii(text: str) -> list[str]:
    """The kinds of personal data found in `text`, each once, in a fixed order; empty when there is none."""
    found: list[str] = []
    if _EMAIL.search(text):
        found.append("email")
    ids = [m.group() for m in _CN_ID.finditer(text) if is_cn_id_number(m.group())]
    if ids:
        found.append("cn_id_number")
    cards = [
        match.group()
        for match in _CARD.finditer(text)
        if 13 <= len(digits := re.sub(r"[ \-]", "", match.group())) <= 19 and digits not in ids and passes_luhn(digits)
    ]
    if cards:
        found.append("bank_card")
    rest = text
    for card in cards:  # a card's digit groups also look like a phone number
        rest = rest.replace(card, " ")
    if _CN_MOBILE.search(rest):
        found.append("cn_mobile")
    elif _PHONE.search(rest):
        found.append("phone")
    return found
