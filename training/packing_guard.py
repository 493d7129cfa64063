"""Refuse a run whose packed rows would let one training sequence attend to another.

Packing lays sequences end to end in one row with no attention mask; only the attention kernel keeps them apart (a
varlen kernel through the collator's `cu_seq_lens_*`, SDPA and eager through the block-diagonal mask transformers
derives from the restarting `position_ids`). A kernel or model that ignores both trains every sequence on the tail of
its neighbour, silently. Before training, a one-layer model of the run's own architecture, kernel, precision and
device reads a probe row of two random sequences through the trainer's own collator; the second sequence's logits
must match the same sequence read alone.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from transformers import PreTrainedModel

PROBE_LENGTHS = (24, 16)  # two sequences in one packed row
PROBE_VOCAB = 1024
# Largest logit change over the mean logit size. Kept apart, the change is rounding (about 1e-6 in fp32, 1e-2 in
# bf16); attending across, it is of the order of the logits themselves.
TOLERANCE = 0.05


class PackingError(ValueError):
    """The run's attention would mix packed sequences; the message names the kernel and what to do."""


def probe_model(model: PreTrainedModel, device: torch.device | str) -> PreTrainedModel:
    """One decoder layer of `model`'s architecture with its attention kernel and precision, random weights, a small
    vocabulary. Built by its class, not `from_config`, so a ZeRO-3 launch does not partition it."""
    small = copy.deepcopy(model.config)
    small.num_hidden_layers = 1
    small.vocab_size = PROBE_VOCAB
    small.intermediate_size = 64
    if getattr(small, "layer_types", None):
        small.layer_types = small.layer_types[:1]
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(small, name, None)
    torch.manual_seed(0)
    with torch.device(device):
        probe = type(model)(small)
    return probe.to(model.dtype).eval()


def _feature(columns: list[str], sequences: list[list[int]]) -> dict[str, Any]:
    """One packed row in the training set's own columns, as TRL's packing writes it."""
    ids = [token for sequence in sequences for token in sequence]
    values = {
        "input_ids": ids,
        "labels": ids,
        "seq_lengths": [len(s) for s in sequences],
        "completion_mask": [1] * len(ids),
        "assistant_masks": [1] * len(ids),
    }
    return {column: values[column] for column in columns if column in values}


def cross_attention(model: PreTrainedModel, collator: Any, columns: list[str], device: Any) -> float:
    """How much the second of two packed sequences changes with the first before it, relative to its logits, in a
    probe of `model` fed through `collator`."""
    probe = probe_model(model, device)
    generator = torch.Generator().manual_seed(0)
    sequences = [torch.randint(0, PROBE_VOCAB, (n,), generator=generator).tolist() for n in PROBE_LENGTHS]
    batch = collator([_feature(columns, sequences)])
    batch.pop("labels", None)
    inputs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    with torch.no_grad():
        packed = probe(**inputs, use_cache=False).logits[0, PROBE_LENGTHS[0] :].float()  # as the trainer calls it
        alone = probe(input_ids=torch.tensor([sequences[1]], device=device), use_cache=False).logits[0].float()
    return float((packed - alone).abs().max() / alone.abs().mean())


def check_packing(trainer: Any) -> float:
    """The trainer's cross-attention measure, or PackingError when its packed sequences would see each other."""
    model = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
    columns = list(trainer.train_dataset.column_names)
    change = cross_attention(model, trainer.data_collator, columns, trainer.args.device)
    if change > TOLERANCE:
        kernel = model.config._attn_implementation
        collator = getattr(trainer.data_collator, "__qualname__", type(trainer.data_collator).__name__)
        raise PackingError(
            f"packed training sequences attend to each other under attention kernel {kernel!r} and collator "
            f"{collator} (a sequence's logits change by {change:.2f}× their mean size when another precedes it in "
            "the row): train with sdpa, eager or flash_attention_2 and TRL's padding-free collator, which keep "
            "packed sequences apart"
        )
    return change
