"""The pieces around the trainer: data selection and its errors, run configs, execution plans, schedules, FLOPs
accounting."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import polars as pl
import pytest
import torch

from catalog import Catalog
from catalog.layout import split_path
from tests.tiny_model import seed_release
from training.data import (
    DataError,
    ReleaseSource,
    general_wanted,
    load_general,
    load_split,
    mix_general,
    resolve_release,
    select_tasks,
)
from training.execution import plan_execution
from training.run_config import RunConfigError, load_run_config
from training.schedule import plan_schedule, warmup_cosine
from training.throughput import ModelShape, sequence_lengths, training_flops

REPO = Path(__file__).resolve().parent.parent


def test_a_domain_selects_its_tasks_and_the_split_holds_only_them(catalog: Catalog) -> None:
    specs = select_tasks(catalog, ["law"])
    assert [s.id for s in specs] == [s.id for s in catalog.by_domain("law")]
    frame = load_split(seed_release(), specs, "train", ("zh",))
    assert set(frame["task"]) == {s.id for s in specs} and set(frame["lang"]) == {"zh"}


def test_unknown_tasks_and_missing_files_are_named(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no task with id or code 'nope'.*domains: consumer"):
        select_tasks(catalog, ["nope"])
    specs = catalog.select(["fin_intent"])
    with pytest.raises(DataError, match=f"{split_path('fin_intent', 'test')}: missing"):
        load_split(tmp_path, specs, "test")
    with pytest.raises(DataError, match="a local release folder has no revisions"):
        resolve_release(ReleaseSource(str(tmp_path), "v1.0.0"), specs)


def test_general_records_make_up_the_asked_share(catalog: Catalog, tmp_path: Path) -> None:
    general = tmp_path / "general.jsonl"
    rows = [{"instruction": f"Say {i}.", "output": str(i)} for i in range(500)]
    general.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    tasks = load_split(seed_release(), catalog.select(["fin_intent"]), "train")
    mixed = mix_general(tasks, load_general(general), 0.25, seed=1)
    assert (mixed["task"] == "general").sum() == round(tasks.height / 3)  # 1/4 of the mix
    assert mixed.height == tasks.height + round(tasks.height / 3)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "a", "output": "b"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.jsonl:2: not valid JSON"):
        load_general(broken)


def test_a_set_with_languages_gives_each_language_its_share_from_its_own_records(
    catalog: Catalog, tmp_path: Path
) -> None:
    general = tmp_path / "general.jsonl"
    rows = [{"lang": lang, "instruction": f"{lang} {i}", "output": str(i)} for lang in ("en", "zh") for i in range(300)]
    general.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    tasks = load_split(seed_release(), catalog.select(["fin_intent", "med_triage"]), "train")
    mixed = mix_general(tasks, load_general(general), 0.2, seed=3)
    for lang in ("en", "zh"):
        own = tasks.filter(pl.col("lang") == lang).height
        picked = mixed.filter((pl.col("task") == "general") & (pl.col("lang") == lang))
        assert picked.height == round(own / 4)  # a fifth of that language's mix
        assert picked["instruction"].str.starts_with(lang).all()
    english_only = mix_general(tasks.filter(pl.col("lang") == "en"), load_general(general), 0.2, seed=3)
    assert set(english_only.filter(pl.col("task") == "general")["lang"]) == {"en"}
    small = load_general(general).filter(
        pl.int_range(pl.len()).over("lang") < 3
    )  # fewer than asked: used whole, the shortfall visible
    assert general_wanted(tasks, small, 0.2) == round(tasks.filter(pl.col("lang") == "en").height / 4) + round(
        tasks.filter(pl.col("lang") == "zh").height / 4
    )
    assert (mix_general(tasks, small, 0.2, seed=3)["task"] == "general").sum() == 6


def test_the_shipped_general_set_is_bilingual_clean_and_named_by_the_general_run() -> None:
    from validation.language import language_problem
    from validation.pii import find_pii

    config = load_run_config(REPO / "configs" / "train" / "all_general.yaml", {})
    general = load_general(REPO / config.general)
    counts = dict(general.group_by("lang").len().rows())
    assert set(counts) == {"en", "zh"} and min(counts.values()) >= 100, counts
    assert general.filter((pl.col("instruction") == "") | (pl.col("output") == "")).is_empty()
    assert general.select("instruction", "input").is_unique().all(), "a general record is repeated"
    for row in general.iter_rows(named=True):
        for field in ("instruction", "input", "output"):
            assert not find_pii(row[field]), (row["id"], field, find_pii(row[field]))
        assert language_problem(row["instruction"], row["lang"]) is None, (row["id"], row["instruction"])


def test_run_configs_inherit_from_their_base_and_report_bad_fields(tmp_path: Path) -> None:
    config = load_run_config(REPO / "configs" / "train" / "medical.yaml", {"max_steps": 5})
    assert config.tasks == ["medical"] and config.model == "Qwen/Qwen2-7B" and config.max_steps == 5
    assert config.lora.r == 16 and config.run_dir == Path("runs/train/medical")
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: " + str(REPO / "configs/train/base.yaml") + "\nname: x\nlora: {r: 0}\n", encoding="utf-8")
    with pytest.raises(RunConfigError, match=r"bad.yaml: lora.r: Input should be greater than 0"):
        load_run_config(bad)


def test_every_shipped_run_config_loads() -> None:
    for path in sorted((REPO / "configs" / "train").glob("*.yaml")):
        assert load_run_config(path).name


def test_the_gpu_plan_uses_bf16_checkpointing_and_packs_several_rows_only_with_a_varlen_kernel() -> None:
    flash = plan_execution("cuda", 4, 4, "flash_attention_2")
    assert (flash.dtype, flash.gradient_checkpointing, flash.micro_batch_size, flash.gradient_accumulation_steps) == (
        "bfloat16",
        True,
        4,
        4,
    )
    sdpa = plan_execution("cuda", 4, 4, "sdpa")
    assert (sdpa.micro_batch_size, sdpa.gradient_accumulation_steps) == (1, 16)  # the same rows per optimizer step
    cpu = plan_execution("cpu", 4, 4)
    assert (cpu.dtype, cpu.gradient_checkpointing, cpu.bf16) == ("float32", False, False)


def test_flops_follow_the_stated_convention() -> None:
    shape = ModelShape(layers=2, attention_width=8, frozen_matmul_params=100, trainable_matmul_params=10)
    # Sequences of 3 and 2 tokens: (4·100 + 6·10)·5 dense + 12·2·8·(9 + 4) attention = 2300 + 2496.
    assert training_flops(shape, [3, 2]) == 4796


def test_sequence_lengths_read_padded_and_packed_batches() -> None:
    padded = {"attention_mask": torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])}
    packed = {"position_ids": torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])}
    assert sequence_lengths(padded) == [3, 2]
    assert sequence_lengths(packed) == [3, 2, 4]


def test_a_schedule_sized_by_the_data_always_trains_and_logs() -> None:
    """Over a grid of data sizes and configs: at least min_steps optimizer steps unless max_steps says otherwise,
    accumulation only ever lowered (and only when the steps would fall short), warmup shorter than the run, the loss
    logged about twenty times or every `logging_steps`."""
    for rows, micro, accumulation, epochs, budget, min_steps, logging in itertools.product(
        (1, 3, 13, 200, 5000), (1, 4), (1, 4, 16), (0.5, 3.0), (None, 10**6), (1, 30), (1, 10)
    ):
        tokens = rows * 1500
        common = dict(epochs=epochs, token_budget=budget, min_steps=min_steps, warmup_ratio=0.03)
        schedule = plan_schedule(rows, tokens, micro, accumulation, logging_steps=logging, **common)
        where = (rows, micro, accumulation, epochs, budget, min_steps, schedule)
        assert schedule.steps >= min_steps and 1 <= schedule.accumulation <= accumulation, where
        assert 0 <= schedule.warmup_steps < schedule.steps, where
        assert 1 <= schedule.logging_steps <= logging and schedule.steps // schedule.logging_steps >= min(
            20, schedule.steps // logging
        ), where
        full = plan_schedule(rows, tokens, micro, accumulation, logging_steps=logging, **{**common, "min_steps": 1})
        if full.steps >= min_steps:  # enough steps as configured: nothing is changed
            assert (schedule.steps, schedule.accumulation) == (full.steps, accumulation), where
        else:
            assert schedule.accumulation < accumulation or schedule.sized_by == "min_steps", where
    fixed = plan_schedule(13, 13 * 1500, 1, 16, epochs=3, max_steps=5, min_steps=30)
    assert (fixed.steps, fixed.accumulation, fixed.sized_by) == (5, 16, "max_steps")
    # A per-task seed release packs into ~13 rows: 3 epochs at 16 rows a step were 3 steps; now 39 steps of 1 row.
    small = plan_schedule(13, 13 * 1500, 1, 16, epochs=3, min_steps=30, warmup_ratio=0.03)
    assert (small.steps, small.accumulation, small.sized_by, small.warmup_steps) == (39, 1, "epochs", 2)
    assert plan_schedule(100, 100 * 1000, 4, 4, epochs=3, token_budget=320_000).steps == 20  # 16,000 tokens a step


def test_the_learning_rate_warms_up_from_above_zero_and_decays_to_the_end() -> None:
    for warmup, total in ((0, 1), (0, 10), (1, 2), (2, 39), (29, 939)):
        factors = [warmup_cosine(warmup, total)(step) for step in range(total)]
        assert all(0 < f <= 1 for f in factors), (warmup, total, factors)  # the first and the last step both learn
        assert factors[:warmup] == sorted(factors[:warmup]) and factors[warmup:] == sorted(factors[warmup:])[::-1]
        assert max(factors) == factors[warmup] == 1.0
