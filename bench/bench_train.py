"""Training throughput: our SFT setup against plain `SFTTrainer` defaults, in the same run, on the same data and LoRA.

On a GPU: the Qwen2-7B architecture (random weights: speed does not depend on them) at sequence length 2048; ours is
`training.sft` as `anytasktune train` runs it (bf16, activation checkpointing, padding-free packing, FlashAttention
when installed), the baseline `SFTTrainer(model, SFTConfig(max_length=2048), peft_config=...)` and nothing else.
On CPU: the same comparison with the tiny Qwen2 of the tests. Prints tokens/s (non-padding) and MFU of both (FLOPs
convention: training/throughput.py) and the ratio against the 1.5× target.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets import Dataset
from transformers import Qwen2Config, Qwen2ForCausalLM
from trl import SFTConfig

from catalog import load_catalog
from tests.tiny_model import build_qwen2_tokenizer, build_tiny_qwen2, seed_release
from training.data import load_split
from training.execution import current_device, plan_execution
from training.formatting import prompt_completion
from training.run_config import LoraSettings, RunConfig
from training.sft import MeasuredSFTTrainer, build_trainer, lora_config, to_dataset
from training.throughput import Throughput, ThroughputMeter, model_shape

TARGET = 1.5
RELEASE = Path("datasets/build/anytasktune")


def qwen2_7b(tokenizer, dtype: torch.dtype) -> Qwen2ForCausalLM:
    """Qwen2-7B's published architecture with random weights."""
    config = Qwen2Config(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.device("cuda"):
        return Qwen2ForCausalLM(config).to(dtype)


def make_model(device: str, tokenizer, attn: str) -> Qwen2ForCausalLM:
    model = qwen2_7b(tokenizer, torch.bfloat16) if device == "cuda" else build_tiny_qwen2(tokenizer)
    model.config._attn_implementation = attn
    return model


def run_defaults(
    device: str, tokenizer, records, steps: int, seq_len: int, lora: RunConfig, out: Path, fair: bool
) -> Throughput:
    """Plain SFTTrainer: only what any run must say (where to write, how long, the sequence length, no reporting, and
    on CPU `use_cpu`, without which the default bf16 refuses to start). `fair` gives it everything ours has that is
    not the method itself: our precision, our activation checkpointing and our attention kernel."""
    plan = plan_execution(device, 1, 1)
    model = make_model(device, tokenizer, plan.attn_implementation if fair else "sdpa")
    same_hardware_use = {"bf16": plan.bf16, "activation_checkpointing": plan.gradient_checkpointing} if fair else {}
    args = SFTConfig(
        output_dir=str(out / ("fair" if fair else "defaults")),
        max_steps=steps,
        max_length=seq_len,
        report_to="none",
        use_cpu=device == "cpu",
        **same_hardware_use,
    )
    dataset = Dataset.from_list([prompt_completion(r) for r in records.iter_rows(named=True)])
    trainer = MeasuredSFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=lora_config(lora)
    )
    trainer.meter = ThroughputMeter(model_shape(trainer.model), device)
    trainer.add_callback(trainer.meter)
    trainer.train()
    result = trainer.meter.result()
    del trainer, model
    _free(device)
    return result


def run_ours(device: str, tokenizer, records, steps: int, seq_len: int, config: RunConfig) -> Throughput:
    plan = plan_execution(device, config.micro_batch_size, config.gradient_accumulation_steps)
    model = make_model(device, tokenizer, plan.attn_implementation)
    trainer = build_trainer(config, to_dataset(records, tokenizer), None, model, tokenizer, plan)
    trainer.train()
    result = trainer.meter.result()
    del trainer, model
    _free(device)
    return result


def _free(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per setup (first one is warm-up)")
    parser.add_argument("--seq-len", type=int, default=2048)
    options = parser.parse_args()
    device = current_device()
    steps = options.steps or (12 if device == "cuda" else 4)
    catalog = load_catalog()
    release = RELEASE if RELEASE.exists() else seed_release()
    records = load_split(release, list(catalog), "train")
    tokenizer = build_qwen2_tokenizer()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        config = RunConfig(
            name="bench",
            model="(in memory)",
            tasks=["all"],
            max_length=options.seq_len,
            max_steps=steps,
            micro_batch_size=4 if device == "cuda" else 1,
            gradient_accumulation_steps=1,
            lora=LoraSettings(),
            logging_steps=steps,
            output_dir=str(out),
        )
        what = "Qwen2-7B architecture (random weights)" if device == "cuda" else "tiny Qwen2 (CPU stand-in)"
        print(f"bench-train: {what}, LoRA r={config.lora.r} all-linear, seq len {options.seq_len}, {steps} steps")
        shipped = run_defaults(device, tokenizer, records, steps, options.seq_len, config, out, fair=False)
        fair = run_defaults(device, tokenizer, records, steps, options.seq_len, config, out, fair=True)
        ours = run_ours(device, tokenizer, records, steps, options.seq_len, config)
    print(f"defaults as shipped (SFTTrainer): {shipped.line()}")
    print(f"defaults, our precision/checkpointing/kernel: {fair.line()}")
    print(f"ours (anytasktune): {ours.line()}")
    ratio = ours.tokens_per_second / fair.tokens_per_second
    verdict = "meets" if ratio >= TARGET else "misses"
    print(
        f"tokens/s ratio ours/fair defaults: {ratio:.2f}x (target >= {TARGET}x: {verdict}); "
        f"ours/shipped defaults: {ours.tokens_per_second / shipped.tokens_per_second:.2f}x; "
        f"MFU {ours.mfu:.2%} vs {fair.mfu:.2%} (fair) and {shipped.mfu:.2%} (shipped); "
        "evaluation and logging between steps are not timed"
    )


if __name__ == "__main__":
    main()
