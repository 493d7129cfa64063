"""The pieces around the trainer: data selection and its errors, run configs, execution plans, FLOPs accounting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from catalog import Catalog
from catalog.layout import split_path
from tests.tiny_model import seed_release
from training.data import DataError, ReleaseSource, load_general, load_split, mix_general, resolve_release, select_tasks
from training.execution import plan_execution
from training.run_config import RunConfigError, load_run_config
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
