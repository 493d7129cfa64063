"""LoRA SFT on the seed release with a tiny random Qwen2 (real Qwen2 vocabulary), offline, on CPU: the loss falls,
only the output is trained, packed sequences stay apart, the adapter saves, reloads and merges, and evaluation of the
base model and the adapter yields the model × task matrix."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from catalog import Catalog
from cli.main import app
from tests.tiny_model import seed_release, tiny_model_dir
from training.data import load_split
from training.execution import plan_execution
from training.run_config import RunConfig
from training.sft import build_trainer, load_for_inference, load_model, load_tokenizer, merge_adapter, to_dataset

TASKS = ["fin_intent", "rp_mbti_identify"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One training run through the command line: a run config file, the tiny model, the seed release."""
    root = tmp_path_factory.mktemp("train")
    config = root / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "model": str(tiny_model_dir()),
                "release": str(seed_release()),
                "tasks": TASKS,
                "max_length": 320,  # some fin_intent records are longer: left out, not cut
                "epochs": 0.05,  # a fraction of a step at 4 rows a step: the schedule must make it train
                "min_steps": 6,
                "learning_rate": 1e-2,
                "warmup_ratio": 0.2,
                "micro_batch_size": 1,
                "gradient_accumulation_steps": 4,
                "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
                "logging_steps": 10,
                "output_dir": str(root / "runs"),
            }
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["train", "--config", str(config)])
    assert result.exit_code == 0, result.output
    run_dir = root / "runs" / "tiny"
    return {
        "root": root,
        "run_dir": run_dir,
        "output": result.output,
        "run": json.loads((run_dir / "run.json").read_text()),
    }


def test_a_few_steps_lower_the_validation_loss(trained: dict[str, Any]) -> None:
    run = trained["run"]
    assert run["tasks"] == TASKS and run["train_records"] > 0
    assert run["eval_loss_after"] < run["eval_loss_before"] - 0.1, run


def test_a_small_release_still_trains_its_minimum_steps_and_logs_each(trained: dict[str, Any]) -> None:
    run = trained["run"]
    schedule = run["schedule"]
    assert (schedule["steps"], schedule["accumulation"], schedule["sized_by"]) == (6, 1, "min_steps"), schedule
    assert schedule["warmup_steps"] == 2 and schedule["logging_steps"] == 1
    losses = [entry for entry in run["log_history"] if "loss" in entry]
    assert [entry["step"] for entry in losses] == [1, 2, 3, 4, 5, 6]
    assert all(entry["learning_rate"] > 0 and entry["loss"] > 0 for entry in losses)  # every step had answers
    too_long = run["too_long"]
    assert too_long["train"] > 0 and too_long["max_length"] == 320 and "left out:" in trained["output"]
    assert "schedule: 6 optimizer steps" in trained["output"] and "sized by min_steps" in trained["output"]


def test_the_first_optimizer_step_already_has_a_learning_rate(catalog: Catalog, tmp_path: Path) -> None:
    """The library's linear warmup starts at 0, so a short run's first step changed nothing."""
    records = load_split(seed_release(), catalog.select(["fin_intent"]), "train").head(8)
    config = RunConfig(
        name="lr", model=str(tiny_model_dir()), tasks=["fin_intent"], output_dir=str(tmp_path), warmup_ratio=0.3
    )
    plan = plan_execution("cpu", 1, 1)
    tokenizer = load_tokenizer(config.model)
    trainer = build_trainer(
        config, to_dataset(records, tokenizer), None, load_model(config.model, plan), tokenizer, plan
    )
    assert trainer.args.warmup_steps > 0
    trainer.create_optimizer_and_scheduler(num_training_steps=trainer.args.max_steps)
    first = trainer.lr_scheduler.get_last_lr()[0]  # the rate the first optimizer step uses
    assert 0 < first < config.learning_rate


def test_the_run_reports_its_own_throughput(trained: dict[str, Any]) -> None:
    throughput = trained["run"]["throughput"]
    assert throughput["tokens"] > 0 and throughput["tokens_per_second"] > 0 and 0 < throughput["mfu"] < 1
    assert "tokens/s (non-padding)" in trained["output"] and "MFU" in trained["output"]


def test_labels_cover_the_output_and_end_of_turn_only(catalog: Catalog, tmp_path: Path) -> None:
    records = load_split(seed_release(), catalog.select(["med_triage"]), "train").head(2)
    config = RunConfig(name="mask", model=str(tiny_model_dir()), tasks=["med_triage"], output_dir=str(tmp_path))
    plan = plan_execution("cpu", 1, 1)
    tokenizer = load_tokenizer(config.model)
    trainer = build_trainer(
        config, to_dataset(records, tokenizer), None, load_model(config.model, plan), tokenizer, plan
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    starts = [*(batch["position_ids"][0] == 0).nonzero().flatten().tolist(), batch["input_ids"].shape[1]]
    trained_texts, full_texts = [], []
    for a, b in itertools.pairwise(starts):
        ids, labels = batch["input_ids"][0, a:b], batch["labels"][0, a:b]
        trained_texts.append(tokenizer.decode(labels[labels != -100]))
        full_texts.append(tokenizer.decode(ids))
    expected = {row["output"] + "<|im_end|>\n" for row in records.iter_rows(named=True)}
    assert set(trained_texts) == expected
    assert all(text.startswith("<|im_start|>system") for text in full_texts)
    assert all(any(row["input"] in text for text in full_texts) for row in records.iter_rows(named=True))


def test_packed_sequences_do_not_attend_to_each_other() -> None:
    model = load_model(str(tiny_model_dir()), plan_execution("cpu", 1, 1)).eval()
    first, second = torch.randint(0, 150000, (1, 7)), torch.randint(0, 150000, (1, 5))
    packed = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(7), torch.arange(5)]).unsqueeze(0)
    with torch.no_grad():  # no cache, as in training: transformers derives the packed mask only then
        together = model(input_ids=packed, position_ids=positions, use_cache=False).logits
        alone = torch.cat([model(input_ids=first).logits, model(input_ids=second).logits], dim=1)
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def test_the_adapter_reloads_and_merges_to_the_same_model(trained: dict[str, Any], tmp_path: Path) -> None:
    adapter = trained["run_dir"] / "adapter"
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    base, tokenizer = load_for_inference(str(tiny_model_dir()), device="cpu")
    tuned, _ = load_for_inference(str(tiny_model_dir()), adapter, device="cpu")
    merged_dir = merge_adapter(str(tiny_model_dir()), adapter, tmp_path / "merged")
    merged, _ = load_for_inference(str(merged_dir), device="cpu")
    ids = tokenizer("客户问：信用卡丢了怎么办？", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        base_logits, tuned_logits, merged_logits = (m(input_ids=ids).logits for m in (base, tuned, merged))
    assert not torch.allclose(base_logits, tuned_logits, atol=1e-3)  # training changed the model
    torch.testing.assert_close(merged_logits, tuned_logits, atol=1e-4, rtol=1e-4)


def test_evaluation_of_base_and_adapter_gives_the_matrix(trained: dict[str, Any], catalog: Catalog) -> None:
    runs, out = trained["root"] / "eval", trained["root"] / "matrix"
    common = ["--tasks", ",".join(TASKS), "--release", str(seed_release()), "--out", str(runs), "--limit", "2"]
    common += ["--max-new-tokens", "6", "--batch-size", "3"]
    model = str(tiny_model_dir())
    for extra in ([], ["--adapter", str(trained["run_dir"] / "adapter")]):
        result = CliRunner().invoke(app, ["eval", "--model", model, *extra, *common])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, ["matrix", "--runs", str(runs), "--out", str(out)])
    assert result.exit_code == 0, result.output

    rows = list(csv.DictReader((out / "matrix.csv").open(encoding="utf-8")))
    assert [r["kind"] for r in rows] == ["base", "adapter", "human"]  # base first, the annotators' agreement last
    assert rows[1]["model"] == "model+tiny"
    codes = [catalog.get(t).code for t in TASKS]
    assert list(rows[0])[2:] == [*sorted(codes, key=lambda c: [s.code for s in catalog].index(c)), "mean"]
    for view in ("matrix_en.csv", "matrix_zh.csv", "matrix.md", "matrix.png"):
        assert (out / view).stat().st_size > 0
    assert (out / "matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    scores = json.loads((runs / "model+tiny" / "scores.json").read_text(encoding="utf-8"))
    for task in TASKS:
        entry = scores["tasks"][task]
        assert entry["n"] == entry["n_en"] + entry["n_zh"] == 4  # --limit 2 per task and language
        assert float(rows[1][entry["code"]]) == pytest.approx(round(100 * entry["score"], 1))
    predictions = [json.loads(line) for line in (runs / "model+tiny" / "predictions.jsonl").open(encoding="utf-8")]
    assert len(predictions) == 8 and all(
        "dimension_accuracy" in p for p in predictions if p["task"] == "rp_mbti_identify"
    )
