"""Personal data: each kind found in its usual formats (en and zh), the numbers that only look like it left alone,
positions in the text as written (full-width too), the prefilter a superset of the detector, and the frame API."""

from __future__ import annotations

import itertools
import random
import re
import unicodedata

import phonenumbers
import polars as pl
import pytest
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.cn import ric
from stdnum.us import ssn as stdnum_ssn

from validation.pii import PII_HINT, PII_KINDS, PiiFinding, find_pii, pii_problems

HINT = re.compile(PII_HINT)

# (text, [(kind, the exact text of the finding), ...]) — the finding's position is checked through its text.
POSITIVE: list[tuple[str, list[tuple[str, str]]]] = [
    # phones, Chinese
    ("联系电话0086-139-1234-5678，请尽快回复。", [("phone", "0086-139-1234-5678")]),
    ("办公室电话010 62345678，工作日接听。", [("phone", "010 62345678")]),
    ("深圳总部(0755)88886666转前台。", [("phone", "(0755)88886666")]),
    ("我的手机是+86 139 1234 5678。", [("phone", "+86 139 1234 5678")]),
    ("锦程科技董秘手机13812345678被挂在网上。", [("phone", "13812345678")]),
    ("请拨打139-1234-5678或010-62345678。", [("phone", "139-1234-5678"), ("phone", "010-62345678")]),
    ("手机１３９１２３４５６７８，随时联系。", [("phone", "１３９１２３４５６７８")]),
    ('{"name":"王芳","phone":"１３９１２３４５６７８"}', [("phone", "１３９１２３４５６７８")]),
    ("客服热线400-810-8888。", [("phone", "400-810-8888")]),
    ("两个号码：13912345678 13812345678", [("phone", "13912345678"), ("phone", "13812345678")]),
    ("血压10.50 139 1234 5678是他的电话", [("phone", "139 1234 5678")]),
    # phones, US and UK
    ("Call me on 415-555-2671.", [("phone", "415-555-2671")]),
    ("Reach the office at (415) 555-2671 after nine.", [("phone", "(415) 555-2671")]),
    ("Her number is +1 415 555 2671, text first.", [("phone", "+1 415 555 2671")]),
    ("The London desk is on 020 7946 0018.", [("phone", "020 7946 0018")]),
    ("Ring +44 20 7946 0958 for the claims team.", [("phone", "+44 20 7946 0958")]),
    ("phone: 4155552671", [("phone", "4155552671")]),
    # e-mail
    ("Investors e-mailed ir.desk@quarrypeak-mining.com after the cut.", [("email", "ir.desk@quarrypeak-mining.com")]),
    ("张三@例子.中国", [("email", "张三@例子.中国")]),
    ("write to user@bücher.de today", [("email", "user@bücher.de")]),
    ("邮箱：john＠example.com，谢谢", [("email", "john＠example.com")]),
    ("请发邮件至john.doe@example.com谢谢", [("email", "john.doe@example.com")]),
    ("contact: li.wei+hr@mail.example.co.uk.", [("email", "li.wei+hr@mail.example.co.uk")]),
    # Chinese resident ID
    ("实控人身份证号110105194912310011被曝光", [("cn_id_number", "110105194912310011")]),
    ("身份证：110105 19491231 002X", [("cn_id_number", "110105 19491231 002X")]),
    ("ID 11010519491231002x was leaked", [("cn_id_number", "11010519491231002x")]),
    ("证件号１１０１０５１９４９１２３１００１１。", [("cn_id_number", "１１０１０５１９４９１２３１００１１")]),
    # bank cards
    ("Rowan Bank card 4111 1111 1111 1111 was leaked.", [("bank_card", "4111 1111 1111 1111")]),
    ("银行卡号6222021234567890128，开户行工商银行", [("bank_card", "6222021234567890128")]),
    ("Amex 3782 822463 10005 on file", [("bank_card", "3782 822463 10005")]),
    ("Mastercard 5555-5555-5555-4444 expired", [("bank_card", "5555-5555-5555-4444")]),
    ("paid with 4111111111111111 yesterday", [("bank_card", "4111111111111111")]),
    ("order 123 paid by credit card 4111111111111111", [("bank_card", "4111111111111111")]),
    # US SSN, UK NI number
    ("SSN 123-45-6789 on the form", [("us_ssn", "123-45-6789")]),
    ("Social security number: 123 45 6789", [("us_ssn", "123 45 6789")]),
    ("his ssn is 123456789", [("us_ssn", "123456789")]),
    ("NI number AB 12 34 56 C", [("uk_nino", "AB 12 34 56 C")]),
    ("National Insurance JG103759A.", [("uk_nino", "JG103759A")]),
    # IBAN
    ("IBAN DE89 3704 0044 0532 0130 00 Thanks", [("iban", "DE89 3704 0044 0532 0130 00")]),
    ("请汇款至GB82WEST12345698765432。", [("iban", "GB82WEST12345698765432")]),
    ("pay FR14 2004 1010 0505 0001 3M02 606 by Friday", [("iban", "FR14 2004 1010 0505 0001 3M02 606")]),
    # passports
    ("Passport No. E12345678, issued 2019", [("passport", "E12345678")]),
    ("护照号码：G12345678", [("passport", "G12345678")]),
    ("his passport number is 123456789.", [("passport", "123456789")]),
    ("护照EA1234567已过期", [("passport", "EA1234567")]),
    # IP addresses
    ("login from 203.0.113.7 failed", [("ip_address", "203.0.113.7")]),
    ("客户IP为58.217.200.15，请核查", [("ip_address", "58.217.200.15")]),
    ("fe80::1ff:fe23:4567:890a is the router", [("ip_address", "fe80::1ff:fe23:4567:890a")]),
    ("address 2001:db8:85a3::8a2e:370:7334.", [("ip_address", "2001:db8:85a3::8a2e:370:7334")]),
    ("mapped ::ffff:192.0.2.1 here", [("ip_address", "::ffff:192.0.2.1")]),
    ("the server IP is 10.0.0.12", [("ip_address", "10.0.0.12")]),
    # street addresses
    ("He lives at 221B Baker Street, London.", [("street_address", "221B Baker Street")]),
    ("Send it to 1600 Pennsylvania Avenue NW, Washington.", [("street_address", "1600 Pennsylvania Avenue NW")]),
    ("moved to 42 Elm Rd. last May", [("street_address", "42 Elm Rd.")]),
    ("北京市海淀区中关村大街27号", [("street_address", "北京市海淀区中关村大街27号")]),
    ("他住在北京市海淀区中关村大街27号。", [("street_address", "北京市海淀区中关村大街27号")]),
    ("收货地址：上海市徐汇区漕溪北路88号3栋1202室", [("street_address", "上海市徐汇区漕溪北路88号3栋1202室")]),
    ("XX路88号", [("street_address", "XX路88号")]),
    ("家住幸福小区3号楼2单元401室", [("street_address", "幸福小区3号楼2单元401室")]),
    # a name with a date of birth
    ("John Smith, born 12 March 1984, applied.", [("name_with_birth_date", "John Smith, born 12 March 1984")]),
    ("Mary Ann Lee (born March 12, 1984) joined", [("name_with_birth_date", "Mary Ann Lee (born March 12, 1984")]),
    ("Patient DOB: 1984-03-12.", [("name_with_birth_date", "DOB: 1984-03-12")]),
    ("Date of birth: 12/03/1984", [("name_with_birth_date", "Date of birth: 12/03/1984")]),
    ("出生日期：1984年3月12日", [("name_with_birth_date", "出生日期：1984年3月12日")]),
    ("李明生于1984年3月12日，现居杭州。", [("name_with_birth_date", "生于1984年3月12日")]),
    ("被告人张三，男，1984年3月12日出生，汉族。", [("name_with_birth_date", "被告人张三，男，1984年3月12日出生")]),
    # several kinds at once, in text order
    (
        "Zhang Wei (zhang.wei@example.com, 139 1234 5678) lives at 12 Acacia Avenue.",
        [("email", "zhang.wei@example.com"), ("phone", "139 1234 5678"), ("street_address", "12 Acacia Avenue")],
    ),
]

NEGATIVE: list[str] = [
    # amounts
    "13500000000元",
    "公司营收13500000000元，同比增长12%。",
    "¥13500000000",
    "RMB 13500000000 was raised",
    "2023年度营收达13500000000，创历史新高。",
    "Quarry Peak Mining posted revenue of 12,345,678 dollars, below forecasts, on 2024-03-15.",
    "The fund is worth 13912345678 USD.",
    "成交金额：13912345678",
    # tracking and order numbers, invoices
    "tracking number 4111111111111111",
    "Your parcel 4111 1111 1111 1111 is on its way.",
    "快递单号4111111111111111，请查收",
    "运单号：6222021234567890128",
    "订单号13912345678已发货",
    "Invoice 4111111111111111 is overdue.",
    "Order #13912345678 shipped.",
    "4111111111111111 is the waybill number",
    # dates, years, prices, percentages, versions
    "On 2024-03-15 the board met; on 15/03/2024 it voted.",
    "2023年3月15日，公司召开董事会。",
    "In 1929 Wall Street crashed.",
    "Prices rose 3.5% to $3856.20 in 2023.",
    "Python 3.10.4 replaced 1.2.3 and version 1.2.3.4.",
    "升级到v2.10.1.3后恢复正常。",
    "The meeting ran from 09:30:00 to 12:30:45.",
    "He was born in 1984 in Leeds.",
    "生于忧患，死于安乐。",
    "出生日期：1984年3月",
    "She was born on a farm.",
    # legal texts
    "(2023)京0105刑初123号",
    "依照《中华人民共和国刑法》第二百六十四条、第五十二条之规定，判决如下。",
    "根据国发〔2023〕5号文件和GB 18030-2005标准。",
    "Under 18 U.S.C. § 1030(a)(2) and Regulation (EU) 2016/679, Article 6(1)(f).",
    "The appeal is case No. 2:21-cv-01234 in the Ninth Circuit.",
    "被告人张某，男，1984年3月12日出生，汉族。",
    "The defendant appeared at Manchester Crown Court on 3 May.",
    "Chapter 11 of the Bankruptcy Code",
    # medical values and codes
    "BP 140/90 mmHg, HbA1c 7.2%, WBC 12.5×10^9/L.",
    "诊断：2型糖尿病（ICD-10 E11.9），血糖7.8mmol/L。",
    "ICD-10 I10; CPT 99213; LOINC 4548-4.",
    "体重65.5kg，身高172cm，BMI 22.1。",
    # names without personal data, numbers in prose
    "Zhang Wei presented the quarterly results in Shanghai.",
    "Li Na and Wang Fang met the Rowan Bank board in 2024.",
    "ISBN 978-7-02-000220-7",
    "Call sign QQ 12 34 56 C is HMRC's specimen number.",
    "icon@2x.png and logo@3x.jpg",
    "std::vector<int> v; a[::2]",
    "the 1 2 3 4 5 6 7 8 9 10 countdown",
    "股票代码600519，市盈率35.2倍。",
    "1 000 000 000 people",
    "Ref 12345. 编号67890。",
    "netmask 255.255.255.0 and localhost 127.0.0.1",
    # more numbers that name things
    "第5.2.1.3条规定了安全要求；See Section 4.1.2.3; a 1.5.10.20 mg dose ladder.",
    "Top 10 Wall Street banks cut jobs.",
    "北京市朝阳区某某路88号",
    "合同@2023.pdf已上传",
    "成交额13912345678.90元，成交量1234567890股。",
    "截至2023年末，注册资本10000000000元，股票代码600519.SH。",
    "统一社会信用代码91110000100000000X，发票号码12345678。",
    "病案号：202303150012，住院号2023031500123。",
    "IMEI 353456789012345, MAC 00:1A:2B:3C:4D:5E, at 2024-03-15T10:30:00Z.",
    "经纬度：39.9042,116.4074",
    "拨打12345市民热线或110报警，或95588客服。",
    "Founded 12 March 1984, the firm grew.",
    "患者出生时体重3.2kg，新生儿出生后1分钟Apgar评分9分。",
    "生日快乐！今天是3月12日。",
    "地铁10号线和2号线在3号楼附近换乘。",
    "Windows 10 Home, Route 66 and Interstate 95.",
]


def spans(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in find_pii(text)]


def hinted(text: str) -> bool:
    return bool(HINT.search(text)) and bool(HINT.search(unicodedata.normalize("NFKC", text)))


@pytest.mark.parametrize(("text", "expected"), POSITIVE, ids=[t[:40] for t, _ in POSITIVE])
def test_personal_data_is_found_where_it_is(text: str, expected: list[tuple[str, str]]) -> None:
    assert spans(text) == expected
    assert hinted(text)


@pytest.mark.parametrize("text", NEGATIVE, ids=[t[:40] for t in NEGATIVE])
def test_numbers_that_only_look_like_personal_data_are_left_alone(text: str) -> None:
    assert find_pii(text) == []


def test_every_kind_is_covered_and_findings_read_well() -> None:
    found = {kind for _, expected in POSITIVE for kind, _ in expected}
    assert found == set(PII_KINDS)
    (finding,) = find_pii("我的手机13912345678。")
    assert finding == PiiFinding("phone", 4, 15, "139******78")
    assert str(finding) == "phone at 4 (139******78)"
    (email,) = find_pii("mail john@example.com now")
    assert email.masked == "j***@e******.com" and str(email) == "email at 5 (j***@e******.com)"
    assert find_pii("") == [] and find_pii("plain words, no numbers") == []


def test_positions_are_in_the_text_as_written_when_nfkc_changes_lengths() -> None:
    # "…" and "㈱" grow under NFKC; the finding must still point into the original text.
    text = "㈱星河……联系人手机１３９１２３４５６７８，邮箱ｌｉ＠ｅｘａｍｐｌｅ．ｃｏｍ。"
    assert spans(text) == [("phone", "１３９１２３４５６７８"), ("email", "ｌｉ＠ｅｘａｍｐｌｅ．ｃｏｍ")]


def test_the_hint_compiles_in_polars_and_agrees_with_python() -> None:
    texts = [t for t, _ in POSITIVE] + NEGATIVE
    rust = pl.Series(texts).str.contains(PII_HINT).to_list()
    assert rust == [bool(HINT.search(t)) for t in texts]


# --- Generated data ---------------------------------------------------------------------------------------------
FILLER_EN = [
    "The board reviewed the quarterly figures.",
    "Shares closed higher after the announcement.",
    "The patient reported mild headaches for a week.",
    "The court adjourned the hearing until next month.",
    "Staff turnover fell slightly this year.",
]
FILLER_ZH = [
    "董事会审议了季度报告。",
    "公司股价在公告后上涨。",
    "患者自述头痛一周。",
    "法院决定延期审理。",
    "今年员工流失率略有下降。",
]
REGIONS = ["110105", "310104", "440305", "510107", "620102", "420106", "330106", "320102"]
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def cn_id(rng: random.Random) -> str:
    while True:  # a county code is valid only for the years it existed
        body = f"{rng.choice(REGIONS)}{rng.randrange(1950, 2006)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
        body += f"{rng.randrange(1000):03d}"
        number = body + ric.calc_check_digit(body + "0")
        if ric.is_valid(number):
            break
    return rng.choice([number, f"{number[:6]} {number[6:14]} {number[14:]}"])


def card(rng: random.Random) -> str:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("2221", 16), ("34", 15), ("37", 15), ("62", 19), ("62", 16),
                                 ("6011", 16), ("65", 16), ("3530", 16)])  # fmt: skip
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    number = body + luhn.calc_check_digit(body)
    if rng.random() < 0.5 and length == 16:
        number = rng.choice([" ", "-"]).join(number[i : i + 4] for i in range(0, 16, 4))
    return number


def ssn(rng: random.Random) -> str:
    while True:
        number = f"{rng.randrange(1, 900):03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"
        if stdnum_ssn.is_valid(number):
            return number


def iban(rng: random.Random) -> str:
    country, bban = rng.choice(
        [
            ("DE", "".join(str(rng.randrange(10)) for _ in range(18))),
            ("GB", "WEST" + "".join(str(rng.randrange(10)) for _ in range(14))),
            ("NL", "ABNA" + "".join(str(rng.randrange(10)) for _ in range(10))),
            ("ES", "".join(str(rng.randrange(10)) for _ in range(20))),
        ]
    )
    number = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
    if not stdnum_iban.is_valid(number):  # a country's own bank-code check (ES) may refuse random digits
        return iban(rng)
    return rng.choice([number, " ".join(number[i : i + 4] for i in range(0, len(number), 4))])


def cn_mobile(rng: random.Random) -> str:
    while True:
        number = rng.choice(["139", "138", "186", "151", "177", "199"]) + f"{rng.randrange(10**8):08d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number, "CN")):
            break
    return rng.choice([number, f"{number[:3]} {number[3:7]} {number[7:]}", f"+86 {number}", f"0086-{number}"])


def us_phone(rng: random.Random) -> str:
    while True:
        area, exchange, line = rng.choice(["212", "415", "312", "617"]), rng.randrange(200, 1000), rng.randrange(10000)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"{area}{exchange}{line:04d}", "US")):
            break
    return rng.choice(
        [f"({area}) {exchange}-{line:04d}", f"{area}-{exchange}-{line:04d}", f"+1 {area} {exchange} {line:04d}"]
    )


def nino(rng: random.Random) -> str:
    while True:
        prefix = rng.choice("ABCEGHJKLMNOPRSTWXYZ") + rng.choice("ABCEGHJKLMNPRSTWXYZ")
        if prefix not in {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}:
            break
    digits = f"{rng.randrange(10**6):06d}"
    return f"{prefix}{digits}{rng.choice('ABCD')}"


def ipv4(rng: random.Random) -> str:
    return f"{rng.choice([23, 58, 81, 142, 203])}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def street_address(rng: random.Random) -> str:
    if rng.random() < 0.5:
        number = f"{rng.randrange(1, 3000)}{rng.choice(['', 'A', 'B'])}"
        name = rng.choice(["Baker", "Elm", "Pennsylvania", "King Edward", "Acacia"])
        return f"{number} {name} {rng.choice(['Street', 'Avenue', 'Road', 'Lane', 'St.', 'Rd.'])}"
    place = rng.choice(["北京市海淀区", "上海市徐汇区", "广东省深圳市南山区", "杭州市西湖区", ""])
    road = rng.choice(["中关村大街", "漕溪北路", "人民路", "文三路", "南京东路"])
    return f"{place}{road}{rng.randrange(1, 999)}号{rng.choice(['', '3栋1202室', '2单元401室'])}"


def birth(rng: random.Random) -> str:
    year, month, day = rng.randrange(1940, 2010), rng.randrange(1, 13), rng.randrange(1, 29)
    months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
    months += ["November", "December"]
    name = f"{rng.choice(['John', 'Mary', 'Wei', 'Aisha'])} {rng.choice(['Smith', 'Zhang', 'Okafor'])}"
    return rng.choice(
        [
            f"{name}, born {day} {months[month - 1]} {year}",
            f"DOB: {year}-{month:02d}-{day:02d}",
            f"出生日期：{year}年{month}月{day}日",
            f"生于{year}年{month}月{day}日",
        ]
    )


GENERATORS = {
    "cn_id_number": lambda rng: ("", cn_id(rng)),
    "bank_card": lambda rng: (rng.choice(["card ", "银行卡", ""]), card(rng)),
    "us_ssn": lambda rng: ("", ssn(rng)),
    "iban": lambda rng: ("IBAN ", iban(rng)),
    "phone": lambda rng: (rng.choice(["", "电话", "Tel "]), rng.choice([cn_mobile, us_phone])(rng)),
    "uk_nino": lambda rng: ("NI ", nino(rng)),
    "ip_address": lambda rng: ("IP ", ipv4(rng)),
    "passport": lambda rng: (rng.choice(["passport ", "护照号码："]), rng.choice("EG") + f"{rng.randrange(10**8):08d}"),
    "email": lambda rng: ("", f"{rng.choice(['li.na', 'wang_fang', 'j.smith'])}{rng.randrange(100)}@example.com"),
    "street_address": lambda rng: ("", street_address(rng)),
    "name_with_birth_date": lambda rng: ("", birth(rng)),
}


def test_generated_personal_data_is_found_at_its_position() -> None:
    assert set(GENERATORS) == set(PII_KINDS)
    rng = random.Random(20240315)
    texts = []
    for _ in range(3000):
        zh = rng.random() < 0.5
        filler, sep, stop = (FILLER_ZH, "", "。") if zh else (FILLER_EN, " ", " .")
        text, expected = "".join(rng.sample(filler, rng.randrange(3))), []
        for _ in range(rng.choice([1, 1, 2])):  # one piece of personal data, or two, with filler around
            kind = rng.choice(list(GENERATORS))
            lead, value = GENERATORS[kind](rng)
            if kind in ("cn_id_number", "phone", "bank_card") and rng.random() < 0.3:
                value = value.translate(FULL_WIDTH)
            start = len(text) + len(sep) + len(lead)
            expected.append((kind, start, start + len(value)))
            text = f"{text}{sep}{lead}{value}{stop}{sep}" + "".join(rng.sample(filler, rng.randrange(3)))
        found = find_pii(text)
        assert [(f.kind, f.start, f.end) for f in found] == expected, text
        assert hinted(text), text
        texts.append(text)
    assert pl.Series(texts).str.contains(PII_HINT).all()  # the prefilter as Polars runs it


def test_the_hint_is_a_superset_on_random_text() -> None:
    rng = random.Random(3)
    tokens = [*"0123456789" * 6, *" -.()+@:/，。：（）", "１", "３", "＠", "\u3000", "…", "㈱", "e\u0301", "passport"]
    tokens += [
        "护照",
        "born",
        "DOB",
        "出生日期",
        "生于",
        "男",
        "张三",
        "John Smith",
        "Street",
        "路",
        "号",
        "栋",
        "单元",
    ]
    tokens += [
        "室",
        "年",
        "月",
        "日",
        "March",
        "元",
        "¥",
        "tracking",
        "订单",
        "card",
        "电话",
        "SSN",
        "AB",
        "DE",
        "IP",
        "::",
    ]
    tokens += ["fe80", "example.com", "中国", "\n"]
    flagged = []
    for _ in range(5000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randrange(1, 40)))
        found = find_pii(text)
        assert all(0 <= a.start < a.end <= b.start for a, b in itertools.pairwise(found))
        assert all(0 <= f.start < f.end <= len(text) for f in found)
        if found:
            assert hinted(text), text
            flagged.append(text)
    assert len(flagged) > 50 and pl.Series(flagged).str.contains(PII_HINT).all()


def test_generated_clean_text_is_not_flagged() -> None:
    rng = random.Random(7)
    templates = [
        lambda: f"公司营收{rng.randrange(10**4, 10**13)}元，同比增长{rng.randrange(1, 99)}.{rng.randrange(10)}%。",
        lambda: (
            f"Revenue was ${rng.randrange(10**4, 10**9):,}.{rng.randrange(100):02d} in {rng.randrange(1990, 2025)}."
        ),
        lambda: f"营业收入为{rng.choice(['139', '186', '151'])}{rng.randrange(10**8):08d}元。",
        lambda: f"合同金额¥{rng.randrange(10**6, 10**12)}，已支付{rng.randrange(10, 90)}%。",
        lambda: f"订单号{rng.choice(['139', '186'])}{rng.randrange(10**8):08d}已发货。",
        lambda: f"Tracking number {card(rng).replace(' ', '').replace('-', '')} is on its way.",
        lambda: f"快递单号{card(rng).replace(' ', '')}，请查收。",
        lambda: f"会议于{rng.randrange(1990, 2025)}年{rng.randrange(1, 13)}月{rng.randrange(1, 29)}日召开。",
        lambda: f"On {rng.randrange(1990, 2025)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} the board met.",
        lambda: f"({rng.randrange(2010, 2025)})京{rng.randrange(100, 10000):04d}刑初{rng.randrange(1, 999)}号",
        lambda: (
            f"BP {rng.randrange(90, 180)}/{rng.randrange(50, 110)}, HbA1c {rng.randrange(4, 12)}.{rng.randrange(10)}%"
        ),
        lambda: f"version {rng.randrange(10)}.{rng.randrange(20)}.{rng.randrange(20)} released",
        lambda: f"Price {rng.randrange(1, 10**5)}.{rng.randrange(100):02d} USD, down {rng.randrange(1, 50)}%.",
        lambda: f"第{rng.randrange(1, 500)}条 Article {rng.randrange(1, 500)}({rng.randrange(1, 9)})",
        lambda: f"Invoice {card(rng).replace(' ', '')} is due.",
        lambda: f"Ref {rng.randrange(10, 99999)}. 编号{rng.randrange(10, 99999)}。",
    ]
    for _ in range(4000):
        text = rng.choice(templates)()
        assert find_pii(text) == [], text


# --- The frame API ------------------------------------------------------------------------------------------------
def test_pii_problems_names_field_kind_position_and_masked_value() -> None:
    frame = pl.DataFrame(
        {
            "input": ["公司营收13500000000元。", "锦程科技董秘手机13812345678被挂在网上", None, "clean text"],
            "output": ["ok", "mail john@example.com now", "护照号码：G12345678", "2024-03-15"],
        }
    )
    problems = pii_problems(frame, ["input", "output"])
    assert problems.dtype == pl.String and problems.len() == 4
    assert problems.to_list() == [
        None,
        "input: phone at 8 (138******78); output: email at 5 (j***@e******.com)",
        "output: passport at 5 (G1*****78)",
        None,
    ]
    assert pii_problems(frame.head(0), ["input"]).to_list() == []
    with pytest.raises(ValueError, match="'missing'"):
        pii_problems(frame, ["missing"])
    with pytest.raises(TypeError, match="'n' is Int"):
        pii_problems(frame.with_columns(n=pl.lit(1)), ["input", "n"])
