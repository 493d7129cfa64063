"""The benchmark over the real data (ANNOTATION.md): each task whose gold set has been built holds at least 100
gold and 40 exemplar records per language, every gold record has a blind second annotation (or is the rewrite of
one whose input adjudication changed), every disagreement has its adjudication line, and agreement is at least 0.6
or the task's row says why not (its agreement_note).
Tasks join BENCHMARK_TASKS when their gold set has gone through all four steps."""

from __future__ import annotations

import pytest

from catalog import Catalog
from catalog.settings import Settings
from tests.conftest import DATA
from validation.agreement import MIN_AGREEMENT, human_agreement, read_folder_annotations

MIN_GOLD, MIN_EXEMPLARS = 100, 40
BENCHMARK_TASKS = (
    "con_aspect_scoring",
    "con_complaint_routing",
    "con_reply_draft",
    "con_review_emotion_words",
    "fin_entities",
    "fin_question_structuring",
    "fin_intent",
    "fin_news_sentiment",
    "hr_exit_reasons",
    "hr_interview_questions",
    "hr_jd_match",
    "hr_resume_parse",
    "law_case_decomposition",
    "law_charge_prediction",
    "law_keywords",
    "law_sentence_prediction",
    "med_followup",
    "med_key_info",
    "med_standardize",
    "med_triage",
    "psy_cognitive_distortion",
    "psy_state_assessment",
    "psy_support_reply",
    "rp_mbti_identify",
    "rp_mbti_reply",
)


@pytest.fixture(scope="module")
def folder(catalog: Catalog):
    return read_folder_annotations(catalog, Settings(DATA))


def test_the_annotation_files_are_valid(folder) -> None:
    assert not folder.problems, "\n".join(map(str, folder.problems[:10]))


@pytest.mark.parametrize("task", BENCHMARK_TASKS)
def test_a_benchmark_task_is_complete(task: str, catalog: Catalog, folder) -> None:
    spec = catalog.get(task)
    refs = folder.references.filter(folder.references["task"] == task)
    seeds = [r for r in _seed_rows(task)]
    annotated = set(folder.annotations["record"].to_list())
    for lang in spec.languages:
        gold = refs.filter(refs["lang"] == lang)
        assert gold.height >= MIN_GOLD, (task, lang, gold.height)
        exemplars = sum(r["role"] == "exemplar" and r["lang"] == lang for r in seeds)
        assert exemplars >= MIN_EXEMPLARS, (task, lang, exemplars)
        missing = set(gold["id"].to_list()) - annotated  # a replacement record too is annotated blind
        assert not missing, (task, lang, sorted(missing)[:5])
    result = human_agreement(
        folder.annotations.filter(folder.annotations["task"] == task), folder.references, folder.adjudications, catalog
    )
    for row in result["table"]:
        assert row["open"] == 0, (task, row["lang"], [o["record"] for o in result["open"]][:5])
        assert row["agreement"] >= MIN_AGREEMENT or row.get("note"), (task, row["lang"], row["agreement"])


def _seed_rows(task: str) -> list[dict]:
    import json

    return [json.loads(line) for line in (DATA / "seeds" / f"{task}.jsonl").read_text("utf-8").splitlines()]
