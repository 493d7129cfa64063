"""What determines a model's answers, as a short hash: the evaluation reuses a prediction only when this is unchanged.

A local model or adapter folder is fingerprinted by its files: names, sizes and content (files over 64 MiB by their
first and last MiB and their size, so a 7B checkpoint is read in milliseconds, not minutes). A Hub id or an endpoint's
model name can only be fingerprinted by its name: a server that swaps the weights behind one name is not seen.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

WHOLE_FILE_BYTES = 64 * 1024 * 1024
EDGE_BYTES = 1024 * 1024


def folder_fingerprint(where: str | Path) -> str:
    """The hash of a model or adapter folder's files, or of the name when it is not a local folder."""
    path = Path(where)
    digest = hashlib.sha256()
    if not path.is_dir():
        digest.update(f"name:{where}".encode())
        return digest.hexdigest()[:16]
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        size = file.stat().st_size
        digest.update(f"{file.relative_to(path).as_posix()}\0{size}\0".encode())
        with file.open("rb") as data:
            if size <= WHOLE_FILE_BYTES:
                digest.update(data.read())
            else:
                digest.update(data.read(EDGE_BYTES))
                data.seek(size - EDGE_BYTES)
                digest.update(data.read(EDGE_BYTES))
    return digest.hexdigest()[:16]


def answer_key(run_fingerprint: str, instruction: str, input_text: str) -> str:
    """The key of one prediction: the run's fingerprint and the exact prompt."""
    return hashlib.sha256(json.dumps([run_fingerprint, instruction, input_text]).encode()).hexdigest()[:24]


def run_fingerprint(
    *, model: str, adapter: str | None, endpoint: str | None, generation: dict[str, Any], prompt_format: str
) -> str:
    """Everything a run's answers depend on: the model and adapter (their files), the endpoint, the generation
    parameters and the prompt format's version."""
    parts = {
        "model": model if endpoint else folder_fingerprint(model),
        "adapter": folder_fingerprint(adapter) if adapter else None,
        "endpoint": endpoint,
        "generation": generation,
        "prompt_format": prompt_format,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
