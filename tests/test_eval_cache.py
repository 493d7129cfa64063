"""The evaluation reuses a prediction only when what determines it is unchanged: the model's and adapter's files,
the endpoint, the generation parameters and the prompt. Evaluating a wrong model and then the right one under the
same name asks the right one again (it used to report the first model's score)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from catalog import Catalog
from catalog.records import record_id
from tests.conftest import seed_records
from training.evaluation import PREDICTIONS_FILE, EvalRun, evaluate
from training.fingerprint import folder_fingerprint, run_fingerprint


def gold_records(catalog: Catalog) -> pl.DataFrame:
    rows = [r for r in seed_records("fin_intent") if r["lang"] == "en"][:6]
    return pl.DataFrame(
        [
            {
                "id": record_id(r["task"], r["lang"], r["input"]),
                **{k: r[k] for k in ("task", "lang", "instruction", "input", "output")},
            }
            for r in rows
        ]
    )


class Model:
    """A predictor that answers every prompt the same way and counts what it was asked."""

    def __init__(self, answer: str | None) -> None:
        self.answer, self.asked = answer, 0

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        self.asked += len(pairs)
        return [self.answer or "" for _ in pairs]


def fingerprint_of(folder: Path, max_new_tokens: int = 512) -> str:
    return run_fingerprint(
        model=str(folder),
        adapter=None,
        endpoint=None,
        generation={"max_new_tokens": max_new_tokens},
        prompt_format="v1",
    )


def test_a_changed_model_under_the_same_name_is_asked_again(catalog: Catalog, tmp_path: Path) -> None:
    records = gold_records(catalog)
    out = tmp_path / "eval" / "my-model"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"wrong weights")
    wrong = Model("Complaint")
    first = evaluate(
        catalog, records, wrong, EvalRun("my-model", "base", str(model_dir), None, fingerprint_of(model_dir)), out
    )
    assert wrong.asked == records.height
    # The same run again: nothing is asked, the score is the same.
    again = Model("never asked")
    assert (
        evaluate(
            catalog, records, again, EvalRun("my-model", "base", str(model_dir), None, fingerprint_of(model_dir)), out
        )
        == first
    )
    assert again.asked == 0
    # The right weights in the same folder, under the same name: every record is asked again and scored anew.
    (model_dir / "weights.bin").write_bytes(b"right weights")
    answers = dict(zip(records["input"].to_list(), records["output"].to_list(), strict=True))
    asked = []

    def oracle(pairs: Sequence[tuple[str, str]]) -> list[str]:
        asked.extend(pairs)
        return [answers[i] for _, i in pairs]

    second = evaluate(
        catalog, records, oracle, EvalRun("my-model", "base", str(model_dir), None, fingerprint_of(model_dir)), out
    )
    assert len(asked) == records.height
    assert second["tasks"]["fin_intent"]["score"] == 1.0
    assert first["tasks"]["fin_intent"]["score"] < 1.0
    # Other generation parameters are another run too.
    longer = Model("Complaint")
    evaluate(
        catalog,
        records,
        longer,
        EvalRun("my-model", "base", str(model_dir), None, fingerprint_of(model_dir, 1024)),
        out,
    )
    assert longer.asked == records.height


def test_predictions_from_before_keys_are_redone(catalog: Catalog, tmp_path: Path) -> None:
    records = gold_records(catalog)
    out = tmp_path / "eval" / "old"
    out.mkdir(parents=True)
    old = [
        {"id": i, "task": "fin_intent", "lang": "en", "prediction": "x", "reference": "y", "score": 0.0}
        for i in records["id"]
    ]
    (out / PREDICTIONS_FILE).write_text("".join(json.dumps(r) + "\n" for r in old), encoding="utf-8")
    model = Model("Complaint")
    evaluate(catalog, records, model, EvalRun("old", "base", "m", None, "f1"), out)
    assert model.asked == records.height


def test_folder_fingerprints_follow_names_sizes_and_content(tmp_path: Path) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 16}')
    (folder / "adapter_model.safetensors").write_bytes(bytes(1000))
    base = folder_fingerprint(folder)
    assert folder_fingerprint(folder) == base
    (folder / "adapter_model.safetensors").write_bytes(bytes(999) + b"\x01")
    changed = folder_fingerprint(folder)
    assert changed != base
    (folder / "adapter_config.json").rename(folder / "config.json")
    assert folder_fingerprint(folder) not in (base, changed)
    assert folder_fingerprint("Qwen/Qwen2-7B") != folder_fingerprint("Qwen/Qwen2-7B-Instruct")
