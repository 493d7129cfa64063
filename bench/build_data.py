"""Realistic synthetic records for the build benchmark, with known injected defects.

Inputs are stitched from sentences of the real seeds of the same task and language (so text lengths, scripts and
punctuation look like the real data), with fresh numbers, so unrelated records are not near-duplicates. Into this
we inject exact duplicates, near-duplicates (a few characters edited), personal data and wrong-language rows, and
return which rows were injected so the benchmark can measure recall.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from catalog import Catalog
from catalog.records import compact_json

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")


@dataclass
class Injected:
    near_pairs: list[tuple[int, int]] = field(default_factory=list)  # (original row, edited copy row)
    exact: list[int] = field(default_factory=list)
    pii: list[int] = field(default_factory=list)
    wrong_language: list[int] = field(default_factory=list)


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if len(s) > 3]


def _edit(text: str, rng: random.Random, share: float = 0.03) -> str:
    """Replace a few characters: what a paraphrase-by-typo or a re-generation at low temperature looks like."""
    chars = list(text)
    for _ in range(max(1, int(len(chars) * share))):
        i = rng.randrange(len(chars))
        chars[i] = rng.choice("的了是我有在ab xyz") if "\u4e00" <= chars[i] <= "\u9fff" else rng.choice("aeiou ")
    return "".join(chars)


def generate(catalog: Catalog, seeds_dir: Path, n: int, seed: int = 7) -> tuple[list[dict], Injected]:
    """`n` synth records (as dicts in the record contract) and the rows where defects were injected."""
    rng = random.Random(seed)
    pools: dict[tuple[str, str], dict] = {}
    for spec in catalog:
        for line in (seeds_dir / f"{spec.id}.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            pool = pools.setdefault((spec.id, record["lang"]), {"sentences": [], "records": []})
            pool["sentences"].extend(_sentences(record["input"]))
            pool["records"].append(record)
    keys = sorted(pools)
    rows: list[dict] = []
    injected = Injected()
    provenance = compact_json({"template": "bench", "model": "bench-model", "temperature": 0.9})
    while len(rows) < n:
        task, lang = rng.choice(keys)
        pool = pools[(task, lang)]
        template = rng.choice(pool["records"])
        parts = rng.sample(pool["sentences"], k=min(3, len(pool["sentences"])))
        number = f"{rng.randrange(10, 99_999)}"
        text = (" " if lang == "en" else "").join(parts) + (f" Ref {number}." if lang == "en" else f"编号{number}。")
        row = {
            "task": task,
            "lang": lang,
            "instruction": template["instruction"],
            "input": text,
            "output": template["output"],
            "source": "synth",
            "generator": "bench-model",
            "provenance": provenance,
        }
        roll = rng.random()
        rows.append(row)
        if roll < 0.02 and len(rows) < n:  # an exact twin, whitespace aside
            rows.append({**row, "input": "  " + text + " "})
            injected.exact.append(len(rows) - 1)
        elif roll < 0.05 and len(rows) < n:  # a near twin
            rows.append({**row, "input": _edit(text, rng)})
            injected.near_pairs.append((len(rows) - 2, len(rows) - 1))
        elif roll < 0.06:  # personal data in the input
            row["input"] = text + (" Call me on 415-555-2671." if lang == "en" else "我的手机13912345678。")
            injected.pii.append(len(rows) - 1)
        elif roll < 0.07:  # labelled with the other language
            row["lang"] = "zh" if lang == "en" else "en"
            row["instruction"] = catalog.get(task).instructions_for(row["lang"])[0]
            injected.wrong_language.append(len(rows) - 1)
    return rows[:n], injected


def write_store(rows: list[dict], synth_dir: Path, per_file: int = 200_000) -> None:
    synth_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(rows), per_file):
        with (synth_dir / f"bench-{start // per_file:04d}.jsonl").open("w", encoding="utf-8") as out:
            for row in rows[start : start + per_file]:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
