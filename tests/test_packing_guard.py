"""The run refuses, before its first step, an attention setup under which packed sequences would see each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from catalog import Catalog
from tests.tiny_model import seed_release, tiny_model_dir
from training.data import load_split
from training.execution import plan_execution
from training.packing_guard import PackingError, check_packing
from training.run_config import RunConfig
from training.sft import build_trainer, load_model, load_tokenizer, to_dataset, train

ROW_CAUSAL = "row_causal_test_kernel"


def _row_causal(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
    """A kernel that ignores the packed mask: causal over the whole row, like one that knows nothing of packing."""
    return sdpa_attention_forward(module, query, key, value, None, scaling=kwargs.get("scaling"), is_causal=True)


AttentionInterface.register(ROW_CAUSAL, _row_causal)


def _trainer(catalog: Catalog, tmp_path: Path, attention: str) -> Any:
    records = load_split(seed_release(), catalog.select(["med_triage"]), "train").head(4)
    config = RunConfig(name="guard", model=str(tiny_model_dir()), tasks=["med_triage"], output_dir=str(tmp_path))
    plan = plan_execution("cpu", 1, 1, attention)
    tokenizer = load_tokenizer(config.model)
    return build_trainer(config, to_dataset(records, tokenizer), None, load_model(config.model, plan), tokenizer, plan)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_the_kernels_we_train_with_keep_packed_sequences_apart(
    catalog: Catalog, tmp_path: Path, attention: str
) -> None:
    assert check_packing(_trainer(catalog, tmp_path, attention)) < 1e-4


def test_a_kernel_that_ignores_the_packed_mask_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    with pytest.raises(PackingError, match=ROW_CAUSAL):
        check_packing(_trainer(catalog, tmp_path, ROW_CAUSAL))


def test_a_collator_that_sends_an_attention_mask_is_refused(catalog: Catalog, tmp_path: Path) -> None:
    trainer = _trainer(catalog, tmp_path, "sdpa")
    collate = trainer.data_collator

    def with_mask(features: list[dict[str, Any]]) -> dict[str, Any]:
        # An all-ones mask over the packed row: transformers then builds one causal mask across its sequences.
        batch = collate(features)
        batch["attention_mask"] = batch["input_ids"].new_ones(batch["input_ids"].shape)
        return batch

    trainer.data_collator = with_mask
    with pytest.raises(PackingError, match="with_mask"):
        check_packing(trainer)


def test_a_run_with_a_mixing_kernel_stops_before_it_trains(catalog: Catalog, tmp_path: Path) -> None:
    config = RunConfig(
        name="mixing",
        model=str(tiny_model_dir()),
        release=str(seed_release()),
        tasks=["med_triage"],
        output_dir=str(tmp_path),
        attn_implementation=ROW_CAUSAL,
        max_length=512,
        max_steps=1,
    )
    with pytest.raises(PackingError, match=ROW_CAUSAL):
        train(config, catalog, device="cpu")
    assert not (config.run_dir / "adapter").exists() and not (config.run_dir / "run.json").exists()
