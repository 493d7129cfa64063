"""Language identification: each finding of the review as a case, the seeds never flagged, and the vectorised
check equal to the one-text check on generated texts."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import opencc
import polars as pl
import pytest

from catalog import Catalog
from validation.language import language_problem, language_problems
from validation.outputs import output_texts

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "datasets" / "seeds"

# (text, label, how the reason starts)
WRONG = [
    # Japanese and Korean were published as zh, Korean and Russian as en.
    ("日本語のテキストです。東京は大きな都市で、毎日たくさんの人が電車で通勤しています。", "zh", "reads as Japanese (kana"),
    ("日本語のテキストです。東京は大きな都市で、毎日たくさんの人が電車で通勤しています。", "en", "reads as Japanese (kana"),
    ("先週の会議で決まった予算案について、部長から修正の指示がありました。", "zh", "reads as Japanese (kana"),
    ("서울은 한국의 수도이며, 많은 사람들이 매일 지하철로 출퇴근합니다.", "zh", "reads as Korean (Hangul"),
    ("서울은 한국의 수도이며, 많은 사람들이 매일 지하철로 출퇴근합니다.", "en", "reads as Korean (Hangul"),
    ("환불을 요청합니다. 주문한 휴대폰 화면이 깨져서 도착했어요.", "en", "reads as Korean"),
    ("Москва — столица России, и каждый день миллионы людей ездят на метро.", "en", "reads as Russian"),
    ("Прошу вернуть деньги за заказ, телефон пришёл с разбитым экраном.", "zh", "reads as Russian"),
    ("Я купил iPhone в магазине Apple, но он не включается уже третий день.", "en", "reads as Russian"),
    ("Η Αθήνα είναι η πρωτεύουσα της Ελλάδας και η μεγαλύτερη πόλη της.", "en", "reads as Greek"),
    ("القاهرة هي عاصمة مصر وأكبر مدنها، ويعيش فيها ملايين الناس.", "en", "reads as Arabic"),
    ("กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย", "en", "reads as Thai"),
    ("नमस्ते, मेरा नाम राहुल है और मैं दिल्ली में रहता हूँ।", "zh", "reads as Hindi"),
    ("ქართული ენა ძალიან ლამაზია და ძალიან ძველი", "en", "reads as Georgian-script text"),
    # French was published as en; German, Spanish, Portuguese, Italian and Dutch go the same way.
    ("Je suis resté trois nuits pour une conférence. La chambre était impeccable mais le Wi-Fi coupait.", "en", "reads as French (lingua"),
    ("Bonjour, je voudrais annuler ma commande et être remboursé, merci.", "en", "reads as French (lingua"),
    ("Le locataire n'a pas payé son loyer depuis deux mois.", "en", "reads as French (lingua"),
    ("Ich habe drei Nächte für eine Konferenz übernachtet, aber das WLAN ist ständig ausgefallen.", "en", "reads as German (lingua"),
    ("Der Mieter hat seit zwei Monaten keine Miete gezahlt.", "en", "reads as German (lingua"),
    ("Me quedé tres noches por una conferencia y la cama era muy cómoda.", "en", "reads as Spanish (lingua"),
    ("Hola, quiero cancelar mi pedido y que me devuelvan el dinero.", "en", "reads as Spanish (lingua"),
    ("O inquilino não paga o aluguel há dois meses e o proprietário quer rescindir o contrato.", "en", "reads as Portuguese (lingua"),
    ("L'inquilino non paga l'affitto da due mesi e il proprietario vuole risolvere il contratto.", "en", "reads as Italian (lingua"),
    ("De huurder heeft al twee maanden geen huur betaald en de verhuurder wil het contract opzeggen.", "en", "reads as Dutch (lingua"),
    ("Hallo, ik wil mijn bestelling annuleren en mijn geld terug, bedankt.", "en", "reads as Dutch (lingua"),
    # A phrase of three or four words is still named when lingua is sure of it (0.88, 0.64).
    ("je voudrais annuler", "en", "reads as French (lingua"),
    ("annuler ma commande", "en", "reads as French (lingua"),
    # Chinese as en, English as zh.
    ("我们公司明年计划在上海开设新的研发中心，欢迎有经验的工程师加入。", "en", "reads as Chinese (Han"),
    ("我们用Kubernetes部署PostgreSQL，并做了CT和MRI检查。", "en", "reads as Chinese (Han"),
    ("We plan to open a new research centre in Shanghai, and we hope you can join.", "zh", "reads as English (Han 0%"),
    ("We plan to open a new research centre in Shanghai next year.", "zh", "reads as Latin-script text (Han 0%"),
    ("Our new office opens in March, and the whole team will move there. 新办公室三月开业。", "zh", "reads as English"),
    ("Nosotros queremos un reembolso del pedido completo", "zh", "reads as Latin-script text"),
    # Bilingual, the labelled language in the minority.
    ("Our new office opens next month. 我们的新办公室下个月开业，欢迎大家来参观指导。", "en", "reads as Chinese (Han"),
    # Traditional Chinese in the simplified datasets.
    ("我們公司明年計劃在臺北開設新的研發中心，歡迎有經驗的工程師加入。", "zh", "reads as traditional Chinese ("),
    ("買的手機螢幕碎了，請儘快給我退款，謝謝。", "zh", "reads as traditional Chinese ("),
    ("患者主訴胸痛三天，心電圖顯示ST段抬高，診斷為急性心肌梗死。", "zh", "reads as traditional Chinese ("),
]  # fmt: skip

RIGHT = [
    # An English record that names one Chinese person was dropped.
    ("My colleague Wang Fang (王芳) said the meeting has moved to Friday.", "en"),
    ("The Chinese term 关系 (guanxi) means a network of relationships and favours.", "en"),
    ("Please send the invoice to 北京市朝阳区建国路88号 before Friday, and copy the finance team.", "en"),
    ("My landlord, Mr 陈志强, has kept the deposit although the flat was spotless.", "en"),
    ("I've had a cough for 6 weeks and it won't shift.", "en"),
    ("Sore throat for 3 days, fever for 1 day", "en"),
    ("unfair dismissal\nemployment dispute\nsickness absence", "en"),
    # A short legal term lingua half takes for Swedish (0.51): under 5 words it must be surer.
    ("handling stolen goods", "en"),
    ("Python (pandas, scikit-learn, PyTorch), SQL, dbt, Airflow, Tableau", "en"),
    ("Stayed at the Hôtel de Ville near the café; the naïve décor was charming and the staff were lovely.", "en"),
    ("THE PARCEL NEVER ARRIVED AND NOBODY ANSWERS THE PHONE", "en"),
    # English spelt with Cyrillic and Greek look-alikes is English (the dedup keys deal with it).
    ("Nоrthwind Frеight lоwеrеd its full-yеar rеvеnuе guidаncе оn Tuеsdаy and it will clоsе twо dеpоts.", "en"),
    ("Рlеаsе rеfund my оrdеr, thе sсrееn аrrivеd brоkеn аnd thе bοx wаs οpеn.", "en"),
    # English technical words inside Chinese are Chinese.
    ("我们用Kubernetes部署PostgreSQL，并做了CT和MRI检查。", "zh"),
    ("患者主诉胸痛3天，心电图示ST段抬高，肌钙蛋白T升高，诊断为急性心肌梗死（STEMI）。", "zh"),
    ("我在Google工作，负责Android和Chrome的性能优化。", "zh"),
    ("熟悉Spring Boot、MyBatis和Redis，有三年后端开发经验", "zh"),
    ("ENFJ型的人通常很有感染力", "zh"),
    ("约翰・史密斯先生下周来上海", "zh"),  # the katakana middle dot between the parts of a foreign name
    ("β受体阻滞剂和α-干扰素都要遵医嘱使用", "zh"),
    # Simplified Chinese naming one person or school in traditional characters.
    ("我的同事陳志強下周去上海出差，回来后要写一份报告。", "zh"),
    ("我在國立臺灣大學读的研究生，现在在上海工作，主要做数据分析和机器学习相关的项目。", "zh"),
    # Too short to judge.
    ("OK", "en"),
    ("Merci beaucoup", "en"),
    ("好的", "en"),
    ("谢谢", "en"),
    ("ENFJ", "zh"),
    ("Yes", "zh"),
    ("", "en"),
    ("", "zh"),
    # Labels this check does not judge.
    ("Bonjour, je voudrais annuler ma commande et être remboursé, merci.", "fr"),
]


@pytest.mark.parametrize(("text", "lang", "start"), WRONG)
def test_wrong_language_is_named(text: str, lang: str, start: str) -> None:
    reason = language_problem(text, lang)
    assert reason is not None and reason.startswith(start), reason
    assert reason.endswith(f"expected {lang}") or reason.endswith("expected simplified zh")


@pytest.mark.parametrize(("text", "lang"), RIGHT)
def test_right_language_passes(text: str, lang: str) -> None:
    assert language_problem(text, lang) is None


def test_reasons_say_what_the_text_reads_as() -> None:
    assert language_problem("日本語のテキストです。東京は大きな都市です。", "zh") == (
        "reads as Japanese (kana 60% of CJK characters), expected zh"
    )
    assert language_problem("Bonjour, je voudrais annuler ma commande et être remboursé.", "en") == (
        "reads as French (lingua, confidence 0.99), expected en"
    )
    assert language_problem("我們用資料庫管理醫院的檢查報告，這個問題很難處理。", "zh") == (
        "reads as traditional Chinese (52% of Han characters are traditional forms), expected simplified zh"
    )


def _seed_texts(catalog: Catalog) -> list[tuple[str, str, str]]:
    """(where, lang, text) for the instruction, input and output texts of every seed record."""
    found = []
    for path in sorted(SEEDS.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            record = json.loads(line)
            where, lang = f"{path.name}:{number}", record["lang"]
            found += [(f"{where} instruction", lang, record["instruction"]), (f"{where} input", lang, record["input"])]
            texts = output_texts(catalog.get(record["task"]), record["output"])
            found += [(f"{where} output", lang, text) for text in texts]
            if len(texts) > 1:
                found.append((f"{where} output joined", lang, "\n".join(texts)))
    return found


def test_no_seed_text_is_flagged(catalog: Catalog) -> None:
    texts = _seed_texts(catalog)
    records = sum(len(path.read_text(encoding="utf-8").splitlines()) for path in SEEDS.glob("*.jsonl"))
    assert len({where.split()[0] for where, _, _ in texts}) == records > 1000  # every record read
    flagged = [(where, reason) for where, lang, text in texts if (reason := language_problem(text, lang))]
    assert flagged == []
    frame = pl.DataFrame({"text": [t for _, _, t in texts], "lang": [lang for _, lang, _ in texts]})
    assert language_problems(frame, "text").null_count() == frame.height


@pytest.mark.parametrize("config", ["s2t", "s2tw", "s2hk"])
def test_seeds_written_in_traditional_are_caught(catalog: Catalog, config: str) -> None:
    convert = opencc.OpenCC(config).convert
    texts = [convert(text) for _, lang, text in _seed_texts(catalog) if lang == "zh" and len(text) >= 10]
    long = [text for text in texts if sum("\u4e00" <= c <= "\u9fff" for c in text) >= 30]
    assert sum(language_problem(text, "zh") is None for text in long) <= 0.005 * len(long)
    assert sum(language_problem(text, "zh") is None for text in texts) <= 0.02 * len(texts)


def test_nulls_empty_texts_and_other_labels() -> None:
    frame = pl.DataFrame(
        {"text": [None, "", "Москва — столица России.", "Hello there, how are you?"], "lang": ["en", "zh", None, "de"]}
    )
    assert language_problems(frame, "text").to_list() == [None] * 4
    assert language_problems(frame.head(0), "text").to_list() == []


def test_the_result_is_named_after_the_column_and_keeps_row_order() -> None:
    frame = pl.DataFrame({"input": [t for t, _, _ in WRONG] + [t for t, _ in RIGHT]})
    frame = frame.with_columns(language=pl.Series([lang for _, lang, _ in WRONG] + [lang for _, lang in RIGHT]))
    result = language_problems(frame, "input", lang_column="language")
    assert result.name == "input"
    assert result.to_list() == [language_problem(t, lang) for t, lang in frame.iter_rows()]


def _words(text: str) -> list[str]:
    return text.split()


# Pieces of generated texts: the screens of `language_problems` must settle exactly what the full decision passes.
_PIECES = {
    "english": _words("the and that with this you have they which would been were from are for it not but our she his "
    "what can please refund my order arrived broken meeting on Friday experience team customer a of to in is "
    "rеfund оrdеr Nоrthwind brοkеn"),
    # Foreign sentences in plain ASCII, so only function words and lingua tell them from English.
    "foreign": ["je voudrais annuler ma commande", "le locataire ne paie pas", "der Mieter hat nicht bezahlt",
                "ich will mein Geld zurück", "el inquilino no ha pagado", "quiero cancelar mi pedido",
                "o inquilino nao paga", "il proprietario vuole il contratto", "ik wil mijn bestelling annuleren",
                "de huurder heeft niet betaald", "les", "une", "und", "que", "het", "muy", "de", "en", "op"],
    "accented": _words("café naïve résumé Zoë São Paulo Müller señor déjà über"),
    "tech": _words("Kubernetes PostgreSQL CT MRI HRBP ENFJ Spring Boot Redis API SQL K8s"),
    "simplified": ["我们", "公司", "计划", "在上海", "开设", "新的", "研发中心", "欢迎", "有经验的", "工程师", "加入",
                   "患者", "主诉", "胸痛", "三天", "请", "给我", "退款", "的", "了"],
    "traditional": ["們", "計劃", "臺灣", "開設", "歡迎", "經驗", "師", "買", "手機", "螢幕", "請", "謝謝", "診斷", "國",
                    "學", "張偉", "陳"],
    "han_other": ["\uf900", "\uf9a8", "𠮷", "𪚥", "\u3400", "乾"],
    "kana": ["の", "は", "を", "にがでて", "です", "ます", "カタカナ", "ひらがな", "ー", "ァヶ", "・"],
    "hangul": ["서울은", "한국의", "수도", "ㄱㄴ", "\u1100\u1161"],
    "cyrillic": ["Москва", "столица", "рефанд", "е", "а"],
    "greek": ["Αθήνα", "είναι", "α", "β", "μ"],
    "arabic": ["القاهرة", "عاصمة", "مصر"],
    "hebrew": ["שלום", "תל"],
    "devanagari": ["नमस्ते", "मेरा", "\u093e"],
    "southeast": ["กรุงเทพ", "ປະເທດ", "ကမ္ဘာ", "កម្ពុជា"],
    "other": ["ქართული", "Հայերեն", "አማርኛ", "ᠮᠣᠩᠭᠣᠯ", "𝐁𝐨𝐥𝐝", "ℓ"],
    "noise": ["12", "3.6%", "$100", "，", "。", "、", "“", "”", "（", "）", ",", ".", "!", "?", "-", "—", "'", "’",
              "\n", "\t", "\u3000", "😀", "👍🏽", "\x00", "\u0301", "\u200b", "\ufeff", "_", "①", "ＡＢＣ", "ｅｎ"],
}  # fmt: skip
_SEPARATORS = {"english": [" "] * 6 + [", ", "\n", "-", ""], "simplified": [""] * 6 + ["，", "。", " ", "\n"]}


_ZH_TECH = [*_PIECES["tech"], *"我们的在了请"]


def _generated(rng: random.Random) -> tuple[str, str | None]:
    """A text mostly of one kind with a few pieces of others: clean texts and each way of being nearly clean."""
    roll = rng.random()
    if roll < 0.1:  # Chinese with about as many Latin words as Han characters, where the share tips
        return "".join(rng.choice(_ZH_TECH) for _ in range(rng.randrange(1, 7))), "zh"
    if roll < 0.2:  # a plain-ASCII foreign sentence around an English-only word: only lingua can tell
        foreign, english = _PIECES["foreign"], _PIECES["english"]
        return f"{rng.choice(foreign)} {rng.choice(english)} {rng.choice(foreign)}", "en"
    base = rng.choice(["english", "english", "english", "simplified", "simplified", "simplified", "foreign"])
    base = rng.choice([base, base, base, rng.choice(list(_PIECES))])
    mixing = rng.choice([0.0, 0.0, 0.05, 0.15, 0.3, 0.6])
    separators = _SEPARATORS["simplified" if base in ("simplified", "traditional", "kana") else "english"]
    pieces = []
    for _ in range(rng.choice([0, 1, 2, 3, 4, 6, 9, 14, 22, 35])):
        kind = rng.choice(list(_PIECES)) if rng.random() < mixing else base
        pieces += [rng.choice(_PIECES[kind]), rng.choice(separators)]
    lang = "zh" if base in ("simplified", "traditional", "kana") else "en"
    lang = rng.choice([lang, lang, lang, lang, "en" if lang == "zh" else "zh", "fr", None])
    return "".join(pieces).strip(" "), lang


def test_vectorised_equals_one_by_one_on_generated_texts() -> None:
    rng = random.Random(20240625)
    rows = [_generated(rng) for _ in range(5000)]
    rows += [(t, lang) for t, lang, _ in WRONG] + RIGHT
    frame = pl.DataFrame({"text": [t for t, _ in rows], "lang": [lang for _, lang in rows]}, strict=False)
    vectorised = language_problems(frame, "text").to_list()
    screened = [language_problem(t, lang) if lang else None for t, lang in rows]
    full = [language_problem(t, lang, screens=False) if lang else None for t, lang in rows]
    for answers in (vectorised, screened):
        differing = [(rows[i], a, f) for i, (a, f) in enumerate(zip(answers, full, strict=True)) if a != f]
        assert differing == []
    flagged = sum(reason is not None for reason in full)
    assert 0.2 * len(rows) < flagged < 0.8 * len(rows)  # the generator reaches both sides of every rule


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare for a process without network")
def test_models_load_without_network() -> None:
    """lingua's models and OpenCC's dictionaries ship in their wheels: nothing is fetched at run time."""
    code = (
        "from validation.language import language_problem as p;"
        "print(p('Bonjour, je voudrais annuler ma commande et être remboursé.', 'en'));"
        "print(p('我們用資料庫管理醫院的檢查報告，這個問題很難處理。', 'zh'))"
    )
    try:
        run = subprocess.run(
            ["unshare", "-rn", sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
        )
    except OSError as err:
        pytest.skip(f"unshare unavailable: {err}")
    if run.returncode != 0 and "unshare" in run.stderr:
        pytest.skip(f"no network namespace here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        "reads as French (lingua, confidence 0.99), expected en",
        "reads as traditional Chinese (52% of Han characters are traditional forms), expected simplified zh",
    ]
