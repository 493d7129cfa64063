"""Blind second annotations (verdict `annotate` in reviews/) are scored by the build against the published test
references with the task's own metric, with Cohen's kappa for label tasks; the card prints the table; annotating
never changes a record."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cards.sections import human_agreement
from catalog import Catalog, load_catalog
from catalog.records import record_id
from catalog.settings import DATA_DIR_VARIABLE, Settings
from cli.main import app
from pipeline.build import build
from tests.conftest import DATA, write_jsonl
from validation.agreement import cohen_kappa
from validation.release_data import read_release


def test_cohen_kappa_on_hand_computed_cases() -> None:
    # observed 3/4; chance (2·1 + 2·3) / 16 = 1/2; kappa (0.75 − 0.5) / 0.5
    assert cohen_kappa([("a", "a"), ("a", "b"), ("b", "b"), ("b", "b")]) == pytest.approx(0.5)
    assert cohen_kappa([("a", "a"), ("b", "b"), ("c", "c")]) == pytest.approx(1.0)
    # always the opposite label: observed 0, chance 1/2
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)
    assert cohen_kappa([("a", "a"), ("a", "a")]) is None  # one label only: chance agreement is certain
    assert cohen_kappa([]) is None


def test_the_build_scores_blind_annotations_of_the_test_split_and_the_card_prints_them(
    tmp_path: Path, catalog: Catalog
) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA / "tasks", data / "tasks")
    (data / "seeds").mkdir()
    for task in ("fin_intent", "psy_support_reply"):
        shutil.copy(DATA / "seeds" / f"{task}.jsonl", data / "seeds")
    settings = Settings(data)
    first = read_release(build(catalog, settings).release, catalog)
    spec = catalog.get("fin_intent")
    rng = random.Random(3)
    lines, pairs = [], []
    for minute, row in enumerate(first.filter(first["task"] == "fin_intent").iter_rows(named=True)):
        labels = spec.labels(spec.label_set, row["lang"])
        answer = row["output"] if rng.random() < 0.6 else rng.choice([x for x in labels if x != row["output"]])
        lines.append(
            {
                "record": row["id"],
                "task": row["task"],
                "lang": row["lang"],
                "reviewer": "ines",
                "time": f"2026-12-05T{9 + minute // 60:02d}:{minute % 60:02d}:00Z",
                "verdict": "annotate",
                "output": answer,
            }
        )
        if row["split"] == "test" and row["lang"] == "en":
            pairs.append(
                (
                    spec.canonical_label(spec.label_set, "en", row["output"]),
                    spec.canonical_label(spec.label_set, "en", answer),
                )
            )
    (data / "reviews").mkdir()
    write_jsonl(data / "reviews" / "ines.jsonl", lines)

    result = build(catalog, settings)
    agreement = result.report["agreement"]
    assert agreement["annotations"] == len(lines)
    tested = first.filter((first["task"] == "fin_intent") & (first["split"] == "test"))
    assert agreement["scored"] == tested.height  # train and validation records are counted, not scored
    row = next(r for r in agreement["table"] if (r["task"], r["lang"]) == ("fin_intent", "en"))
    assert row["annotations"] == len(pairs)
    assert row["agreement"] == pytest.approx(sum(a == b for a, b in pairs) / len(pairs))
    assert row["kappa"] == pytest.approx(cohen_kappa(pairs))
    assert not [r for r in agreement["table"] if r["task"] == "psy_support_reply"]  # nothing annotated there
    # Annotating decides nothing: the release is the same records with the same outputs.
    second = read_release(result.release, catalog)
    assert second.sort("id").select("id", "output", "split").equals(first.sort("id").select("id", "output", "split"))
    saved = json.loads((result.release / "build_report.json").read_text("utf-8"))
    assert saved["agreement"] == agreement

    # One command recomputes it from the folder, without a build.
    printed = CliRunner().invoke(app, ["agreement", "--json"], env={DATA_DIR_VARIABLE: str(data)})
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)["table"] == agreement["table"]

    section = human_agreement(catalog, saved)
    assert (
        f"| {spec.code} | fin_intent | en | {len(pairs)} | {row['agreement']:.2f} | {row['kappa']:.2f} | "
        f"{row['disagreements']} | {row['adjudicated']:.2f} |"
    ) in section
    assert "No blind second annotations" in human_agreement(catalog, {"agreement": {"table": []}})


def _fixture_folder(tmp_path: Path, catalog: Catalog) -> tuple[Path, list[dict[str, str]], list[str]]:
    """A data folder whose fin_intent seeds are five English gold records, and five other labels for them."""
    data = tmp_path / "data"
    shutil.copytree(DATA / "tasks", data / "tasks")
    rows = [json.loads(line) for line in (DATA / "seeds" / "fin_intent.jsonl").read_text("utf-8").splitlines()]
    gold = [r for r in rows if r["role"] == "gold" and r["lang"] == "en"][:5]
    labels = catalog.get("fin_intent").labels("intent", "en")
    others = [next(x for x in labels if x != r["output"]) for r in gold]
    write_jsonl(data / "seeds" / "fin_intent.jsonl", gold)
    return data, gold, others


def _annotation(record: dict[str, str], output: str, reviewer: str, minute: int) -> dict[str, str]:
    return {
        "record": record_id("fin_intent", "en", record["input"]),
        "task": "fin_intent",
        "lang": "en",
        "reviewer": reviewer,
        "time": f"2026-12-07T10:{minute:02d}:00Z",
        "verdict": "annotate",
        "output": output,
    }


def test_the_agreement_command_reports_before_and_after_adjudication_from_the_folder(
    tmp_path: Path, catalog: Catalog
) -> None:
    data, gold, others = _fixture_folder(tmp_path, catalog)
    ids = [record_id("fin_intent", "en", r["input"]) for r in gold]
    # ines agrees on records 0 and 1 and disagrees on 2, 3 and 4; jo disagrees on 1 and nobody has looked at it.
    answers = [gold[0]["output"], gold[1]["output"], others[2], others[3], others[4]]
    annotations = [_annotation(r, a, "ines", i) for i, (r, a) in enumerate(zip(gold, answers, strict=True))]
    annotations.append(_annotation(gold[1], others[1], "jo", 30))
    write_jsonl(data / "reviews" / "annotations.jsonl", annotations)

    def entry(index: int, outcome: str, **extra: str) -> dict[str, str]:
        return {
            "record": ids[index], "task": "fin_intent", "lang": "en", "outcome": outcome,
            "reason": "looked again", "by": "ada", "time": "2026-12-07T11:00:00Z", **extra,
        }  # fmt: skip

    # 2 kept (ines was wrong); 3 fixed: the reference becomes ines's label; 4 dropped from the seeds.
    write_jsonl(
        data / "adjudication" / "fin_intent.jsonl",
        [entry(2, "kept"), entry(3, "fixed", before=gold[3]["output"]), entry(4, "dropped", before=gold[4]["output"])],
    )
    write_jsonl(data / "seeds" / "fin_intent.jsonl", [gold[0], gold[1], gold[2], {**gold[3], "output": others[3]}])
    env = {DATA_DIR_VARIABLE: str(data)}
    assert CliRunner().invoke(app, ["validate"], env=env).exit_code == 0

    printed = CliRunner().invoke(app, ["agreement", "--json"], env=env)
    assert printed.exit_code == 0, printed.output
    result = json.loads(printed.output)
    row = next(r for r in result["table"] if (r["task"], r["lang"]) == ("fin_intent", "en"))
    # Before adjudication, 2 of 6 annotations agree; ines's 3 disagreements are adjudicated, jo's is open.
    assert row["annotations"] == 6 and row["agreement"] == pytest.approx(2 / 6)
    assert (row["disagreements"], row["kept"], row["fixed"], row["dropped"], row["open"]) == (4, 1, 1, 1, 1)
    # After it: record 4 is gone, record 3's reference is ines's answer: 3 of 5 agree.
    assert row["adjudicated"] == pytest.approx(3 / 5)
    assert [(o["record"], o["reviewer"]) for o in result["open"]] == [(ids[1], "jo")]
    table = CliRunner().invoke(app, ["agreement", "--open"], env=env)
    assert ids[1] in table.output and "0.333" in table.output and "0.600" in table.output


def test_adjudication_lines_are_checked_and_the_blind_sheet_holds_no_answer(tmp_path: Path, catalog: Catalog) -> None:
    data, gold, _ = _fixture_folder(tmp_path, catalog)
    ids = [record_id("fin_intent", "en", r["input"]) for r in gold]
    base = {"task": "fin_intent", "lang": "en", "reason": "r", "by": "ada", "time": "2026-12-07T11:00:00Z"}
    write_jsonl(
        data / "adjudication" / "log.jsonl",
        [
            {**base, "record": ids[0], "outcome": "maybe"},
            {**base, "record": ids[1], "outcome": "fixed"},  # no `before`: the raw agreement could not be recomputed
            "{not json",
            {**base, "record": ids[2], "outcome": "kept", "lang": "fr"},
        ],
    )
    env = {DATA_DIR_VARIABLE: str(data)}
    checked = CliRunner().invoke(app, ["validate"], env=env)
    assert checked.exit_code == 1
    name = "log.jsonl"
    for line, field in ((1, "outcome"), (2, "before"), (3, None), (4, "lang")):
        assert any(name in x and f":{line}" in x and (field is None or field in x) for x in checked.output.splitlines())
    refused = CliRunner().invoke(app, ["agreement"], env=env)
    assert refused.exit_code == 1 and "invalid line" in refused.output

    sheet = tmp_path / "sheet.jsonl"
    made = CliRunner().invoke(app, ["seeds", "blind", "--task", "fin_intent", "--out", str(sheet)], env=env)
    assert made.exit_code == 0, made.output
    rows = [json.loads(line) for line in sheet.read_text("utf-8").splitlines()]
    assert [r["record"] for r in rows] == ids
    assert all(set(r) == {"record", "task", "lang", "instruction", "input"} for r in rows)
    assert [r["input"] for r in rows] == [g["input"] for g in gold]


def test_a_free_text_task_sets_its_own_tolerance_and_a_row_below_the_bar_says_why(
    tmp_path: Path, catalog: Catalog
) -> None:
    """ROUGE-L has no default tolerance (two good replies share few words); a task whose rules pin its text down
    sets `metric.tolerance`, and then its far-off annotations need adjudication. A row under 0.6 prints the task's
    agreement_note under the table, in the command's output and on the card."""
    import yaml

    data = tmp_path / "data"
    shutil.copytree(DATA / "tasks", data / "tasks")
    task_file = data / "tasks" / "med_standardize.yaml"
    spec = yaml.safe_load(task_file.read_text("utf-8"))
    spec["metric"].pop("tolerance", None)  # start from ROUGE-L's default: no tolerance
    spec.pop("agreement_note", None)
    task_file.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    instruction = load_catalog(data / "tasks").get("med_standardize").instructions_for("en")[0]
    cases = [  # (input, reference, second annotation)
        ("My knee has been swelling up on and off for about six weeks.", "Recurrent swelling of the knee for 6 weeks",
         "Recurrent swelling of the knee for 6 weeks"),
        ("Burning when I pee for three days, and I need to go all the time.", "Dysuria and urinary frequency for 3 days",
         "Painful urination and frequency for 3 days"),
        ("I've felt dizzy since yesterday and fainted once this morning.", "Dizziness for 1 day, syncope this morning",
         "Loss of consciousness"),
    ]  # fmt: skip
    seeds = [
        {"task": "med_standardize", "lang": "en", "role": "gold", "instruction": instruction, "input": i, "output": o}
        for i, o, _ in cases
    ]
    write_jsonl(data / "seeds" / "med_standardize.jsonl", seeds)
    write_jsonl(
        data / "reviews" / "annotations.jsonl",
        [
            {"record": record_id("med_standardize", "en", i), "task": "med_standardize", "lang": "en",
             "reviewer": "ines", "time": "2026-12-07T10:00:00Z", "verdict": "annotate", "output": a}
            for i, _, a in cases
        ],
    )  # fmt: skip
    env = {DATA_DIR_VARIABLE: str(data)}

    def row() -> dict:
        printed = CliRunner().invoke(app, ["agreement", "--json"], env=env)
        assert printed.exit_code == 0, printed.output
        return next(r for r in json.loads(printed.output)["table"] if r["task"] == "med_standardize")

    untolerant = row()
    assert untolerant["disagreements"] == 0 and "note" not in untolerant  # no tolerance, no note written
    assert untolerant["agreement"] < 0.6

    spec["metric"]["tolerance"] = 0.5
    spec["agreement_note"] = "two clinicians word a chief complaint differently"
    task_file.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    strict = row()
    assert (strict["disagreements"], strict["open"]) == (1, 1)  # only the third is far off
    assert strict["agreement"] == pytest.approx(untolerant["agreement"])
    assert strict["note"] == spec["agreement_note"]
    table = CliRunner().invoke(app, ["agreement"], env=env).output
    assert f"below 0.6: med_standardize (en): {spec['agreement_note']}" in table
    card = human_agreement(load_catalog(data / "tasks"), {"agreement": {"table": [strict]}})
    assert card.rstrip().endswith(f"below 0.6: med_standardize (en): {spec['agreement_note']}")

    spec["metric"]["tolerance"] = 1.5
    task_file.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    refused = CliRunner().invoke(app, ["validate"], env=env)
    assert refused.exit_code == 1 and "metric.tolerance" in refused.output


def test_a_later_blind_round_replaces_the_earlier_one_and_meets_todays_references(
    tmp_path: Path, catalog: Catalog
) -> None:
    """A task redefined after a round below the bar is annotated afresh (`round: 2`): only the latest round is scored,
    an annotation made after an adjudication line meets today's reference (not the line's `before`), and a later
    round's disagreement needs a line of its own."""
    data, gold, others = _fixture_folder(tmp_path, catalog)
    ids = [record_id("fin_intent", "en", r["input"]) for r in gold]
    # Round 1: ines disagrees on records 0 and 1; record 0's reference is then fixed to her label, 1 kept.
    first = [_annotation(gold[0], others[0], "ines", 0), _annotation(gold[1], others[1], "ines", 1)]
    first += [_annotation(r, r["output"], "ines", 2 + i) for i, r in enumerate(gold[2:])]
    adjudicated = {"task": "fin_intent", "lang": "en", "reason": "looked again", "by": "ada"}
    write_jsonl(
        data / "adjudication" / "fin_intent.jsonl",
        [
            {**adjudicated, "record": ids[0], "outcome": "fixed", "before": gold[0]["output"],
             "time": "2026-12-07T11:00:00Z"},
            {**adjudicated, "record": ids[1], "outcome": "kept", "time": "2026-12-07T11:00:00Z"},
        ],
    )  # fmt: skip
    write_jsonl(data / "seeds" / "fin_intent.jsonl", [{**gold[0], "output": others[0]}, *gold[1:]])
    # Round 2, after the adjudication: jo agrees with today's reference of record 0 (ines's label) and disagrees on 1.
    second = [{**_annotation(gold[0], others[0], "jo", 0), "time": "2026-12-07T12:00:00Z", "round": 2}]
    second.append({**_annotation(gold[1], others[1], "jo", 1), "time": "2026-12-07T12:01:00Z", "round": 2})
    second += [
        {**_annotation(r, r["output"], "jo", 2 + i), "time": f"2026-12-07T12:1{i}:00Z", "round": 2}
        for i, r in enumerate(gold[2:])
    ]
    write_jsonl(data / "reviews" / "annotations.jsonl", first + second)
    env = {DATA_DIR_VARIABLE: str(data)}
    assert CliRunner().invoke(app, ["validate"], env=env).exit_code == 0

    result = json.loads(CliRunner().invoke(app, ["agreement", "--json"], env=env).output)
    row = next(r for r in result["table"] if r["task"] == "fin_intent")
    assert (result["annotations"], result["earlier_rounds"], result["scored"]) == (10, 5, 5)
    assert row["round"] == 2 and row["annotations"] == 5
    assert row["agreement"] == pytest.approx(4 / 5)  # record 0 is scored against today's reference, not `before`
    assert (row["disagreements"], row["kept"], row["fixed"], row["open"]) == (1, 0, 0, 1)
    assert [(o["record"], o["reviewer"]) for o in result["open"]] == [(ids[1], "jo")]  # round 1's line answers ines
    printed = CliRunner().invoke(app, ["agreement"], env=env).output
    assert "10 annotations, 5 of them on gold records (5 of earlier blind rounds, not scored)" in printed

    # Without round 2, the same folder reports round 1 as before: 3 of 5, both disagreements answered.
    write_jsonl(data / "reviews" / "annotations.jsonl", first)
    again = json.loads(CliRunner().invoke(app, ["agreement", "--json"], env=env).output)["table"][0]
    assert (again["round"], again["agreement"], again["disagreements"], again["open"]) == (1, 3 / 5, 2, 0)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"round": 0}, "must be a whole number from 1"),
        ({"round": "2"}, "must be a whole number from 1"),
        ({"round": True}, "must be a whole number from 1"),
        ({"round": 2, "verdict": "accept"}, "only an annotation belongs to a blind round"),
    ],
)
def test_a_bad_round_is_named(extra: dict, reason: str, catalog: Catalog) -> None:
    from validation.reviews import parse_decision

    line = {"record": "r", "task": "fin_intent", "lang": "en", "reviewer": "jo", "time": "2026-12-07T12:00:00Z",
            "verdict": "annotate", "output": "Balance inquiry", **extra}  # fmt: skip
    decision, problems = parse_decision(json.dumps(line), catalog, "reviews/jo.jsonl", 3)
    assert decision is None and [(p.field, p.line) for p in problems] == [("round", 3)]
    assert reason in problems[0].reason
