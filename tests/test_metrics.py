"""Every metric on hand-computed cases in English and Chinese, and the lenient reading of model outputs."""

from __future__ import annotations

import json

import pytest

from catalog import Catalog
from catalog.records import compact_json
from catalog.text_units import text_units
from validation.lenient_json import parse_json_lenient, strip_fences, strip_reasoning
from validation.metrics import (
    accuracy,
    as_number,
    aspect_score_f1,
    field_f1,
    mbti_dimension_accuracy,
    rouge_l,
    rouge_l_best_match,
    score,
    sentence_range,
    set_f1,
    span_f1,
)


def test_chinese_is_compared_character_by_character_and_english_word_by_word() -> None:
    assert text_units("故意 伤害罪。") == ["故", "意", "伤", "害", "罪"]
    assert text_units("Hello, World！ １２３ok中文") == ["hello", "world", "123ok", "中", "文"]


def test_rouge_l_english() -> None:
    # LCS "the cat on the mat" = 5 of 6 units on each side: P = R = 5/6.
    assert rouge_l("the cat sat on the mat", "The cat lay on the mat.") == pytest.approx(5 / 6)
    assert rouge_l("completely different", "the cat") == 0.0


def test_rouge_l_chinese() -> None:
    # 患者头痛三天 (6 chars) vs 头痛3天 (4 units): LCS 头痛天 = 3, P = 1/2, R = 3/4, F = 0.6.
    assert rouge_l("患者头痛三天", "头痛3天") == pytest.approx(0.6)
    # Spaces and punctuation mean nothing in Chinese.
    assert rouge_l("头痛，三天。", "头痛 三天") == 1.0


def test_rouge_l_best_match_english() -> None:
    # "what is the fee" vs "what is the annual fee": LCS 4, P 1, R 0.8, F 8/9; the other item matches nothing.
    # Precision = (8/9 + 0) / 2, recall = 8/9, F1 = 2PR / (P + R) = 16/27.
    predicted = ["what is the fee", "when can I withdraw"]
    assert rouge_l_best_match(predicted, ["what is the annual fee"]) == pytest.approx(16 / 27)


def test_rouge_l_best_match_chinese() -> None:
    # One prediction equal to the first of two references: P = 1, R = 1/2, F = 2/3.
    assert rouge_l_best_match(["能否提前还款？"], ["能否提前还款", "违约金是多少"]) == pytest.approx(2 / 3)
    assert rouge_l_best_match([], ["违约金是多少"]) == 0.0


def test_set_f1_english() -> None:
    assert set_f1(["Theft", "fraud"], ["theft", "Robbery"]) == pytest.approx(0.5)


def test_set_f1_chinese_ignores_spacing_inside_an_item() -> None:
    # 2 of 2 predicted are right, 2 of 3 references found: P 1, R 2/3, F 0.8.
    assert set_f1(["盗窃罪", "诈骗 罪"], ["盗窃罪", "诈骗罪", "抢劫罪"]) == pytest.approx(0.8)
    assert set_f1([], []) == 1.0


def test_accuracy_in_both_languages() -> None:
    assert accuracy("Card loss ", "card loss") == 1.0
    assert accuracy("INTJ.", "INTJ") == 1.0
    assert accuracy("心内科", "消化内科") == 0.0
    assert accuracy("心内科。", "心内科") == 1.0


def test_field_f1_english() -> None:
    reference = {"amount": "5000", "currency": "USD", "date": None, "product": "savings account", "institution": None}
    predicted = {
        "amount": "5000",
        "currency": "GBP",
        "date": "today",
        "product": "Savings account",
        "institution": None,
    }
    # Credit 2 (amount, product) over 4 predicted and 3 reference fields: P 1/2, R 2/3, F 4/7.
    assert field_f1(predicted, reference) == pytest.approx(4 / 7)


def test_field_f1_chinese_gives_character_level_credit_to_text_fields() -> None:
    empty = dict.fromkeys(["possible_cause", "history", "help_sought", "medication"])
    reference = {"symptom": "头痛三天", "duration": "三天", **empty}
    predicted = {"symptom": "头痛", "duration": "三天", **empty}
    # symptom: 2 of 4 characters, unit F1 2/3; duration 1. Credit 5/3 over 2 and 2 fields: F = 5/6.
    assert field_f1(predicted, reference) == pytest.approx(5 / 6)


def test_sentence_range() -> None:
    # Right charge; bounds off by 12 and 12 months: error 12 / 60 → 0.8.
    assert sentence_range(
        {"charge": "盗窃罪", "months_low": 24, "months_high": 48},
        {"charge": "盗窃罪", "months_low": 36, "months_high": 60},
    ) == pytest.approx(0.8)
    # Off by 0 and 12 against an upper bound of 24: 1 − 6/24.
    assert sentence_range(
        {"charge": "Theft", "months_low": 12, "months_high": 36},
        {"charge": "Theft", "months_low": 12, "months_high": 24},
    ) == pytest.approx(0.75)
    assert (
        sentence_range(
            {"charge": "Fraud", "months_low": 12, "months_high": 24},
            {"charge": "Theft", "months_low": 12, "months_high": 24},
        )
        == 0.0
    )


def test_aspect_score_f1_english() -> None:
    reference = [{"aspect": "food", "score": 90, "reason": "r"}, {"aspect": "service", "score": 30, "reason": "r"}]
    predicted = [{"aspect": "Food", "score": 80, "reason": "r"}, {"aspect": "price", "score": 50, "reason": "r"}]
    # One match earning 1 − 10/100 = 0.9: P = R = 0.45.
    assert aspect_score_f1(predicted, reference) == pytest.approx(0.45)


def test_aspect_score_f1_chinese() -> None:
    reference = [{"aspect": "房间", "score": 20}, {"aspect": "服务", "score": 80}, {"aspect": "位置", "score": 90}]
    predicted = [{"aspect": "房间", "score": 40}, {"aspect": "服务", "score": 80}]
    # Credit 0.8 + 1.0: P = 1.8/2, R = 1.8/3, F = 0.72.
    assert aspect_score_f1(predicted, reference) == pytest.approx(0.72)


def test_mean_metric_through_the_task_spec(catalog: Catalog) -> None:
    routing = catalog.get("con_complaint_routing")
    reference = compact_json({"category": "物流延误", "urgency": "高"})
    assert score(routing, '{"category": "物流延误", "urgency": "低"}', reference) == pytest.approx(0.5)
    state = catalog.get("psy_state_assessment")
    reference = compact_json({"emotions": ["anxiety", "sadness"], "stressors": ["exams"], "risk": "low"})
    # Emotions F1: P 1/1, R 1/2 → 2/3; risk right → 1; mean 5/6.
    assert score(state, '{"emotions":["anxiety"],"stressors":["work"],"risk":"low"}', reference) == pytest.approx(5 / 6)


def test_json_is_read_from_fences_and_chatter_and_a_failure_scores_zero(catalog: Catalog) -> None:
    spec = catalog.get("fin_news_sentiment")
    reference = compact_json({"sentiment": "正面", "reason": "利润大增"})
    fenced = 'Sure, here it is:\n```json\n{"sentiment": "正面", "reason": "…"}\n```\nAnything else?'
    assert score(spec, fenced, reference) == 1.0
    assert score(spec, 'Note {this}. {"sentiment":"正面","reason":"x"} trailing words', reference) == 1.0
    assert score(spec, "正面", reference) == 0.0  # not JSON
    assert score(spec, '{"sentiment": "正面", "reason": ', reference) == 0.0  # cut short
    assert score(spec, '["正面"]', reference) == 0.0  # wrong shape


def test_lenient_parser_returns_the_first_value_of_the_expected_type() -> None:
    assert parse_json_lenient('[1] then {"a": 1}', dict) == {"a": 1}
    assert parse_json_lenient('```\n["a", "b"]', list) == ["a", "b"]  # an unclosed fence
    assert parse_json_lenient("no json here", dict) is None
    assert json.dumps(parse_json_lenient('{"k": "值"} 多余', dict), ensure_ascii=False) == '{"k": "值"}'


def test_label_and_text_tasks_score_through_the_spec(catalog: Catalog) -> None:
    assert score(catalog.get("rp_mbti_identify"), " INTJ\n", "INTJ") == 1.0
    assert score(catalog.get("med_standardize"), "患者头痛三天", "头痛3天") == pytest.approx(0.6)
    assert mbti_dimension_accuracy("INTJ", "INFJ") == pytest.approx(0.75)


def test_span_f1_gives_partial_credit_for_other_boundaries_in_english() -> None:
    reference = ["very disappointed", "arrived late", "great value"]
    predicted = ["disappointed", "arrived late", "cheap"]
    # disappointed ↔ very disappointed: unit F1 2·(1·½)/(1+½) = 2/3; arrived late exact 1; cheap matches nothing.
    # Credit 5/3 over 3 and 3: P = R = 5/9, F = 5/9.
    assert span_f1(predicted, reference) == pytest.approx(5 / 9)
    assert set_f1(predicted, reference) == pytest.approx(1 / 3)  # exact matching gave the near miss nothing
    # One shared word of three is below the match threshold (unit F1 0.4): no credit.
    assert span_f1(["arrived very slowly"], ["arrived late"]) == 0.0
    assert span_f1([], []) == 1.0 and span_f1(["x"], []) == 0.0 and span_f1("x", ["x"]) == 0.0


def test_span_f1_chinese_at_character_level_pairs_one_to_one() -> None:
    # 失望 in 太失望了: 2 of 4 characters, F1 2/3; 物流很快 exact. Credit 5/3 over 2 and 2: F = 5/6.
    assert span_f1(["失望", "物流很快"], ["太失望了", "物流很快"]) == pytest.approx(5 / 6)
    # Sharing one character (不) of three is no match.
    assert span_f1(["不好吃"], ["不新鲜"]) == 0.0
    # Two predictions cannot both claim one reference span: the closer one takes it, the other is a false positive.
    # 很失望 ↔ 太失望了: overlap 2, F1 2·(2/3·2/4)/(2/3+2/4) = 4/7; 失望了 ↔ 太失望了: overlap 3, F1 6/7 wins.
    assert span_f1(["很失望", "失望了"], ["太失望了"]) == pytest.approx(2 * (6 / 7 / 2) * (6 / 7) / (6 / 7 / 2 + 6 / 7))


def test_field_f1_compares_numbers_as_numbers() -> None:
    reference = {"amount": 3856.2, "currency": "USD"}
    assert field_f1({"amount": "3856.20", "currency": "USD"}, reference) == 1.0
    assert field_f1({"amount": "3,856.2", "currency": "USD"}, reference) == 1.0
    assert field_f1({"amount": 3856.3, "currency": "USD"}, reference) == pytest.approx(0.5)  # near is not equal
    assert (
        field_f1({"金额": None, "amount": "3856", "currency": "USD"}, {"amount": "3856.00", "currency": "USD"}) == 1.0
    )
    assert as_number(True) is None and as_number("12万") is None and as_number("-1,000.5") == -1000.5


def test_followup_scores_both_the_missing_items_and_the_questions(catalog: Catalog) -> None:
    spec = catalog.get("med_followup")
    reference = compact_json(
        {"missing": ["用药情况", "既往史"], "questions": ["您最近在吃什么药？", "以前有过类似情况吗？"]}
    )
    missing = json.loads(reference)["missing"]
    right_items_no_questions = compact_json({"missing": missing, "questions": ["请多喝水"]})
    both = compact_json({"missing": missing, "questions": ["您最近在吃什么药？", "以前有过类似情况吗？"]})
    assert score(spec, both, reference) == 1.0
    # missing right (1), questions: 请多喝水 shares no character with either reference question (0): mean 0.5.
    assert score(spec, right_items_no_questions, reference) == pytest.approx(0.5)


def test_reasoning_blocks_are_not_the_answer(catalog: Catalog) -> None:
    spec = catalog.get("fin_news_sentiment")
    reference = compact_json({"sentiment": "正面", "reason": "利润大增"})
    draft = '<think>Maybe {"sentiment": "负面", "reason": "x"}? No.</think>\n{"sentiment": "正面", "reason": "y"}'
    assert score(spec, draft, reference) == 1.0
    # A template that opened the block in the prompt: only the closing tag is in the answer.
    assert score(spec, 'draft {"sentiment": "负面"}</think>{"sentiment": "正面"}', reference) == 1.0
    # A block that never closes is all draft: nothing was answered.
    assert score(spec, '<think>{"sentiment": "正面", "reason": "y"}', reference) == 0.0
    assert strip_reasoning("<Thinking>a</Thinking>答案") == "答案"
    assert strip_fences("<think>```x```</think>\n```\nINTJ\n```") == "INTJ"


def test_every_fenced_block_is_tried_in_turn(catalog: Catalog) -> None:
    spec = catalog.get("fin_news_sentiment")
    reference = compact_json({"sentiment": "positive", "reason": "profit up"})
    answer = 'Plan:\n```text\nread, then answer\n```\nAnswer:\n```json\n{"sentiment": "positive", "reason": "r"}\n```'
    assert score(spec, answer, reference) == 1.0
    assert parse_json_lenient('```\n[1]\n```\n```json\n{"a": 2}\n```', dict) == {"a": 2}
    assert parse_json_lenient('```\nnot json\n```\nthen {"a": 3}', dict) == {"a": 3}  # outside any fence


def test_aspects_are_scored_by_canonical_name_with_their_aliases(catalog: Catalog) -> None:
    spec = catalog.get("con_aspect_scoring")
    reference = compact_json(
        {
            "aspects": [
                {"aspect": "菜品", "score": 90, "reason": "好吃"},
                {"aspect": "服务", "score": 30, "reason": "慢"},
            ]
        }
    )
    # 口味 is an alias of 菜品 and 服务态度 of 服务: both aspects match; credit 0.9 + 1.0 over 2 and 2.
    synonyms = '{"aspects":[{"aspect":"口味","score":80,"reason":"r"},{"aspect":"服务态度","score":30,"reason":"r"}]}'
    assert score(spec, synonyms, reference) == pytest.approx(0.95)
    # Without the aliases, the same answer matches nothing: what exact names did to the seeds' own 口味/菜品.
    assert aspect_score_f1(json.loads(synonyms)["aspects"], json.loads(reference)["aspects"]) == 0.0
    english = compact_json({"aspects": [{"aspect": "Price and value", "score": 20, "reason": "r"}]})
    assert score(spec, '{"aspects":[{"aspect":"value for money","score":20,"reason":"r"}]}', english) == 1.0
    assert score(spec, '{"aspects":[{"aspect":"vibes","score":20,"reason":"r"}]}', english) == 0.0


def test_a_closed_set_label_given_by_an_alias_counts_for_the_label_in_any_format(catalog: Catalog) -> None:
    spec = catalog.get("fin_intent")
    labels = spec.closed_sets["intent"]
    aliased = labels[0].model_copy(update={"aliases": type(labels[0].aliases)(en=("lost card",), zh=("丢卡",))})
    edited = spec.model_copy(update={"closed_sets": {"intent": [aliased, *labels[1:]]}})
    assert score(edited, "Lost card", labels[0].en) == 1.0 and score(spec, "Lost card", labels[0].en) == 0.0
    assert score(edited, "丢卡", labels[0].zh) == 1.0
