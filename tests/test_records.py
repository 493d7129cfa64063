"""Record files: every kind of bad line is reported with file, line, field and reason; good records pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from catalog import Catalog
from catalog.records import compact_json, record_id
from tests.conftest import write_jsonl
from validation.records import validate_files


def sentiment_record(catalog: Catalog, lang: str = "en", **changes: Any) -> dict[str, Any]:
    spec = catalog.get("fin_news_sentiment")
    if lang == "en":
        text = "Harbor Lane Foods cut its full-year revenue guidance after a recall of its frozen meals line."
        output = {"sentiment": "negative", "reason": "A guidance cut and a product recall both hurt the company."}
    else:
        text = "星河新材发布公告，预计上半年净利润同比下降六成，主要原因是原材料价格上涨。"
        output = {"sentiment": "负面", "reason": "业绩大幅预减，对公司明显不利。"}
    record = {
        "task": spec.id,
        "lang": lang,
        "role": "exemplar",
        "instruction": spec.instructions_for(lang)[0],
        "input": text,
        "output": compact_json(output),
    }
    record.update(changes)
    return record


def _failures(path: Path, catalog: Catalog) -> list[str]:
    return [str(p) for p in validate_files([path], catalog, path.parent).failures]


def test_well_formed_records_in_both_languages_pass(tmp_path: Path, catalog: Catalog) -> None:
    path = write_jsonl(tmp_path / "ok.jsonl", [sentiment_record(catalog, "en"), sentiment_record(catalog, "zh")])
    report = validate_files([path], catalog, path.parent)
    assert report.ok, report.render()
    assert (report.files, report.records) == (1, 2)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"task": "fin_news_sentiment", "lang": ', "ok.jsonl:2: not valid JSON"),
        ('["a", "list"]', "ok.jsonl:2: a record must be a JSON object, not list"),
    ],
)
def test_a_line_that_is_not_a_json_object_is_named(tmp_path: Path, catalog: Catalog, line: str, expected: str) -> None:
    path = write_jsonl(tmp_path / "ok.jsonl", [sentiment_record(catalog), line, sentiment_record(catalog, "zh")])
    [failure] = _failures(path, catalog)
    assert failure.startswith(str(path)) and expected in failure


def test_an_unknown_task_is_named(tmp_path: Path, catalog: Catalog) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [sentiment_record(catalog, task="fin_horoscope")])
    [failure] = _failures(path, catalog)
    assert failure.endswith("r.jsonl:1: task: unknown task 'fin_horoscope'")


def test_missing_and_unknown_fields_are_named(tmp_path: Path, catalog: Catalog) -> None:
    record = sentiment_record(catalog, colour="blue")
    del record["output"]
    path = write_jsonl(tmp_path / "r.jsonl", [record])
    failures = _failures(path, catalog)
    assert sorted(f.split("r.jsonl:1: ")[1] for f in failures) == ["colour: unknown field", "output: missing"]


def test_a_wrong_language_is_caught_both_ways(tmp_path: Path, catalog: Catalog) -> None:
    chinese_input = sentiment_record(catalog, "zh")["input"]
    english_as_zh = sentiment_record(catalog, "zh", input="Harbor Lane Foods shares fell after the recall news.")
    chinese_as_en = sentiment_record(catalog, "en", input=chinese_input)
    unknown_lang = {**sentiment_record(catalog), "lang": "fr"}
    path = write_jsonl(tmp_path / "r.jsonl", [english_as_zh, chinese_as_en, unknown_lang])
    failures = _failures(path, catalog)
    assert any(":1 [" in f and "input: reads as English" in f and "expected zh" in f for f in failures)
    assert any(":2 [" in f and "input: reads as Chinese" in f and "expected en" in f for f in failures)
    assert any(":3 [" in f and "lang: 'fr' fails isin" in f for f in failures)


def test_an_output_that_does_not_parse_is_named(tmp_path: Path, catalog: Catalog) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [sentiment_record(catalog, output='{"sentiment": "negative", ')])
    [failure] = _failures(path, catalog)
    assert "r.jsonl:1 [" in failure and "output: not valid JSON for format 'object'" in failure


def test_an_output_that_breaks_the_schema_names_the_field(tmp_path: Path, catalog: Catalog) -> None:
    english_label_in_zh = sentiment_record(
        catalog, "zh", output=compact_json({"sentiment": "negative", "reason": "业绩大幅预减。"})
    )
    extra_key = sentiment_record(catalog, output=compact_json({"sentiment": "negative", "reason": "A recall.", "x": 1}))
    path = write_jsonl(tmp_path / "r.jsonl", [english_label_in_zh, extra_key])
    failures = _failures(path, catalog)
    assert any(
        ":1 [" in f and "output.sentiment: 'negative' is not in the closed set (正面, 中性, 负面)" in f
        for f in failures
    )
    assert any(
        ":2 [" in f and "output: Additional properties are not allowed ('x' was unexpected)" in f for f in failures
    )


def test_the_instruction_must_be_one_of_the_task(tmp_path: Path, catalog: Catalog) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [sentiment_record(catalog, instruction="Tell me about this news.")])
    [failure] = _failures(path, catalog)
    assert "instruction: not one of the en instructions of task fin_news_sentiment" in failure


def test_the_same_input_twice_is_a_duplicate(tmp_path: Path, catalog: Catalog) -> None:
    first = sentiment_record(catalog)
    twin = sentiment_record(catalog, input=first["input"].upper() + "  ")  # equal after normalisation
    path = write_jsonl(tmp_path / "r.jsonl", [first, twin])
    failures = _failures(path, catalog)
    assert any(":2 [" in f and "same input as line 1" in f for f in failures)
    assert record_id("fin_news_sentiment", "en", first["input"]) == record_id("fin_news_sentiment", "en", twin["input"])


def test_a_given_id_must_be_the_derived_one(tmp_path: Path, catalog: Catalog) -> None:
    path = write_jsonl(tmp_path / "r.jsonl", [sentiment_record(catalog, id="0123456789abcdef")])
    [failure] = _failures(path, catalog)
    assert "id: '0123456789abcdef' is not the id derived from task, lang and input" in failure


def test_the_cli_lists_every_failure_and_exits_non_zero(tmp_path: Path, catalog: Catalog) -> None:
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            "not json",
            sentiment_record(catalog, task="nope"),
            sentiment_record(catalog),
            sentiment_record(catalog, "zh", output="{}"),
        ],
    )
    result = subprocess.run(
        [sys.executable, "-m", "cli", "validate", str(path), "--json"],
        capture_output=True, text=True, cwd=Path(__file__).parent.parent, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    # The file is not under the seeds folder, so its seed roles are claims the build would override: listed too.
    assert [(f["line"], f["field"]) for f in report["failures"]] == [
        (1, None),
        (2, "task"),
        (3, "role"),
        (4, "output"),
        (4, "output"),
        (4, "role"),
    ]
    assert report["records"] == 4 and not report["ok"]


def test_a_line_that_is_not_utf8_is_named_and_the_rest_is_read(tmp_path: Path, catalog: Catalog) -> None:
    path = tmp_path / "r.jsonl"
    good = json.dumps(sentiment_record(catalog), ensure_ascii=False).encode()
    path.write_bytes(
        good
        + b"\n"
        + b'{"task": "\xff\xfe"}\n'
        + json.dumps(sentiment_record(catalog, "zh"), ensure_ascii=False).encode()
        + b"\n"
    )
    report = validate_files([path], catalog, path.parent)
    assert [str(f).split("r.jsonl")[1] for f in report.failures] == [
        ":2: not UTF-8 text (invalid start byte at byte 10)"
    ]
    assert report.records == 3
