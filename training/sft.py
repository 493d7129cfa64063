"""LoRA supervised fine-tuning with TRL's SFTTrainer and peft on the published train split.

The records become conversational prompt-completion pairs, so the model's chat template renders them and the loss falls
on the output only. Precision, attention kernel, checkpointing and batching come from `training.execution`, the number
of steps, warmup and logging from `training.schedule`. The training arguments exist before the model is loaded, so a
DeepSpeed ZeRO-3 or FSDP launch loads it sharded; only the main process writes files.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer
from trl.data_utils import pack_dataset

from catalog import Catalog
from training.data import (
    GENERAL_TASK,
    ReleaseSource,
    general_wanted,
    load_general,
    load_split,
    mix_general,
    resolve_release,
    select_tasks,
)
from training.execution import ExecutionPlan, current_device, launched_processes, plan_execution
from training.formatting import tokenize_prompt_completion
from training.packing_guard import TOLERANCE as PACKING_TOLERANCE
from training.packing_guard import check_packing
from training.run_config import RunConfig
from training.schedule import Schedule, plan_schedule, warmup_cosine
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

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> LRScheduler:
        # The library's warmup gives the first step learning rate 0, which wastes one of a short run's few steps.
        if self.lr_scheduler is None:
            warmup = self.args.get_warmup_steps(num_training_steps)
            self.lr_scheduler = LambdaLR(optimizer or self.optimizer, warmup_cosine(warmup, num_training_steps))
            self._created_lr_scheduler = True
        return self.lr_scheduler


@dataclass
class GeneralMix:
    """The general instruction records a run mixed in, against the number its share asked for."""

    file: str | None
    wanted: int
    mixed: int = 0


@dataclass
class TrainResult:
    run_dir: Path
    adapter_dir: Path
    train_records: int
    losses: list[float] = field(default_factory=list)
    throughput: Throughput | None = None
    eval_loss_before: float | None = None  # on the validation split, before and after training
    eval_loss_after: float | None = None
    schedule: Schedule | None = None
    too_long: int = 0  # training records left out: longer than max_length
    general: GeneralMix | None = None


def to_dataset(records: pl.DataFrame, tokenizer: PreTrainedTokenizerBase) -> Dataset:
    return Dataset.from_list([tokenize_prompt_completion(tokenizer, row) for row in records.iter_rows(named=True)])


def fitting(dataset: Dataset, max_length: int) -> tuple[Dataset, int]:
    """The records whose whole conversation fits `max_length` tokens, and how many did not. Packing would cut a longer
    one at the limit: its answer loses its end (or all of it), and the model learns to stop mid-answer or nothing."""
    keep = [i for i, ids in enumerate(dataset["input_ids"]) if len(ids) <= max_length]
    return dataset.select(keep), len(dataset) - len(keep)


def load_tokenizer(model: str, revision: str | None = None) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
    if tokenizer.chat_template is None:
        raise ValueError(f"{model}: the tokenizer has no chat template; use an instruct or chat model's tokenizer")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(model: str, plan: ExecutionPlan, revision: str | None = None, placed: bool = False) -> PreTrainedModel:
    """The model in the plan's precision and kernel; `placed` loads the weights straight onto the plan's device (not
    for training: the trainer and a distributed launch place it themselves)."""
    return AutoModelForCausalLM.from_pretrained(
        model,
        revision=revision,
        dtype=getattr(torch, plan.dtype),
        attn_implementation=plan.attn_implementation,
        device_map=plan.device if placed else None,
    )


def lora_config(config: RunConfig) -> LoraConfig:
    return LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        task_type="CAUSAL_LM",
    )


def schedule_for(config: RunConfig, plan: ExecutionPlan, train_set: Dataset, world_size: int) -> Schedule:
    """The run's schedule, from the rows the training set packs into (the same best-fit packing the trainer does)."""
    packed = pack_dataset(train_set.select_columns(["input_ids"]), config.max_length, strategy="bfd")
    tokens = sum(min(len(ids), config.max_length) for ids in train_set["input_ids"])
    return plan_schedule(
        len(packed),
        tokens,
        plan.micro_batch_size * world_size,
        plan.gradient_accumulation_steps,
        epochs=config.epochs,
        max_steps=config.max_steps,
        token_budget=config.token_budget,
        min_steps=config.min_steps,
        warmup_ratio=config.warmup_ratio,
        logging_steps=config.logging_steps,
    )


def sft_config(config: RunConfig, plan: ExecutionPlan, has_eval: bool, schedule: Schedule) -> SFTConfig:
    return SFTConfig(
        output_dir=str(config.run_dir / "checkpoints"),
        max_length=config.max_length,
        packing=True,
        packing_strategy="bfd",  # padding-free: position_ids restart at each packed sequence
        completion_only_loss=True,
        max_steps=schedule.steps,
        learning_rate=config.learning_rate,
        warmup_steps=schedule.warmup_steps,
        lr_scheduler_type="cosine",  # as MeasuredSFTTrainer.create_scheduler shapes it
        per_device_train_batch_size=plan.micro_batch_size,
        per_device_eval_batch_size=plan.micro_batch_size,
        gradient_accumulation_steps=schedule.accumulation,
        activation_checkpointing=plan.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if plan.gradient_checkpointing else None,
        bf16=plan.bf16,
        use_liger_kernel=config.liger_kernel,
        use_cpu=plan.device == "cpu",
        eval_strategy="steps" if has_eval else "no",
        eval_steps=max(1, -(-schedule.steps // 4)),  # four times a run, however many epochs the steps make
        save_strategy="no",  # the adapter is saved once, at the end
        logging_steps=schedule.logging_steps,
        report_to="none",
        seed=config.seed,
        dataloader_num_workers=0,
    )


def build_trainer(
    config: RunConfig,
    train_set: Dataset,
    eval_set: Dataset | None,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    plan: ExecutionPlan,
    args: SFTConfig | None = None,
) -> MeasuredSFTTrainer:
    """The trainer over tokenized sets (`to_dataset`); `args` default to the schedule of a single process."""
    if args is None:
        args = sft_config(config, plan, eval_set is not None, schedule_for(config, plan, train_set, 1))
    trainer = MeasuredSFTTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
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
    general = GeneralMix(config.general, 0)
    if config.general and config.general_share > 0:
        general_records = load_general(Path(config.general))
        general.wanted = general_wanted(train_records, general_records, config.general_share)
        train_records = mix_general(train_records, general_records, config.general_share, config.seed)
        general.mixed = int((train_records["task"] == GENERAL_TASK).sum())
    eval_records = load_split(release, specs, "validation", langs)
    if config.liger_kernel and importlib.util.find_spec("liger_kernel") is None:
        raise ValueError("liger_kernel: true needs the Liger kernels: pip install -e '.[gpu]' on the GPU machine")
    device = device or current_device()
    batching = (config.micro_batch_size, config.gradient_accumulation_steps)
    plan = plan_execution(device, *batching, config.attn_implementation)
    tokenizer = load_tokenizer(config.model, config.model_revision)
    train_set, too_long = fitting(to_dataset(train_records, tokenizer), config.max_length)
    if len(train_set) == 0:
        raise ValueError(f"all {train_records.height} training records are longer than max_length {config.max_length}")
    eval_set, eval_too_long = (
        (None, 0) if eval_records.is_empty() else fitting(to_dataset(eval_records, tokenizer), config.max_length)
    )
    eval_set = eval_set if eval_set is not None and len(eval_set) else None
    processes = launched_processes()
    schedule = schedule_for(config, plan, train_set, processes)
    args = sft_config(config, plan, eval_set is not None, schedule)  # before the model: sharded loading needs it
    model = load_model(config.model, plan, config.model_revision)
    trainer = build_trainer(config, train_set, eval_set, model, tokenizer, plan, args)
    cross_attention = check_packing(trainer)  # before any step: a kernel that mixes sequences is refused
    before = trainer.evaluate()["eval_loss"] if eval_set is not None else None
    trainer.train()
    after = trainer.evaluate()["eval_loss"] if eval_set is not None else None
    adapter_dir = config.run_dir / ADAPTER_DIR
    trainer.save_model(str(adapter_dir))  # every rank: under FSDP the full state dict is gathered collectively
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    throughput = trainer.meter.result() if trainer.meter else None
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(adapter_dir))
        record = {
            "config": config.model_dump(),
            "release": str(release),
            "tasks": [s.id for s in specs],
            "train_records": train_records.height,
            "validation_records": eval_records.height,
            "general": general.__dict__,
            "too_long": {"train": too_long, "validation": eval_too_long, "max_length": config.max_length},
            "plan": plan.__dict__,
            "packing_check": {"cross_attention": cross_attention, "tolerance": PACKING_TOLERANCE},
            "schedule": schedule.to_dict(),
            "processes": processes,
            "eval_loss_before": before,
            "eval_loss_after": after,
            "log_history": trainer.state.log_history,
            "throughput": throughput.to_dict() if throughput else None,
        }
        (config.run_dir / RUN_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    return TrainResult(
        config.run_dir,
        adapter_dir,
        train_records.height,
        losses,
        throughput,
        before,
        after,
        schedule,
        too_long,
        general,
    )


def load_for_inference(
    model: str, adapter: Path | None = None, revision: str | None = None, device: str | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A base model, with a LoRA adapter applied when one is given, ready for generation."""
    plan = plan_execution(device or current_device(), 1, 1)
    tokenizer = load_tokenizer(str(adapter) if adapter else model, None if adapter else revision)
    base = load_model(model, plan, revision, placed=True)
    loaded: PreTrainedModel = PeftModel.from_pretrained(base, str(adapter)) if adapter else base
    return loaded.eval(), tokenizer


def merge_adapter(
    model: str, adapter: Path, out_dir: Path, revision: str | None = None, device: str | None = None
) -> Path:
    """The base model with the adapter folded into its weights, saved as a plain model (for vLLM or the Hub). On a GPU
    in bf16 on the GPU (a 7B model in about 15 GB of GPU memory, not 30 GB of fp32 in CPU memory)."""
    plan = plan_execution(device or current_device(), 1, 1)
    base = load_model(model, plan, revision, placed=True)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(str(adapter)).save_pretrained(str(out_dir))
    return out_dir
