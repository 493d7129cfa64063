"""The catalog: the real 25 tasks load and fit together; every kind of broken task file is reported clearly."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from catalog import Catalog, CatalogError, load_catalog
from catalog.spec import LANGS, MIN_SCENARIOS
from tests.conftest import read_task, write_task

TASKS_MD_IDS = {
    "med_key_info": "M1", "med_standardize": "M2", "med_followup": "M3", "med_triage": "M4",
    "fin_question_structuring": "F1", "fin_intent": "F2", "fin_entities": "F3", "fin_news_sentiment": "F4",
    "law_keywords": "L1", "law_case_decomposition": "L2", "law_charge_prediction": "L3",
    "law_sentence_prediction": "L4", "psy_state_assessment": "P1", "psy_support_reply": "P2",
    "psy_cognitive_distortion": "P3", "con_review_emotion_words": "C1", "con_aspect_scoring": "C2",
    "con_complaint_routing": "C3", "con_reply_draft": "C4", "hr_resume_parse": "H1", "hr_jd_match": "H2",
    "hr_interview_questions": "H3", "hr_exit_reasons": "H4", "rp_mbti_reply": "R1", "rp_mbti_identify": "R2",
}  # fmt: skip


def test_the_catalog_holds_every_task_of_tasks_md(catalog: Catalog) -> None:
    assert {t.id: t.code for t in catalog} == TASKS_MD_IDS
    assert catalog.domains == ["consumer", "finance", "hr", "law", "medical", "psychology", "roleplay"]


def test_every_task_is_complete_in_both_languages(catalog: Catalog) -> None:
    for spec in catalog:
        for lang in LANGS:
            assert 2 <= len(spec.instructions_for(lang)) <= 4, spec.id
            assert len(getattr(spec.scenarios, lang)) >= MIN_SCENARIOS, spec.id
            for text in spec.instructions_for(lang):
                assert not any(f"{{{name}}}" in text for name in spec.closed_sets), (spec.id, text)
            schema = spec.output_schema(lang)
            jsonschema.Draft202012Validator.check_schema(schema)
            for set_name in spec.closed_sets:
                assert schema["$defs"][set_name]["enum"] == spec.labels(set_name, lang)


def test_placeholders_expand_to_the_labels_of_the_language(catalog: Catalog) -> None:
    spec = catalog.get("fin_news_sentiment")
    assert any("positive, neutral, negative" in text for text in spec.instructions_for("en"))
    assert any("正面、中性、负面" in text for text in spec.instructions_for("zh"))


def test_lookup_by_id_code_and_domain(catalog: Catalog) -> None:
    assert catalog.get("M4").id == "med_triage"
    assert catalog.get("m4").id == "med_triage"
    assert catalog.get("law_keywords").code == "L1"
    assert [t.code for t in catalog.by_domain("roleplay")] == ["R2", "R1"]
    assert [t.id for t in catalog.select(["roleplay", "F2"])] == ["fin_intent", "rp_mbti_identify", "rp_mbti_reply"]
    assert len(catalog.select(["all"])) == 25
    with pytest.raises(KeyError, match="no task with id or code 'nope'"):
        catalog.get("nope")


def _problems(data_dir: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(data_dir / "tasks")
    return [str(p) for p in caught.value.problems]


def test_a_missing_field_is_named_with_file_and_field(data_dir: Path, edit_task) -> None:
    edit_task("fin_intent", lambda s: s.pop("metric"))
    assert _problems(data_dir) == ["tasks/fin_intent.yaml:1: metric: Field required"]


def test_an_unknown_output_format_is_named(data_dir: Path, edit_task) -> None:
    path = edit_task("fin_intent", lambda s: s["output"].update(format="table"))
    [problem] = _problems(data_dir)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "format: table" in text)
    assert problem.startswith(f"tasks/fin_intent.yaml:{line}: output.format: unknown value 'table'")


def test_an_unknown_metric_is_named(data_dir: Path, edit_task) -> None:
    edit_task("fin_intent", lambda s: s["metric"].update(name="bleu"))
    [problem] = _problems(data_dir)
    assert "fin_intent.yaml" in problem and "metric.name: unknown value 'bleu'" in problem


def test_duplicate_ids_and_codes_are_reported(data_dir: Path) -> None:
    spec = read_task(data_dir, "fin_intent")
    write_task(data_dir, "fin_intent_copy", {**spec, "id": "fin_intent_copy"})  # same code F2
    spec_other = read_task(data_dir, "law_keywords")
    (data_dir / "tasks" / "law_keywords_v2.yaml").write_text(
        (data_dir / "tasks" / "law_keywords.yaml").read_text(), encoding="utf-8"
    )  # same id, and an id that differs from its file name
    problems = _problems(data_dir)
    assert any("fin_intent" in p and "code: duplicate code 'F2'" in p for p in problems)
    assert any(
        "law_keywords_v2.yaml" in p and "id: id 'law_keywords' differs from the file name" in p for p in problems
    )
    assert spec_other["code"] == "L1"


def test_an_invalid_json_schema_is_named(data_dir: Path, edit_task) -> None:
    edit_task("fin_news_sentiment", lambda s: s["output"]["schema"].update(type="objekt"))
    problems = _problems(data_dir)
    assert any("fin_news_sentiment.yaml" in p and "output.schema.type: invalid JSON schema" in p for p in problems)


def test_a_reference_to_a_missing_closed_set_is_named(data_dir: Path, edit_task) -> None:
    edit_task("fin_news_sentiment", lambda s: s["closed_sets"].update(tone=s["closed_sets"].pop("sentiment")))
    problems = _problems(data_dir)
    assert any("$ref '#/$defs/sentiment' names no closed set (closed_sets has: tone)" in p for p in problems)
    assert any("instructions.en.0: placeholder {sentiment} names no closed set" in p for p in problems)


def test_a_closed_set_empty_in_one_language_is_named(data_dir: Path, edit_task) -> None:
    def drop_chinese(spec: dict) -> None:
        spec["closed_sets"]["sentiment"] = [{"en": label["en"]} for label in spec["closed_sets"]["sentiment"]]

    edit_task("fin_news_sentiment", drop_chinese)
    problems = _problems(data_dir)
    assert any("closed_sets.sentiment: closed set is empty in zh" in p for p in problems)


def test_an_alias_that_names_another_label_is_named(data_dir: Path, edit_task) -> None:
    def clash(spec: dict) -> None:
        aspects = spec["closed_sets"]["aspect"]
        aspects[1]["aliases"] = {"en": ["Food and drink"], "zh": ["口味"]}  # a label, and another label's alias

    edit_task("con_aspect_scoring", clash)
    problems = _problems(data_dir)
    assert any(
        "closed_sets.aspect.1.aliases.en: alias 'Food and drink' already names 'Food and drink'" in p for p in problems
    )
    assert any("closed_sets.aspect.1.aliases.zh: alias '口味' already names '菜品'" in p for p in problems)


def test_broken_yaml_names_its_line(data_dir: Path) -> None:
    path = data_dir / "tasks" / "fin_intent.yaml"
    lines = path.read_text().splitlines()
    lines[3] = "name: [unclosed"
    path.write_text("\n".join(lines))
    [problem] = _problems(data_dir)
    assert problem.startswith("tasks/fin_intent.yaml:") and "not valid YAML" in problem


def test_every_error_of_every_file_is_reported_at_once(data_dir: Path, edit_task) -> None:
    edit_task("fin_intent", lambda s: s.pop("code"))
    edit_task("law_keywords", lambda s: s["metric"].update(name="bleu"))
    edit_task("hr_exit_reasons", lambda s: s["scenarios"].update(en=["only one"]))
    problems = _problems(data_dir)
    assert len(problems) == 3
    assert {p.split(":")[0] for p in problems} == {
        "tasks/fin_intent.yaml",
        "tasks/law_keywords.yaml",
        "tasks/hr_exit_reasons.yaml",
    }


@pytest.fixture(autouse=True)
def _run_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Problems name files relative to the working directory, as a user would type them.
    monkeypatch.chdir(tmp_path)


def test_a_label_distribution_names_only_labels_of_a_label_task(data_dir: Path, edit_task) -> None:
    edit_task(
        "fin_intent", lambda s: s.update(label_distribution={"Fraud report": 3, "Lottery win": 1, "Complaint": -1})
    )
    edit_task("med_triage", lambda s: s.update(label_distribution={"Cardiology": 1}))
    problems = "\n".join(_problems(data_dir))
    assert "fin_intent.yaml" in problems and "label_distribution.Lottery win: not a label of 'intent'" in problems
    assert "label_distribution.Complaint: weight -1 is negative" in problems
    assert "med_triage.yaml" in problems and "only a task of format `label`" in problems


def _one_language(document: dict, lang: str) -> dict:
    """A bilingual task document cut down to one of its languages."""
    cut = {**document, "languages": [lang]}
    for field in ("name", "instructions", "input", "scenarios"):
        cut[field] = {lang: document[field][lang]}
    cut["closed_sets"] = {
        name: [
            {lang: label[lang], **({"aliases": {lang: label["aliases"].get(lang, [])}} if "aliases" in label else {})}
            for label in labels
        ]
        for name, labels in document.get("closed_sets", {}).items()
    }
    for field in ("rules", "judge"):  # optional per-language lines
        if field in document:
            cut[field] = {lang: document[field].get(lang, [])}
    return cut


def test_every_task_of_the_catalog_cut_to_one_language_is_a_valid_one_language_task(catalog: Catalog) -> None:
    from catalog.loader import check_task_document

    for spec in catalog:
        document = read_task(Path(__file__).resolve().parent.parent / "datasets", spec.id)
        for lang in LANGS:
            cut, problems = check_task_document(_one_language(document, lang), spec.id, file_stem=spec.id)
            assert problems == [] and cut is not None, (spec.id, lang, problems)
            assert cut.languages == (lang,)
            assert cut.instructions_for(lang) == spec.instructions_for(lang)
            assert cut.output_schema(lang) == spec.output_schema(lang)
            other = next(other for other in LANGS if other != lang)
            assert getattr(cut.name, other) is None and cut.title(other) == getattr(spec.name, lang)


def test_a_task_names_what_its_languages_lack_or_what_it_has_beyond_them(data_dir: Path, edit_task) -> None:
    def drop_chinese(spec: dict) -> None:
        for field in ("name", "instructions", "input", "scenarios"):
            del spec[field]["zh"]
        spec.pop("rules", None)

    edit_task("fin_intent", drop_chinese)
    problems = _problems(data_dir)
    assert [p.split(": ", 2)[1] for p in problems] == ["name.zh", "instructions.zh", "input.zh", "scenarios.zh"]
    assert all("missing: the task is written in en, zh" in p and "`languages: [en]`" in p for p in problems)

    edit_task("fin_intent", lambda spec: spec.update(languages=["en"]))
    assert load_catalog(data_dir / "tasks").get("fin_intent").languages == ("en",)  # zh labels may stay

    edit_task("fin_intent", lambda spec: spec["name"].update(zh="意图"))
    [problem] = _problems(data_dir)
    assert "name.zh: the task is written in en only: add zh to `languages` or remove this" in problem

    edit_task("fin_intent", lambda spec: (spec["name"].pop("zh"), spec.update(languages=["en", "en"])))
    [problem] = _problems(data_dir)
    assert "languages: a language is named twice (en, en)" in problem
    edit_task("fin_intent", lambda spec: spec.update(languages=["fr"]))
    assert any("languages.0: unknown value 'fr'" in p for p in _problems(data_dir))


def test_a_domain_is_any_snake_case_word(data_dir: Path, edit_task) -> None:
    edit_task("fin_intent", lambda spec: spec.update(domain="front_desk"))
    catalog = load_catalog(data_dir / "tasks")
    assert "front_desk" in catalog.domains and [t.id for t in catalog.select(["front_desk"])] == ["fin_intent"]
    edit_task("fin_intent", lambda spec: spec.update(domain="Front desk"))
    [problem] = _problems(data_dir)
    assert "domain: String should match pattern" in problem
