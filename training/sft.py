"""LoRA supervised fine-tuning with TRL's SFTTrainer and peft on the published train split.

The records become conversational prompt-completion pairs, so the model's chat template renders them and the loss falls
on the output only. Precision, attention kernel, checkpointing and batching come from `training.execution`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer

from catalog import Catalog
from training.data import ReleaseSource, load_general, load_split, mix_general, resolve_release, select_tasks
from training.execution import ExecutionPlan, current_device, plan_execution
from training.formatting import tokenize_prompt_completion
from training.run_config import RunConfig
from training.throughput import Throughput, ThroughputMeter, model_shape

ADAPTER_DIR = "adapter"
RUN_FILE = "run.json"


class MeasuredSFTTrainer(SFTTrainer):
    """SFTTrainer that shows every micro-batch to a throughput meter before training on it."""

    meter: ThroughputMeter | None = None

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        if self.meter is not None:
            self.meter.add_batch(inputs)
        return super().training_step(model, inputs, num_items_in_batch)


@dataclass
class TrainResult:
    run_dir: Path
    adapter_dir: Path
    train_records: int
    losses: list[float] = field(default_factory=list)
    throughput: Throughput | None = None
    eval_loss_before: float | None = None  # on the validation split, before and after training
    eval_loss_after: float | None = None


def to_dataset(records: pl.DataFrame, tokenizer: PreTrainedTokenizerBase) -> Dataset:
    return Dataset.from_list([tokenize_prompt_completion(tokenizer, row) for row in records.iter_rows(named=True)])


def load_tokenizer(model: str, revision: str | None = None) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
    if tokenizer.chat_template is None:
        raise ValueError(f"{model}: the tokenizer has no chat template; use an instruct or chat model's tokenizer")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model: str, plan: ExecutionPlan, revision: str | None = None) -> PreTrainedModel:
    return AutoModelForCausalLM.from_pretrained(
        model, revision=revision, dtype=getattr(torch, plan.dtype), attn_implementation=plan.attn_implementation
    )


def lora_config(config: RunConfig) -> LoraConfig:
    return LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        task_type="CAUSAL_LM",
    )


def sft_config(config: RunConfig, plan: ExecutionPlan, has_eval: bool) -> SFTConfig:
    return SFTConfig(
        output_dir=str(config.run_dir / "checkpoints"),
        max_length=config.max_length,
        packing=True,
        packing_strategy="bfd",  # padding-free: position_ids restart at each packed sequence
        completion_only_loss=True,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a share of the steps
        lr_scheduler_type="cosine",
        per_device_train_batch_size=plan.micro_batch_size,
        per_device_eval_batch_size=plan.micro_batch_size,
        gradient_accumulation_steps=plan.gradient_accumulation_steps,
        activation_checkpointing=plan.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if plan.gradient_checkpointing else None,
        bf16=plan.bf16,
        use_cpu=plan.device == "cpu",
        eval_strategy="epoch" if has_eval else "no",
        save_strategy="no",  # the adapter is saved once, at the end
        logging_steps=config.logging_steps,
        report_to="none",
        seed=config.seed,
        dataloader_num_workers=0,
    )


def build_trainer(
    config: RunConfig,
    train_records: pl.DataFrame,
    eval_records: pl.DataFrame | None,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    plan: ExecutionPlan,
) -> MeasuredSFTTrainer:
    has_eval = eval_records is not None and not eval_records.is_empty()
    trainer = MeasuredSFTTrainer(
        model=model,
        args=sft_config(config, plan, has_eval),
        train_dataset=to_dataset(train_records, tokenizer),
        eval_dataset=to_dataset(eval_records, tokenizer) if has_eval else None,
        processing_class=tokenizer,
        peft_config=lora_config(config),
    )
    trainer.meter = ThroughputMeter(model_shape(trainer.model), plan.device)
    trainer.add_callback(trainer.meter)
    return trainer


def train(config: RunConfig, catalog: Catalog, device: str | None = None) -> TrainResult:
    """Train a LoRA adapter on the configured selection and save it with the run's record in `config.run_dir`."""
    specs = select_tasks(catalog, config.tasks)
    langs = tuple(config.langs)
    release = resolve_release(ReleaseSource(config.release, config.release_revision), specs)
    train_records = load_split(release, specs, "train", langs)
    if config.general and config.general_share > 0:
        train_records = mix_general(
            train_records, load_general(Path(config.general)), config.general_share, config.seed
        )
    eval_records = load_split(release, specs, "validation", langs)
    device = device or current_device()
    plan = plan_execution(device, config.micro_batch_size, config.gradient_accumulation_steps)
    tokenizer = load_tokenizer(config.model, config.model_revision)
    model = load_model(config.model, plan, config.model_revision)
    trainer = build_trainer(config, train_records, eval_records, model, tokenizer, plan)
    before = trainer.evaluate()["eval_loss"] if trainer.eval_dataset is not None else None
    trainer.train()
    after = trainer.evaluate()["eval_loss"] if trainer.eval_dataset is not None else None
    adapter_dir = config.run_dir / ADAPTER_DIR
    trainer.save_model(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    throughput = trainer.meter.result() if trainer.meter else None
    record = {
        "config": config.model_dump(),
        "release": str(release),
        "tasks": [s.id for s in specs],
        "train_records": train_records.height,
        "validation_records": eval_records.height,
        "plan": plan.__dict__,
        "eval_loss_before": before,
        "eval_loss_after": after,
        "log_history": trainer.state.log_history,
        "throughput": throughput.to_dict() if throughput else None,
    }
    (config.run_dir / RUN_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    return TrainResult(config.run_dir, adapter_dir, train_records.height, losses, throughput, before, after)


def load_for_inference(
    model: str, adapter: Path | None = None, revision: str | None = None, device: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A base model, with a LoRA adapter applied when one is given, ready for generation."""
    plan = plan_execution(device or current_device(), 1, 1)
    tokenizer = load_tokenizer(str(adapter) if adapter else model, None if adapter else revision)
    base = load_model(model, plan, revision)
    loaded: PreTrainedModel = PeftModel.from_pretrained(base, str(adapter)) if adapter else base
    return loaded.to(plan.device).eval(), tokenizer


def merge_adapter(model: str, adapter: Path, out_dir: Path, revision: str | None = None) -> Path:
    """The base model with the adapter folded into its weights, saved as a plain model (for vLLM or the Hub)."""
    plan = plan_execution("cpu", 1, 1)
    base = load_model(model, plan, revision)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(out_dir))
    return out_dir
