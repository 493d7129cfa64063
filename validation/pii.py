"""Personal data detectors for the build and the synthesizer, in English and Chinese text.

What is found (the `kind` of a `PiiFinding`):

- ``email``: ``local@domain.tld``, Unicode local parts and domains too (``张三@例子.中国``, ``user@bücher.de``,
  ``john＠example.com``); not file names (``icon@2x.png``).
- ``phone``: runs of digit groups (``+86 139 1234 5678``, ``0086-139…``, ``010 62345678``, ``(0755)88886666``,
  ``(415) 555-2671``, ``020 7946 0018``), each stretch of groups checked by phonenumbers' PhoneNumberMatcher at
  leniency VALID for the regions CN, US and GB (any region after ``+``; ``00`` is read as ``+``). phonenumbers
  calls many digit strings valid, so a national number must also be written as its region writes them: a Chinese
  mobile (1[3-9], 11 digits), 400/800 or a landline with its trunk 0; a British number with its 0; a US number
  grouped 3-3-4, or bare only after a phone word.
- ``cn_id_number``: the 18-character resident ID, also in groups (``110105 19491231 002X``), checked by
  `stdnum.cn.ric` (check character, birth date, a county that existed then).
- ``bank_card``: 13–19 digits, Luhn-valid, with a Visa, Mastercard, Amex, UnionPay, Discover or JCB prefix and
  one of that scheme's lengths.
- ``us_ssn`` (``123-45-6789`` valid for `stdnum.us.ssn`; spaced or bare only after "SSN"/"social security"),
  ``uk_nino`` (HMRC's rules: two prefix letters, six digits, A–D; so the specimen ``QQ 12 34 56 C`` is not one),
  ``iban`` (`stdnum.iban`, spaces allowed), ``passport`` (8–9 letters and digits within 30 characters after
  "passport"/"护照"), ``ip_address`` (IPv4 and IPv6 that `ipaddress` accepts; not loopback, unspecified,
  255.x, an address after "v"/"version", nor one whose parts are all below 32 unless an IP word names it:
  ``5.2.1.3`` is a section number far more often).
- ``street_address``: a house number, one to four capitalised words and a street word (``221B Baker Street``,
  ``1600 Pennsylvania Avenue NW``); in Chinese a road (路/街/巷/弄/胡同/大道) with a 号 number and the place names
  before it (``北京市海淀区中关村大街27号``), or a building with its unit or room (``3号楼2单元401室``).
- ``name_with_birth_date``: a full date of birth after a label (``DOB: 1984-03-12``, ``出生日期：1984年3月12日``,
  ``生于1984年3月12日``), after a capitalised name and "born" (``John Smith, born 12 March 1984``), or after a
  Chinese name and a gender (``张三，男，1984年3月12日出生``).

What is not flagged: amounts (digits before 元/块/万/亿/円/股/$/USD/a decimal part…, after ¥/$/RMB/CNY/USD…, or
just after a money word such as 营收/金额/成交额/revenue), numbers after tracking/order/invoice words (tracking,
parcel, waybill, 快递, 运单, 单号, 订单, 发票…; for cards also just before them) unless a card or phone word is
nearer, dates, years, prices, percentages, case numbers (``(2023)京0105刑初123号``), ICD codes, versions
(``3.10.4``, ``v1.2.3.4``), statute numbers, lab values (``BP 140/90``, ``HbA1c 7.2%``), counts and headings
before a street word (``Top 10 Wall Street banks``, ``in 1929 Wall Street``), and what courts pseudonymise
(``张某，男，1984年3月12日出生``, ``某某路88号``).

Known limits: numbers in Chinese numerals (一三九…) or written with digits NFKC does not make ASCII are not read;
15-digit pre-1999 Chinese IDs, other countries' national IDs and phone formats (a national number outside CN,
US and GB needs its ``+``), Diners and Maestro cards, lower-case IBANs and NI numbers, bare 10-digit US numbers
without a phone word, lower-case street words ("Baker street"), addresses without a house number, names with a
birth year only, dates of birth without a day, and context further than a few dozen characters away are missed.
In Chinese, where no space marks a word, an e-mail's local part or an address may start a few characters early.

Every detector reads a detection form of the text: each character replaced by its NFKC form, so full-width
digits, ``＠`` and ideographic spaces read as ASCII; a finding's ``start``/``end`` are mapped back to offsets in
the text passed in (NFKC may lengthen a character: ``…`` becomes ``...``).

`PII_HINT` is a cheap pattern, in syntax both Rust's `regex` (Polars) and Python's `re` accept, that every text
with a finding matches, as written and after NFKC: its classes name the full-width forms themselves, so no
caller has to normalise first. `find_pii` returns nothing for a text the hint misses, so prefiltering with it
loses nothing. (The engines disagree only on which few control characters are whitespace.)
"""

from __future__ import annotations

import bisect
import datetime as dt
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import phonenumbers
import polars as pl
from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum.cn import ric as _ric
from stdnum.us import ssn as _ssn

PII_KINDS: tuple[str, ...] = (
    "email",
    "phone",
    "cn_id_number",
    "bank_card",
    "us_ssn",
    "uk_nino",
    "iban",
    "passport",
    "ip_address",
    "street_address",
    "name_with_birth_date",
)


@dataclass(frozen=True)
class PiiFinding:
    """One piece of personal data: its kind, where it is in the text passed in, and its value masked."""

    kind: str
    start: int
    end: int
    masked: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.start} ({self.masked})"


# --- The prefilter --------------------------------------------------------------------------------------------
# One piece per detector. Each is lookaround-free (Rust `regex` has none) and matches, in the raw text and in its
# NFKC form, whatever that detector reports: `\d` and `\s` are Unicode in both engines (full-width digits,
# U+3000), and the classes name the full-width separators that NFKC would turn into ASCII.
_SEP = r"[\s()\-.（）－．]"
_STREET_NAMES = "Street|Avenue|Road|Boulevard|Lane|Drive|Court|Place|Square|Terrace|Way|Close|Crescent|Parkway|Highway"
_STREET_NAMES += "|Row|Mews|Grove|Gardens"
_STREET_ABBREVIATIONS = "St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Sq|Pkwy|Hwy"
_STREET_WORDS = f"{_STREET_NAMES}|{_STREET_ABBREVIATIONS}"
_HEX = r"[\dA-Fa-fＡ-Ｆａ-ｆ]"
_HINT_PIECES: dict[str, str] = {
    "email": r"[@＠﹫]",
    # Phones, cards, ids, SSNs: nine digits or more, not all of them an amount ("13500000000元" is common, and is
    # no phone: the detectors would say so too, but only after a trip through Python).
    "digits": rf"\d(?:{_SEP}{{0,3}}\d){{8,}}(?:[^\d元块万亿円圆%‰]|$)",
    "plus": rf"[+＋][\s(（]{{0,2}}\d(?:{_SEP}{{0,3}}\d){{5,}}",  # short international numbers
    "nino": r"[A-ZＡ-Ｚ]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-DＡ-Ｄ]",
    "iban": r"[A-ZＡ-Ｚ]{2}\d{2}(?:\s?(?:[A-ZＡ-Ｚ]|\d)){11}",
    "passport": r"[Pp]assport|PASSPORT|护照",
    "ipv4": r"\d{1,3}[.．]\d{1,3}[.．]\d{1,3}[.．]\d{1,3}",
    "ipv6": rf"{_HEX}{{1,4}}[:：][:：]|[:：][:：]{_HEX}{{1,4}}|{_HEX}{{1,4}}(?:[:：]{_HEX}{{1,4}}){{3}}",
    "address_en": rf"\d[A-Za-z]?(?:-\d{{1,5}})?(?:\s+[A-Z][A-Za-z'\-]*\.?){{1,4}}\s+(?:{_STREET_WORDS})",
    "address_zh": r"(?:路|街|巷|弄|同|道)\d{1,5}(?:[-－]\d{1,5})?号|\d{1,5}(?:号楼|栋|幢)",
    # A birth word with a digit close after it (or a date before 出生). No \b and no (?i): a Unicode word boundary
    # makes Rust's DFA give up on non-ASCII text, a hundred times slower.
    "birth": r"(?:[Bb]orn|[Bb]irth|DOB|D\.O\.B|\(b\.|出生|生于|生日)[^\n]{0,32}\d|\d\s{0,2}[日号]?\s{0,3}出生",
}
PII_HINT: str = "|".join(_HINT_PIECES.values())
_HINT = re.compile(PII_HINT)


# --- The detection form ---------------------------------------------------------------------------------------
class _NfkcTable(dict[int, str]):
    """`str.translate` table that fills itself: each character's own NFKC form."""

    def __missing__(self, code: int) -> str:
        value = self[code] = unicodedata.normalize("NFKC", chr(code))
        return value


_NFKC = _NfkcTable()


def _detection_form(text: str) -> tuple[str, list[int] | None]:
    """The text with each character in its NFKC form, and where each of its characters came from (None: 1:1).

    Character by character rather than NFKC of the whole, so that positions map back exactly; composition of
    combining marks is left out (the e-mail pattern accepts the marks instead)."""
    if text.isascii():
        return text, None
    form = text.translate(_NFKC)
    if len(form) == len(text):  # NFKC never deletes a character, so equal lengths mean one-to-one
        return form, None
    origin: list[int] = []
    for index, char in enumerate(text):
        origin.extend([index] * len(_NFKC[ord(char)]))
    return form, origin


# --- Shared context -------------------------------------------------------------------------------------------
_CJK = "\u3400-\u9fff\uf900-\ufaff"
_AMOUNT_AFTER = re.compile(
    r"\.[0-9]{1,2}(?![0-9])|\s*(?:元|块|万|亿|円|圆|角|股|美元|港元|港币|人民币|欧元|英镑|日元|韩元|%|‰|\$|¥|€|£"
    r"|(?i:usd|rmb|cny|eur|gbp|jpy|hkd|yuan|dollars?|pounds?|euros?|yen|bucks)(?![A-Za-z]))"
)
_AMOUNT_BEFORE = re.compile(r"(?:¥|\$|€|£|(?i:rmb|cny|usd|eur|gbp|hkd|jpy|us\$|hk\$))\s*$")
_MONEY_WORDS = re.compile(
    r"(?:额|成交|总额|价款|货款|价值|收入|营收|营业额|利润|净利|资产|负债|余额|罚款|罚金|赔偿|补偿|费用|成本|价格|售价|总价"
    r"|合计|共计|累计|市值|估值|融资|投资|贷款|借款|欠款|工资|薪资|奖金"
    r"|(?i:revenue|amount|total|sum|price|cost|fine|balance|worth|valued at|paid|budget|profit|sales|income"
    r"|loan|salary|fee))[^0-9\n。;；]{0,8}$"
)
_PHONE_WORDS = re.compile(
    r"电话|手机|联系|致电|拨打|热线|来电|短信|微信|传真|(?i:\btel\b|phone|\bcall|mobile|\bcell|\bfax|whatsapp|contact"
    r"|\bdial|\bsms|text me)"
)
_CARD_WORDS = re.compile(
    r"银行卡|信用卡|借记卡|储蓄卡|卡号|银联|刷卡|开户|账号|账户|(?i:card|visa|master ?card|amex|american express"
    r"|unionpay|discover|\bjcb\b|credit|debit|\bcvv|expir|account|acct)"
)
_ID_WORDS = re.compile(  # numbers that name a thing, not a person
    r"快递|运单|单号|订单|物流|包裹|发票|票号|编号|流水号|货号|条码|序列号|(?i:tracking|\btrack|parcel|package|shipment"
    r"|shipping|consignment|waybill|\border|invoice|receipt|reference|\bref\b|\bawb\b|courier|delivery|\bups\b|fedex"
    r"|\bdhl\b|\busps\b|isbn|serial|\bsku\b|barcode|\bimei\b)"
)


def _last(pattern: re.Pattern[str], window: str) -> int:
    """Where the last match of `pattern` in `window` ends, or -1."""
    end = -1
    for match in pattern.finditer(window):
        end = match.end()
    return end


def _is_amount(t: str, start: int, end: int, *, money_words: bool = True) -> bool:
    """Digits written as money: a currency after or before them, or (`money_words`) a money word just before."""
    before = t[max(0, start - 24) : start]
    if _AMOUNT_AFTER.match(t, end) or _AMOUNT_BEFORE.search(before):
        return True
    return money_words and bool(_MONEY_WORDS.search(before)) and _last(_PHONE_WORDS, before) < 0


def _names_a_thing(t: str, start: int, end: int, owner: re.Pattern[str], *, after: bool = True) -> bool:
    """A tracking/order/invoice word near the number, and no word of its own kind (`owner`) nearer. Before it, or
    (`after`) just after it when nothing before says either ("4111… is the waybill number")."""
    before = t[max(0, start - 40) : start]
    thing_before, owner_before = _last(_ID_WORDS, before), _last(owner, before)
    if thing_before >= 0 and thing_before > owner_before:
        return True
    if after and thing_before < 0 and owner_before < 0 and not owner.search(t, end, end + 25):
        return bool(_ID_WORDS.search(t, end, end + 25))
    return False


# --- Detectors: each yields (start, end) in the detection form -------------------------------------------------
_Detector = Callable[[str], Iterator[tuple[int, int]]]

# Lengths bounded as RFC 5321 bounds them, which also keeps the search linear in long texts.
_EMAIL = re.compile(
    r"[\w.%+\-\u0300-\u036f]{1,64}@(?:[^\W_](?:[\w\-\u0300-\u036f]{0,61}[^\W_])?\.){1,8}"
    r"(?:xn--[A-Za-z0-9\-]{1,59}|[^\W\d_][\w\-\u0300-\u036f]{0,62})"
)
_CJK_RUN = re.compile(f"[{_CJK}]+")
_CJK_TLDS = ("中国", "中國", "公司", "网络", "網絡", "香港", "台湾", "台灣", "新加坡", "在线", "商城", "网址", "集团")
# "icon@2x.png", "合同@2023.pdf": file names, not addresses
_FILE_SUFFIXES = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "pdf", "doc", "docx", "xls", "xlsx"}
    | {"ppt", "pptx", "txt", "csv", "rar"}
)


def _emails(t: str) -> Iterator[tuple[int, int]]:
    if "@" not in t:
        return
    for match in _EMAIL.finditer(t):
        start, end = match.span()
        local, domain = match.group().split("@", 1)
        # Chinese has no spaces: words before an ASCII local part are not part of it.
        lead = re.match(f"[{_CJK}]+(?=[A-Za-z0-9])", local)
        if lead:
            start += lead.end()
        head, _, tld = domain.rpartition(".")
        if tld[:1].isascii():  # an ASCII top-level domain ends where the letters do (Chinese may follow)
            tld = tld if tld.lower().startswith("xn--") else re.match(r"[A-Za-z]*", tld).group()
            if len(tld) < 2 or tld.lower() in _FILE_SUFFIXES:
                continue
        elif _CJK_RUN.match(tld):
            tld = next((known for known in _CJK_TLDS if tld.startswith(known)), tld[:2])
        end = match.start() + len(local) + 1 + len(head) + 1 + len(tld)
        yield start, end


_IPV4 = re.compile(r"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9]|\.[0-9])")
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f:]{2,35}:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9A-Fa-f:]{2,39})(?![0-9A-Za-z:])"
)
_IP_WORDS = re.compile(r"(?i:\bip\b|address|server|host|login|地址|服务器|登录)")
_VERSION_BEFORE = re.compile(r"(?i:(?<![A-Za-z])v|\bver\.?|version|release|build|版本号?)\s*[:：]?\s*$")
_IPV6_PIECE = re.compile(_HINT_PIECES["ipv6"])


def _ip_addresses(t: str) -> Iterator[tuple[int, int]]:
    # IPv6 first: "::ffff:192.0.2.1" holds an IPv4 address, and the first one found keeps the span.
    if "::" in t or t.count(":") >= 3:
        for match in _IPV6.finditer(t):
            text = match.group()
            if text.count(":") < 2 or not _IPV6_PIECE.search(text):
                continue
            try:
                address = ipaddress.IPv6Address(text)
            except ValueError:
                continue
            hex_digits = sum(c in "0123456789abcdefABCDEF" for c in text.split(".")[0])
            if not (address.is_loopback or address.is_unspecified) and hex_digits >= 5:
                yield match.span()
    if "." in t:
        for match in _IPV4.finditer(t):
            try:
                address = ipaddress.IPv4Address(match.group())
            except ValueError:
                continue
            parts = [int(part) for part in match.group().split(".")]
            if address.is_loopback or address.is_unspecified or parts[0] == 255:  # not a host's address
                continue
            # "5.2.1.3", "1.5.10.20": sections and dose ladders far more often than hosts; only when named as one
            if max(parts) < 32 and not _IP_WORDS.search(t[max(0, match.start() - 20) : match.start()]):
                continue
            if not _VERSION_BEFORE.search(t[max(0, match.start() - 12) : match.start()]):
                yield match.span()


_CN_ID = re.compile(
    r"(?<![0-9A-Za-z])[1-9][0-9]{5}[ \-]?(?:18|19|20)[0-9]{2}[ \-]?[0-9]{4}[ \-]?[0-9]{3}[0-9Xx](?![0-9A-Za-z])"
)


_UNIT_AFTER = frozenset("元块万亿円圆%‰")  # the hint's digits piece leaves out digits right before these


def _cn_ids(t: str) -> Iterator[tuple[int, int]]:
    for match in _CN_ID.finditer(t):
        if t[match.end() : match.end() + 1] in _UNIT_AFTER:
            continue
        if _ric.is_valid(_CARD_SEPARATORS.sub("", match.group()).upper()):
            yield match.span()


_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}")


def _ibans(t: str) -> Iterator[tuple[int, int]]:
    for match in _IBAN.finditer(t):
        text = match.group()
        compact = text.replace(" ", "")
        # The pattern runs on into capitalised words after the number: the longest valid prefix is the IBAN.
        for length in range(len(compact), 14, -1):
            if _iban.is_valid(compact[:length]):
                seen, cut = 0, 0
                while seen < length:
                    seen += text[cut] != " "
                    cut += 1
                if cut == len(text) or text[cut] == " " or not text[cut - 1].isalnum():
                    yield match.start(), match.start() + cut
                break


_SSN = re.compile(r"(?<![0-9\-])[0-9]{3}([\- ]?)[0-9]{2}\1[0-9]{4}(?![0-9]|-[0-9])")
_SSN_WORDS = re.compile(r"(?i:\bssn|social security|社会安全号|社会保障号)")


def _ssns(t: str) -> Iterator[tuple[int, int]]:
    for match in _SSN.finditer(t):
        if t[match.end() : match.end() + 1] in _UNIT_AFTER:
            continue
        # Only the hyphenated form stands alone; a bare or spaced one needs to be named.
        if match.group(1) != "-" and not _SSN_WORDS.search(t[max(0, match.start() - 30) : match.start()]):
            continue
        if _ssn.is_valid(match.group().replace(" ", "-")):
            yield match.span()


_NINO = re.compile(
    r"(?<![A-Za-z0-9])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])"
)
_NINO_INVALID_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def _ninos(t: str) -> Iterator[tuple[int, int]]:
    for match in _NINO.finditer(t):
        if match.group(1) not in _NINO_INVALID_PREFIXES:
            yield match.span()


# A run of digit groups; the groups are cut into card-sized pieces below.
_DIGIT_GROUPS = re.compile(r"(?<![0-9])(?<![0-9][ \-])[0-9](?:[ \-]?[0-9]){12,}")  # 13 digits or more
_GROUP = re.compile(r"[0-9]+")
_CARD_SEPARATORS = re.compile(r"[ \-]")


def _card_scheme_fits(digits: str) -> bool:
    """A known scheme's prefix (IIN) and one of its lengths."""
    n, two, four = len(digits), int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # Amex
    if two in (62, 65) or four == 6011 or 644 <= int(digits[:3]) <= 649 or 3528 <= four <= 3589:
        return 16 <= n <= 19  # UnionPay, Discover, JCB
    return False


def _stretches(groups: list[tuple[int, int]], i: int, least: int, most: int, shortest: int) -> list[int]:
    """The last groups j (longest first) such that groups i..j hold `least` to `most` digits, and every group after
    the first `shortest` digits or more: the search over a run of digit groups stays linear however long it is."""
    ends, digits = [], 0
    for j in range(i, len(groups)):
        size = groups[j][1] - groups[j][0]
        digits += size
        if digits > most or (j > i and size < shortest):
            break
        if digits >= least:
            ends.append(j)
    return ends[::-1]


def _bank_cards(t: str) -> Iterator[tuple[int, int]]:
    for run in _DIGIT_GROUPS.finditer(t):
        groups = [(g.start(), g.end()) for g in _GROUP.finditer(run.group())]
        i = 0
        while i < len(groups):
            found = False
            # cards come in groups of 3 or more digits (4-4-4-4, 4-6-5, 4-4-4-4-3), or in one group
            first_fits = groups[i][1] - groups[i][0] >= 3
            for j in _stretches(groups, i, 13, 19, 3):
                if j > i and not first_fits:
                    continue
                start, end = run.start() + groups[i][0], run.start() + groups[j][1]
                digits = _CARD_SEPARATORS.sub("", t[start:end])
                if len(digits) < 13 or not _card_scheme_fits(digits) or not _luhn.is_valid(digits):
                    continue
                # "paid with 4111…": a money word is where a card is expected, only a currency makes it an amount
                if _is_amount(t, start, end, money_words=False) or _names_a_thing(t, start, end, _CARD_WORDS):
                    continue
                yield start, end
                i, found = j + 1, True
                break
            if not found:
                i += 1


_PASSPORT_WORD = re.compile(r"[Pp]assport|PASSPORT|护照")
_PASSPORT_NUMBER = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z]{1,2}[0-9]{6,8}|[0-9]{8,9})(?![A-Za-z0-9])")


def _passports(t: str) -> Iterator[tuple[int, int]]:
    for word in _PASSPORT_WORD.finditer(t):
        window_end = min(len(t), word.end() + 30)
        stop = re.search(r"[\n。;；!?！？]", t[word.end() : window_end])
        if stop:
            window_end = word.end() + stop.start()
        number = _PASSPORT_NUMBER.search(t, word.end(), window_end)
        if number and 8 <= len(number.group()) <= 9:
            yield number.span()


# Digits with the separators phone numbers are written with; a country code may lead with + or 00.
_PHONE_RUN = re.compile(
    r"(?<![0-9A-Za-z+])(?:\+ ?|\(\+?)?[0-9](?:[0-9]|[ \-.]{1,2}(?=\(?[0-9])|\)[ \-.]?(?=[0-9])|\((?=[0-9]))*"
)
_CN_NATIONAL = re.compile(r"1[3-9][0-9]{9}|0[1-9][0-9]{8,10}|[48]00[0-9]{7}")
_US_GROUPED = re.compile(r"(?:1[ \-.]?)?(?:\([0-9]{3}\) ?|[0-9]{3}[ \-.])[0-9]{3}[ \-.][0-9]{4}")
_NOT_DIGIT = re.compile(r"[^0-9]")
_INTERNATIONAL_PREFIX = re.compile(r"^(\(?)00(?=[1-9])")


def _phone_regions(number: str, t: str, at: int) -> tuple[str, ...]:
    """The regions `number` could be written in. phonenumbers calls many digit strings valid (a Chinese number
    without its trunk 0, any ten digits in the US), so a national number must also be written the way its region
    writes them: a Chinese mobile, 400/800 or 0-landline; a British 0 number; a US number grouped 3-3-4 (or one
    that a phone word names)."""
    if number.lstrip("( ").startswith("+"):
        return ("ZZ",) if 7 <= len(_NOT_DIGIT.sub("", number)) <= 15 else ()
    digits = _NOT_DIGIT.sub("", number)
    regions = []
    if _CN_NATIONAL.fullmatch(digits):
        regions.append("CN")
    if digits.startswith("0") and 10 <= len(digits) <= 11:
        regions.append("GB")
    us_length = len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")
    if us_length and (_US_GROUPED.fullmatch(number) or _PHONE_WORDS.search(t[max(0, at - 20) : at])):
        regions.append("US")
    return tuple(regions)


def _is_valid_phone(number: str, region: str) -> bool:
    """PhoneNumberMatcher at leniency VALID (a valid number, written with valid punctuation) reads all of it."""
    matcher = phonenumbers.PhoneNumberMatcher(number, region, leniency=phonenumbers.Leniency.VALID)
    return any(match.start == 0 and match.end == len(number) for match in matcher)


def _phones(t: str) -> Iterator[tuple[int, int]]:
    for run in _PHONE_RUN.finditer(t):
        text = run.group()
        digits = sum(c.isdigit() for c in text)
        if digits < (7 if text.startswith(("+", "(+", "00")) else 9):
            continue
        if t[run.end() : run.end() + 1].isascii() and t[run.end() : run.end() + 1].isalpha():
            continue  # "13912345678abc": a code, not a number
        # "0086 139…": the matcher reads 00 only where it is the region's own prefix; "+ 86" every region reads,
        # and it keeps the length, so positions stay put.
        text = _INTERNATIONAL_PREFIX.sub(r"\1+ ", text)
        groups = [(g.start(), g.end()) for g in _GROUP.finditer(text)]
        # The longest stretch of groups from each group on that is a phone number: a run may hold two numbers
        # ("13912345678 13812345678") or a number after a decimal ("10.50 139 1234 5678").
        i = 0
        while i < len(groups):
            # E.164: at most 15 digits; a national number has 9 or more, an international one 7 or more
            # and its groups after the first (a country code, a trunk 1) have 2 digits or more
            least = 7 if text[: groups[i][0]].rstrip().endswith("+") else 9
            for j in _stretches(groups, i, least, 15, 2):
                start, end = groups[i][0], groups[j][1]
                lead = text[:start].rstrip()
                if lead.endswith("+"):
                    start = len(lead) - 1
                if text[start - 1 : start] == "(":
                    start -= 1
                number, at, to = text[start:end], run.start() + start, run.start() + end
                regions = _phone_regions(number, t, at)
                # An order word only counts before a phone number: "13912345678，订单已发货" is a phone
                if not regions or _is_amount(t, at, to) or _names_a_thing(t, at, to, _PHONE_WORDS, after=False):
                    continue
                if any(_is_valid_phone(number, region) for region in regions):
                    yield at, to
                    i = j
                    break
            i += 1


_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
    r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
# Whitespace is bounded throughout, so that the hint's gap between a birth word and the first digit covers it.
_DATE = (
    rf"(?:[0-9]{{1,2}}(?:st|nd|rd|th)?\s{{1,3}}(?:of\s{{1,3}})?{_MONTHS}\.?,?\s{{1,3}}[0-9]{{4}}"
    rf"|{_MONTHS}\.?\s{{1,3}}[0-9]{{1,2}}(?:st|nd|rd|th)?,?\s{{1,3}}[0-9]{{4}}"
    r"|[0-9]{4}\s{0,2}年\s{0,2}[0-9]{1,2}\s{0,2}月\s{0,2}[0-9]{1,2}\s{0,2}[日号]?"
    r"|[0-9]{4}[\-/.][0-9]{1,2}[\-/.][0-9]{1,2}|[0-9]{1,2}[\-/.][0-9]{1,2}[\-/.][0-9]{4})"
)
_NAME_EN = r"[A-Z][a-z]+(?:['\-][A-Z]?[a-z]+)?(?:\s(?:[A-Z]\.|[A-Z][a-z]+(?:['\-][A-Z]?[a-z]+)?)){1,3}"
_ZH_ROLE = r"(?:被告人|被告|原告|犯罪嫌疑人|上诉人|被上诉人|申请人|被申请人|患者|罪犯|第三人)?"
_BIRTH = re.compile(
    r"(?P<label>\b(?:DOB|D\.O\.B\.?|[Dd]ate\s{1,3}of\s{1,3}[Bb]irth|[Bb]irth\s{0,3}[Dd]ate|[Bb]irthday|Born)"
    rf"\s{{0,3}}(?:[:：\-–]|is\b|was\b)?\s{{0,3}}(?P<d1>{_DATE}))"
    rf"|(?P<name>{_NAME_EN}),?\s{{1,3}}(?:\((?:born|b\.)|(?:was\s{{1,3}})?born)\s{{1,3}}(?:on\s{{1,3}})?(?P<d2>{_DATE})"
    rf"|(?P<zh_label>(?:出生日期|出生年月日|出生时间|生日|出生于|生于)\s{{0,3}}[:：为是]?\s{{0,3}}(?P<d3>{_DATE}))"
    rf"|(?P<zh_name>{_ZH_ROLE}(?P<zh_person>[{_CJK}]{{2,4}}))[，,]\s*[男女]\s*[，,]\s*(?:[^，,。\n]{{1,8}}[，,]\s*){{0,2}}"
    rf"(?P<d4>{_DATE})\s{{0,3}}出生"
)
_NOT_NAMES = frozenset(
    {"The", "A", "An", "This", "That", "These", "Those", "It", "He", "She", "They", "We", "I", "You", "His", "Her"}
    | {"Its", "Our", "Their", "My", "Your", "In", "On", "At", "When", "If"}
)


def _date_is_real(text: str) -> bool:
    numbers = [int(n) for n in re.findall(r"[0-9]+", text)]
    month_name = re.search(r"[A-Za-z]{3}", text)
    if month_name:
        day, year = [*numbers, 0, 0][:2]
        month = 1 + [m[:3] for m in _MONTH_NAMES].index(month_name.group()[:3].title())
        candidates = [(year, month, day)]
    elif len(numbers) == 3 and numbers[0] > 31:
        candidates = [(numbers[0], numbers[1], numbers[2])]
    elif len(numbers) == 3:
        candidates = [(numbers[2], numbers[1], numbers[0]), (numbers[2], numbers[0], numbers[1])]
    else:
        return False
    for year, month, day in candidates:
        try:
            if 1900 <= year <= dt.date.today().year and dt.date(year, month, day):
                return True
        except ValueError:
            continue
    return False


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _birth_dates(t: str) -> Iterator[tuple[int, int]]:
    for match in _BIRTH.finditer(t):
        date = next(d for d in (match.group(f"d{i}") for i in range(1, 5)) if d)
        if not _date_is_real(date):
            continue
        start = match.start()
        if match.group("name"):
            words = match.group("name").split()
            while words and words[0] in _NOT_NAMES:
                start += t[start:].index(words[0]) + len(words[0])
                words = words[1:]
            if len(words) < 2:
                continue
            start += len(t[start:]) - len(t[start:].lstrip())
        if match.group("zh_name") and re.search(r"某|[×*＊xX]", match.group("zh_person")):
            continue  # a pseudonymised name (张某): the date alone points at no one
        yield start, match.end()


_ADDRESS_EN = re.compile(
    r"(?<![0-9A-Za-z])(?P<number>[0-9]{1,5})[A-Za-z]?(?:-[0-9]{1,5})?\s+(?:[A-Z][A-Za-z'\-]*\.?\s+){0,3}"
    rf"[A-Z][A-Za-z'\-]*\s+(?:(?:{_STREET_NAMES})\b|(?:{_STREET_ABBREVIATIONS})\b\.?)(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b)?"
)
_YEAR_BEFORE = re.compile(r"(?i:\b(?:in|since|by|until|from|of|year|during|before|after|around|circa|the))\s+$")
# "Top 10 Wall Street banks", "Chapter 11 Bankruptcy Court": a count or a heading, not a house number.
_NOT_HOUSE_NUMBER = re.compile(
    r"(?i:\b(?:top|chapter|section|article|part|figure|table|page|step|rule|schedule|item|no\.?|number))\s+$"
)
_ADDRESS_ZH = re.compile(
    r"(?:(?:路|街|巷|弄|胡同|大道)[0-9]{1,5}(?:-[0-9]{1,5})?号(?!线)|(?<![0-9])[0-9]{1,4}(?:号楼|栋|幢)"
    r"(?=[0-9]{1,3}单元|[0-9]{3,5}(?:室|房)))"
    r"(?:[0-9]{1,4}(?:号楼|栋|幢|座))?(?:[0-9]{1,3}单元)?(?:[0-9]{2,5}(?:室|房|号))?"
)
_PLACE_BEFORE = re.compile(rf"[{_CJK}A-Za-z]{{1,16}}$")
_NOT_PLACE = re.compile(r".*(?:住在|住址|地址|位于|坐落于|寄往|寄到|送到|送往|来自|搬到|在|于|是|为|到|址|住)")


def _street_addresses(t: str) -> Iterator[tuple[int, int]]:
    for match in _ADDRESS_EN.finditer(t):
        if _NOT_HOUSE_NUMBER.search(t[max(0, match.start() - 10) : match.start()]):
            continue
        number = match.group("number")
        year_like = len(number) == 4 and 1800 <= int(number) <= 2099
        if year_like and _YEAR_BEFORE.search(t[max(0, match.start() - 10) : match.start()]):
            continue  # "in 1929 Wall Street crashed": a year
        yield match.span()
    for match in _ADDRESS_ZH.finditer(t):
        place = _PLACE_BEFORE.search(t, max(0, match.start() - 16), match.start())
        if not place:
            continue
        lead = _NOT_PLACE.match(place.group())
        start = place.start() + (lead.end() if lead and lead.end() < len(place.group()) else 0)
        if "某" not in t[start : match.start()]:  # 某某路88号: pseudonymised, as court documents write them
            yield start, match.end()


# In priority order: where two overlap, the earlier kind keeps the span (an e-mail's digits are no phone).
_DETECTORS: tuple[tuple[str, _Detector], ...] = (
    ("email", _emails),
    ("ip_address", _ip_addresses),
    ("cn_id_number", _cn_ids),
    ("iban", _ibans),
    ("us_ssn", _ssns),
    ("uk_nino", _ninos),
    ("bank_card", _bank_cards),
    ("passport", _passports),
    ("phone", _phones),
    ("name_with_birth_date", _birth_dates),
    ("street_address", _street_addresses),
)


def _searches(pattern: str) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda t: compiled.search(t) is not None


_UPPER_DIGITS = re.compile(r"[A-Z]{2} ?[0-9]{2}")
_BIRTH_WORDS = ("orn", "irth", "DOB", "D.O.B", "(b.", "出生", "生于", "生日")
_birth_piece = _searches(_HINT_PIECES["birth"])
# Cheap necessary conditions, one per hint piece, on the detection form (ASCII digits, @, :, +): a detector runs
# only where its gate opens. They only save time; the hint itself is checked on every text with a finding.
_GATES: dict[str, Callable[[str], bool]] = {
    "email": lambda t: "@" in t,
    "digits": _searches(_HINT_PIECES["digits"]),
    "plus": lambda t: "+" in t,
    "nino": lambda t: _UPPER_DIGITS.search(t) is not None,
    "iban": lambda t: _UPPER_DIGITS.search(t) is not None,
    "passport": lambda t: "assport" in t or "ASSPORT" in t or "护照" in t,
    "ipv4": lambda t: "." in t,
    "ipv6": lambda t: "::" in t or t.count(":") >= 3,
    "address_en": _searches(_HINT_PIECES["address_en"]),
    "address_zh": lambda t: "号" in t or "栋" in t or "幢" in t,
    "birth": lambda t: any(word in t for word in _BIRTH_WORDS) and _birth_piece(t),
}
_PIECE_KINDS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "digits": ("phone", "cn_id_number", "bank_card", "us_ssn"),
    "plus": ("phone",),
    "nino": ("uk_nino",),
    "iban": ("iban",),
    "passport": ("passport",),
    "ipv4": ("ip_address",),
    "ipv6": ("ip_address",),
    "address_en": ("street_address",),
    "address_zh": ("street_address",),
    "birth": ("name_with_birth_date",),
}
assert set(_PIECE_KINDS) == set(_HINT_PIECES) == set(_GATES)
assert {kind for kinds in _PIECE_KINDS.values() for kind in kinds} == set(PII_KINDS)


# --- Masking --------------------------------------------------------------------------------------------------
def _mask_part(value: str, head: int, tail: int) -> str:
    middle = value[head : len(value) - tail] if tail else value[head:]
    masked = "".join("*" if c.isalnum() else c for c in middle)
    return value[:head] + masked + (value[len(value) - tail :] if tail else "")


def _mask(value: str, kind: str) -> str:
    """The first 2–3 and last 2 characters shown, letters and digits between them starred."""
    if kind == "email" and "@" in unicodedata.normalize("NFKC", value):
        at = next(i for i, c in enumerate(value) if unicodedata.normalize("NFKC", c) == "@")
        local, domain = value[:at], value[at + 1 :]
        name, dot, tld = domain.rpartition(".")
        labels = ".".join(_mask_part(label, 1, 0) for label in name.split("."))
        return f"{_mask_part(local, 1, 0)}{value[at]}{labels}{dot}{tld}"
    n = len(value)
    head = 3 if n >= 10 else 2 if n >= 6 else 1
    return _mask_part(value, head, 2 if n >= 6 else 1 if n >= 3 else 0)


# --- The interface --------------------------------------------------------------------------------------------
def find_pii(text: str) -> list[PiiFinding]:
    """All personal data in `text`, in text order, none overlapping; empty when there is none."""
    form, origin = _detection_form(text)
    kinds = {kind for piece, gate in _GATES.items() if gate(form) for kind in _PIECE_KINDS[piece]}
    if not kinds:
        return []
    spans: list[tuple[int, int, str]] = []  # sorted, none overlapping
    for kind, detect in _DETECTORS:
        if kind not in kinds:
            continue
        for start, end in detect(form):
            at = bisect.bisect_left(spans, (start, end, kind))
            if start < end and (at == 0 or spans[at - 1][1] <= start) and (at == len(spans) or end <= spans[at][0]):
                spans.insert(at, (start, end, kind))
    if spans and not (_HINT.search(text) and (form is text or _HINT.search(unicodedata.normalize("NFKC", text)))):
        return []  # a prefilter may run on the text as written or after NFKC: never find what it would not let by
    findings = []
    for start, end, kind in spans:
        if origin is not None:
            start, end = origin[start], origin[end - 1] + 1
        findings.append(PiiFinding(kind, start, end, _mask(text[start:end], kind)))
    return findings


def pii_problems(frame: pl.DataFrame, fields: Sequence[str]) -> pl.Series:
    """One String value per row: null when no field holds personal data, else a reason naming each field, kind,
    position and masked value, e.g. 'input: phone at 41 (139******78); output: email at 3 (j***@e******.com)'.

    The prefilter is vectorised (`PII_HINT` in Polars, on the text as written: the hint already reads full-width
    forms, and NFKC over every row would cost more than the rest); only hinted rows go through `find_pii`."""
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        raise ValueError(f"pii_problems: no field {', '.join(map(repr, missing))} in the frame ({frame.columns})")
    wrong = [f for f in fields if frame.schema[f] != pl.String]
    if wrong:
        raise TypeError(f"pii_problems: fields must be text, {', '.join(f'{f!r} is {frame.schema[f]}' for f in wrong)}")
    reasons: list[str | None] = [None] * frame.height
    if not fields or frame.is_empty():
        return pl.Series("pii", reasons, pl.String)
    hinted = frame.select(
        pl.int_range(pl.len()).alias("_row"),
        *(pl.col(f).str.contains(PII_HINT).fill_null(False).alias(f"_hint_{i}") for i, f in enumerate(fields)),
        *fields,
    ).filter(pl.any_horizontal(f"_hint_{i}" for i in range(len(fields))))
    for row in hinted.iter_rows():
        index, hints, values = row[0], row[1 : 1 + len(fields)], row[1 + len(fields) :]
        parts = []
        for field_name, hint, value in zip(fields, hints, values, strict=True):
            if hint and (found := find_pii(value)):
                parts.append(f"{field_name}: {', '.join(map(str, found))}")
        if parts:
            reasons[index] = "; ".join(parts)
    return pl.Series("pii", reasons, pl.String)
