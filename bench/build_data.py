"""Generated synth records for the build's benchmark and property test, with injected defects and their truth.

Unrelated records must be genuinely different, or the data is one giant near-duplicate chain and measures
nothing. So a record takes a seed input of its task and language as a *template* and replaces most of its
content: English words of four letters or more by words drawn from the vocabulary of all English seeds, Chinese
characters (in pairs, so real two-character words come back) by pairs from all Chinese seeds, short numbers by
fresh ones, and often a fresh name and place in front. Punctuation, short function words and the text's shape
stay, so lengths and scripts look like the real data; two records from the same template share well under 0.3
of their character 5-grams. Outputs are a seed output of the same task and language, so they pass the task's
schema.

Into this go, with ground truth (file stem, line and id of every line involved):

- exact twins (whitespace and case changes) and near twins (a few characters edited, Jaccard 0.75-0.95 by the
  build's definition), some of them in the next shard from their original;
- chains A~B~C with A and C under 0.66 of each other: the build must keep A and C;
- translation pairs: an English and a Chinese record sharing a `group` value;
- cross-task copies: the same input under another task of the same language (not a duplicate; same split);
- near-copies of gold seeds, under the gold's task or another task of its language (test, or dropped);
- personal data (phone numbers, e-mail addresses, Chinese ID numbers with a valid check digit);
- decoys that only look like personal data (amounts in 元, Luhn-valid parcel tracking numbers): kept;
- wrong-language rows (the text of one language labelled with the other) and a few unreadable lines.

Deterministic for a seed; shards are generated in parallel, one process each, for large stores.
"""

from __future__ import annotations

import heapq
import json
import multiprocessing
import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.build_checks import BUILD_NGRAM, build_similarity, dedup_key, jaccard, ngrams
from catalog import Catalog
from catalog.records import record_id

Ref = tuple[str, int, str]  # (file stem, line, record id) of one generated line

# Shares of a shard's lines given to each injection.
RATES = {
    "exact": 0.015,
    "near": 0.03,
    "chain": 0.004,  # three lines each
    "translation": 0.02,  # two lines each
    "cross_task": 0.01,
    "gold_copy": 0.001,
    "pii": 0.012,
    "decoy": 0.005,
    "wrong_language": 0.006,
    "carry": 0.002,  # originals whose exact or near twin is in the next shard
}
REPLACE = 0.7  # share of a template's replaceable units (long words, Han pairs) that get fresh content, exactly
MIN_SLOTS = 8  # seeds with fewer replaceable units are not templates: their records would stay near the seed
UNREADABLE_EVERY = 50_000  # one unreadable line per this many lines (at least one per shard)
PARALLEL_FROM = 50_000  # shards generated in worker processes from this many lines on

_WORD = re.compile(r"[A-Za-z]+")
_HAN = re.compile(r"[\u4e00-\u9fff]+")
# A number standing alone: not part of a date, a range, a time or a phone-like group ("2017.06-2023.05"), where
# fresh digits could make something a personal-data detector rightly flags.
_DIGITS = re.compile(r"(?<!\d[.\-/:])(?<!\d)\d{1,4}(?!\d|[.\-/:]\d)")
_HAN_CHAR = re.compile(r"[\u4e00-\u9fff]")
_LOWER = re.compile(r"[a-z]")

# Fictitious names and places, as in the seeds.
# fmt: off
_FIRST = (
    "Maya", "Omar", "Lena", "Ivan", "Priya", "Tom", "Aisha", "Diego", "Chloe", "Kenji", "Nora", "Felix", "Amara",
    "Jonas", "Leila", "Marcus", "Sofia", "Ravi",
)
_LAST = (
    "Okafor", "Brandt", "Novak", "Iyer", "Castillo", "Lindqvist", "Mensah", "Haddad", "Kowalski", "Tanaka",
    "Moreau", "Duarte", "Ferrante",
)
_CITIES = (
    "Leeds", "Tucson", "Dublin", "Porto", "Lyon", "Osaka", "Calgary", "Perth", "Gdansk", "Accra", "Bergen",
    "Austin", "Quito", "Malmo", "Adelaide",
)
_ZH_CITIES = (
    "成都", "杭州", "武汉", "西安", "南京", "苏州", "长沙", "郑州", "青岛",
    "厦门", "昆明", "合肥", "大连", "济南", "福州", "南宁", "贵阳", "太原",
)
# fmt: on
_ZH_SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭")
_ZH_GIVEN = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞宇浩然欣怡子轩")
_EN_FRAMES = ("{name} from {city} here. ", "{name} ({city}): ", "Sent by {name}, {city}. ", "[{city}] ")
_ZH_FRAMES = ("我是{city}的{name}。", "{name}（{city}）：", "来自{city}的留言：", "【{city}】")
_CN_REGIONS = ("110105", "310104", "440305", "510107", "330106", "420102", "320583", "370202")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


@dataclass
class Template:
    """A seed input cut into pieces: fixed text, and slots that fresh content replaces."""

    task: str
    lang: str
    pieces: list[str]
    slots: dict[int, list[int]]  # pool kind → piece columns of that kind
    digits: list[int]  # piece columns holding a short number
    output: str
    seed_id: str


@dataclass
class Pools:
    """Everything a shard needs, in plain picklable form (workers get it once)."""

    keys: list[tuple[str, str]]  # (task, lang) with at least one template
    templates: list[Template]
    by_key: dict[tuple[str, str], list[int]]  # template indices of a task and language
    instructions: dict[tuple[str, str], list[str]]
    tasks_of: dict[str, list[str]]  # language → tasks
    gold: list[dict[str, str]]
    vocab: dict[int, np.ndarray]  # pool kind → object array of replacement units

    # Pool kinds: 0 English word (lower case), 1 capitalised English word, 2 Han pair, 3 single Han character.


@dataclass
class Truth:
    """What was injected where; every line named by (file stem, line, id)."""

    records: int = 0
    lines: int = 0
    exact: list[tuple[Ref, Ref]] = field(default_factory=list)  # (original, copy)
    near: list[tuple[Ref, Ref, float]] = field(default_factory=list)  # (original, copy, build-definition Jaccard)
    chains: list[tuple[Ref, Ref, Ref]] = field(default_factory=list)
    translations: list[tuple[Ref, Ref]] = field(default_factory=list)
    cross_task: list[tuple[Ref, Ref]] = field(default_factory=list)
    gold_copies: list[tuple[str, Ref, bool]] = field(default_factory=list)  # (gold id, copy, same task as the gold)
    pii: dict[str, list[Ref]] = field(default_factory=dict)  # kind → lines
    decoys: dict[str, list[Ref]] = field(default_factory=dict)
    wrong_language: list[Ref] = field(default_factory=list)
    unreadable: list[Ref] = field(default_factory=list)
    carried: list[Ref] = field(default_factory=list)  # originals whose twins are in the next shard (resolved away)

    def merge(self, other: Truth) -> None:
        self.records += other.records
        self.lines += other.lines
        for name in ("exact", "near", "chains", "translations", "cross_task", "gold_copies", "wrong_language"):
            getattr(self, name).extend(getattr(other, name))
        self.unreadable.extend(other.unreadable)
        self.carried.extend(other.carried)
        for name in ("pii", "decoys"):
            for kind, refs in getattr(other, name).items():
                getattr(self, name).setdefault(kind, []).extend(refs)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- pools --------------------------------------------------------------------------------------------------------


def build_pools(catalog: Catalog, seeds_dir: Path) -> Pools:
    """Templates from the exemplar seeds, vocabularies from all seeds, instructions from the catalog."""
    templates: list[Template] = []
    gold: list[dict[str, str]] = []
    words: set[str] = set()
    pairs: set[str] = set()
    chars: set[str] = set()
    for spec in catalog:
        path = seeds_dir / f"{spec.id}.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            seed = json.loads(line)
            text = seed["input"]
            if seed["lang"] == "en":
                words.update(w.lower() for w in _WORD.findall(text) if len(w) >= 4 and not w.isupper())
            else:
                for run in _HAN.findall(text):
                    chars.update(run)
                    pairs.update(run[i : i + 2] for i in range(0, len(run) - 1, 2))
            seed_id = record_id(spec.id, seed["lang"], text)
            if seed.get("role") == "gold":
                gold.append(
                    {"task": spec.id, "lang": seed["lang"], "input": text, "output": seed["output"], "id": seed_id}
                )
                continue
            template = _template(spec.id, seed["lang"], text, seed["output"], seed_id)
            if sum(len(columns) for columns in template.slots.values()) >= MIN_SLOTS:
                templates.append(template)
    by_key: dict[tuple[str, str], list[int]] = {}
    for index, template in enumerate(templates):
        by_key.setdefault((template.task, template.lang), []).append(index)
    keys = sorted(by_key)
    lower = sorted(words)
    vocab = {
        0: np.array(lower, dtype=object),
        1: np.array([w.capitalize() for w in lower], dtype=object),
        2: np.array(sorted(pairs), dtype=object),
        3: np.array(sorted(chars), dtype=object),
    }
    instructions = {(t, lang): list(catalog.get(t).instructions_for(lang)) for t, lang in keys}
    tasks_of: dict[str, list[str]] = {}
    for task, lang in keys:
        tasks_of.setdefault(lang, []).append(task)
    return Pools(keys, templates, by_key, instructions, tasks_of, gold, vocab)


def _template(task: str, lang: str, text: str, output: str, seed_id: str) -> Template:
    pieces: list[str] = []
    slots: dict[int, list[int]] = {}
    digits: list[int] = []
    # Cut into units: English words and Han runs, with digit runs and everything else between them kept.
    unit = _WORD if lang == "en" else _HAN
    position = 0
    for match in unit.finditer(text):
        _fixed(text[position : match.start()], pieces, digits)
        token = match.group()
        if lang == "en":
            if len(token) >= 4 and not token.isupper():
                slots.setdefault(1 if token[0].isupper() else 0, []).append(len(pieces))
            pieces.append(token)
        else:
            for i in range(0, len(token), 2):
                part = token[i : i + 2]
                slots.setdefault(2 if len(part) == 2 else 3, []).append(len(pieces))
                pieces.append(part)
        position = match.end()
    _fixed(text[position:], pieces, digits)
    return Template(task, lang, pieces, slots, digits, output, seed_id)


def _fixed(text: str, pieces: list[str], digits: list[int]) -> None:
    position = 0
    for match in _DIGITS.finditer(text):
        if match.start() > position:
            pieces.append(text[position : match.start()])
        digits.append(len(pieces))
        pieces.append(match.group())
        position = match.end()
    if position < len(text):
        pieces.append(text[position:])


# --- fresh records --------------------------------------------------------------------------------------------------


def fresh_records(
    pools: Pools, rng: np.random.Generator, count: int, keys: list[tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    """`count` unrelated synth records (random task and language, or the given ones), deterministic in `rng`.

    Records of one template are made together, as matrices of pieces, so the cost per record is one join.
    """
    if keys is None:
        key_index = rng.integers(len(pools.keys), size=count)
        keys = [pools.keys[k] for k in key_index]
    choice = np.array(
        [pools.by_key[k][int(u * len(pools.by_key[k]))] for k, u in zip(keys, rng.random(count), strict=True)]
    )
    out: list[dict[str, Any] | None] = [None] * count
    order = np.argsort(choice, kind="stable")
    bounds = np.flatnonzero(np.diff(choice[order])) + 1
    for rows in np.split(order, bounds):
        if not len(rows):
            continue
        template = pools.templates[choice[rows[0]]]
        texts = _fill(template, pools, rng, len(rows))
        instructions = pools.instructions[(template.task, template.lang)]
        picks = rng.integers(len(instructions), size=len(rows))
        provenance = {"template": "bench-v2", "model": "bench-model", "temperature": 0.9, "exemplar": template.seed_id}
        for row, text, pick in zip(rows.tolist(), texts, picks.tolist(), strict=True):
            out[row] = {
                "task": template.task,
                "lang": template.lang,
                "instruction": instructions[pick],
                "input": text,
                "output": template.output,
                "source": "synth",
                "generator": "bench-model",
                "provenance": provenance,
            }
    return out  # type: ignore[return-value]


def _fill(template: Template, pools: Pools, rng: np.random.Generator, m: int) -> list[str]:
    matrix = np.tile(np.array(template.pieces, dtype=object), (m, 1))
    for kind, columns in template.slots.items():
        pool = pools.vocab[kind]
        fresh = pool[rng.integers(len(pool), size=(m, len(columns)))]
        # Exactly ceil(REPLACE * k) of the k units of every record, a random subset: no record keeps most of its
        # template by chance (a Bernoulli draw per unit would, now and then, at a million records).
        ranks = rng.random((m, len(columns))).argsort(axis=1).argsort(axis=1)
        replace = ranks < -(-len(columns) * REPLACE // 1)
        matrix[:, columns] = np.where(replace, fresh, matrix[:, columns])
    for column in template.digits:
        width = len(template.pieces[column])
        low = 10 ** (width - 1) if width > 1 else 0
        matrix[:, column] = [str(v) for v in rng.integers(low, 10**width, size=m).tolist()]
    texts = ["".join(row) for row in matrix.tolist()]
    framed = np.flatnonzero(rng.random(m) < 0.5)  # a fresh name and place in front of half of them
    for row, frame in zip(framed.tolist(), _frames(template.lang, rng, len(framed)), strict=True):
        texts[row] = frame + texts[row]
    return texts


def _frames(lang: str, rng: np.random.Generator, m: int) -> list[str]:
    """`m` openings with a fresh name and place ("Maya Okafor from Leeds here. ", "我是成都的王芳。")."""
    pick = rng.integers(0, 1 << 30, size=(m, 4)).tolist()
    if lang == "en":
        return [
            _EN_FRAMES[f % len(_EN_FRAMES)].format(
                name=f"{_FIRST[a % len(_FIRST)]} {_LAST[b % len(_LAST)]}", city=_CITIES[c % len(_CITIES)]
            )
            for f, a, b, c in pick
        ]
    given = len(_ZH_GIVEN)
    return [
        _ZH_FRAMES[f % len(_ZH_FRAMES)].format(
            name=_ZH_SURNAMES[a % len(_ZH_SURNAMES)] + _ZH_GIVEN[b % given] + ("" if c % 3 else _ZH_GIVEN[c % given]),
            city=_ZH_CITIES[c % len(_ZH_CITIES)],
        )
        for f, a, b, c in pick
    ]


# --- edits and injections ---------------------------------------------------------------------------------------


def edit(text: str, lang: str, rng: np.random.Generator, edits: int, region: tuple[float, float] = (0.0, 1.0)) -> str:
    """`edits` characters replaced inside `region` (a share of the text): what a low-temperature re-generation does.

    English letters become other letters, Han characters other Han characters, so the language stays the same.
    """
    chars = list(text)
    pattern = _HAN_CHAR if lang == "zh" else _LOWER
    lo, hi = int(len(chars) * region[0]), int(len(chars) * region[1])
    where = [m.start() for m in pattern.finditer(text, lo, hi)]
    if not where:
        return text
    pool = "的了是我在有他这中大来上个国到说们为子和你地出道也时年" if lang == "zh" else "abcdefghijklmnopqrstuvwxyz"
    for i in rng.choice(where, size=min(edits, len(where)), replace=False).tolist():
        replacement = pool[rng.integers(len(pool))]
        while replacement == chars[i]:
            replacement = pool[rng.integers(len(pool))]
        chars[i] = replacement
    return "".join(chars)


def near_copy(
    text: str, lang: str, rng: np.random.Generator, low: float, high: float, region: tuple[float, float] = (0.0, 1.0)
) -> tuple[str, float] | None:
    """An edited copy whose build-definition Jaccard with `text` lies in [low, high], or None after a few tries."""
    n = BUILD_NGRAM[lang]
    base = ngrams(dedup_key(text), n)
    target = rng.uniform(low, high)
    # Each edit destroys about n grams of each side: J ≈ (G - n·e) / (G + n·e) solved for e, then corrected.
    edits = max(1, round(len(base) * (1 - target) / (n * (1 + target))))
    for _ in range(8):
        copy = edit(text, lang, rng, edits, region)
        score = jaccard(base, ngrams(dedup_key(copy), n))
        if low <= score <= high:
            return copy, score
        edits = max(1, edits + (1 if score > high else -1))
    return None


def exact_copy(text: str, rng: np.random.Generator) -> str:
    """The same text by the comparison key: whitespace around and inside, and (for Latin) letter case."""
    variant = int(rng.integers(4))
    if variant == 0:
        return "  " + text + " \t"
    if variant == 1:
        return text.replace(" ", "  ") + "\n" if " " in text else " " + text
    if variant == 2 and text.upper() != text:  # Chinese without Latin letters has no case to change
        return text.upper()
    return text.swapcase() + "\u3000"  # an ideographic space: whitespace too


def _cn_id(rng: np.random.Generator) -> str:
    """A Chinese resident ID number with a real birth date and a valid ISO 7064 check character."""
    # Born 1990-2003: every region code here existed by then, which stdnum's birth-place check also asks.
    year, month, day = int(rng.integers(1990, 2004)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
    body = f"{_CN_REGIONS[rng.integers(len(_CN_REGIONS))]}{year}{month:02d}{day:02d}{int(rng.integers(0, 1000)):03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]


def _luhn_valid(rng: np.random.Generator, digits: int) -> str:
    body = [int(d) for d in rng.integers(0, 10, size=digits - 1).tolist()]
    total = 0
    for index, value in enumerate(reversed(body)):
        doubled = value * 2 if index % 2 == 0 else value  # the check digit will sit to the right
        total += doubled - 9 if doubled > 9 else doubled
    return "".join(map(str, body)) + str((10 - total % 10) % 10)


def personal_data(kind: str, lang: str, rng: np.random.Generator) -> str:
    """A sentence carrying one kind of personal data, to append to an input."""
    if kind == "phone":
        if lang == "zh":
            prefix = ("138", "139", "135", "186", "150", "158", "177", "189")[rng.integers(8)]
            return f"我的手机号是{prefix}{int(rng.integers(0, 10**8)):08d}，请尽快联系我。"
        area = ("212", "415", "617", "312", "206", "303", "512")[rng.integers(7)]
        exchange = int(rng.integers(201, 999))
        exchange += exchange == 555  # 555 numbers are fictional: a detector may rightly let them pass
        return f" You can call me on ({area}) {exchange}-{int(rng.integers(1000, 10000))}."
    if kind == "email":
        user = f"{_FIRST[rng.integers(len(_FIRST))].lower()}.{_LAST[rng.integers(len(_LAST))].lower()}"
        user += str(int(rng.integers(10, 99)))
        if lang == "zh":
            return f"我的邮箱是{user}@{('163.com', 'qq.com', 'sina.com')[rng.integers(3)]}。"
        return f" My email is {user}@{('gmail.com', 'outlook.com', 'yahoo.co.uk')[rng.integers(3)]}."
    number = _cn_id(rng)
    return f"我的身份证号是{number}。" if lang == "zh" else f" My Chinese ID number is {number}."


def decoy(kind: str, lang: str, rng: np.random.Generator) -> str:
    """A sentence that only looks like personal data (the build must keep the record)."""
    if kind == "amount":  # "13500000000元": eleven digits starting 13, an amount, not a mobile number
        amount = f"1{int(rng.integers(3, 10))}{int(rng.integers(1, 10))}00000000"
        return f"合同总金额为{amount}元。" if lang == "zh" else f" The contract was worth {amount} yuan."
    number = "SF" + _luhn_valid(rng, 13)  # a parcel tracking number that happens to pass Luhn, not a bank card
    return f"快递单号{number}，至今未送达。" if lang == "zh" else f" The parcel's tracking number is {number}."


# --- shards -------------------------------------------------------------------------------------------------------


@dataclass
class _Line:
    """A line waiting to be placed: a record (dict) or raw text, and what to tell the truth once placed."""

    content: dict[str, Any] | str
    notify: list[Callable[[Ref], None]] = field(default_factory=list)


def _shard_plan(n: int, per_file: int) -> list[int]:
    return [min(per_file, n - start) for start in range(0, n, per_file)]


def generate_shard(pools: Pools, seed: int, shard: int, size: int, has_next: bool) -> tuple[list[str], Truth]:
    """The lines of one shard (JSON text) and its truth. Shard k's carried originals get their twins in shard k+1:
    that shard regenerates them from the same seed, so shards stay independent and can be made in parallel."""
    stem = f"bench-{shard:04d}"
    rng = np.random.default_rng([seed, shard])
    truth = Truth()
    counts = {name: round(rate * size) for name, rate in RATES.items()}
    carried_in = counts["carry"] if shard > 0 else 0
    counts["carry"] = counts["carry"] if has_next else 0
    unreadable = max(1, size // UNREADABLE_EVERY) if size >= 100 else 0
    extra = (
        counts["exact"]
        + counts["near"]
        + 2 * counts["chain"]
        + counts["translation"]
        + counts["cross_task"]
        + counts["gold_copy"]
        + carried_in
        + unreadable
    )
    base_count = size - extra - counts["carry"]
    if base_count < size // 2:
        raise ValueError(f"a shard of {size} lines is too small for its injections")
    base = fresh_records(pools, rng, base_count)
    placed: list[tuple[float, int, _Line]] = []  # (position, tie-break, line): a heap, popped in order

    def place(position: float, line: _Line) -> None:
        heapq.heappush(placed, (position, len(placed), line))

    positions = rng.permutation(base_count).astype(float)
    lines = [_Line(record) for record in base]
    for position, line in zip(positions.tolist(), lines, strict=True):
        place(position, line)

    def later(position: float) -> float:  # somewhere after `position`, within the shard
        return position + float(rng.uniform(0.5, max(1.0, base_count - position)))

    # Disjoint base records for each injection that starts from one.
    starts = iter(rng.permutation(base_count).tolist())

    def take(k: int) -> list[int]:
        return [next(starts) for _ in range(k)]

    def record_ref(line: _Line, slot: list[Ref]) -> None:
        def done(where: Ref) -> None:
            slot.append(where)

        line.notify.append(done)

    def with_refs(lines_: list[_Line], finish: Callable[[list[Ref]], None]) -> None:
        got: dict[int, Ref] = {}
        for k, line in enumerate(lines_):

            def done(where: Ref, k: int = k) -> None:
                got[k] = where
                if len(got) == len(lines_):
                    finish([got[i] for i in range(len(lines_))])

            line.notify.append(done)

    # Exact twins: the copy later in the shard.
    for i in take(counts["exact"]):
        original = lines[i]
        copy = _Line({**original.content, "input": exact_copy(original.content["input"], rng)})
        place(later(positions[i]), copy)
        with_refs([original, copy], lambda refs: truth.exact.append((refs[0], refs[1])))

    # Near twins, Jaccard 0.75-0.95.
    for i in take(counts["near"]):
        original = lines[i]
        made = near_copy(original.content["input"], original.content["lang"], rng, 0.75, 0.95)
        if made is None:
            continue
        text, score = made
        copy = _Line({**original.content, "input": text})
        place(later(positions[i]), copy)
        with_refs([original, copy], lambda refs, s=score: truth.near.append((refs[0], refs[1], round(s, 4))))

    # Chains: B edits A's first half, C edits B's second half; A and C stay under 0.66 of each other.
    for i in take(counts["chain"]):
        a = lines[i]
        text, lang = a.content["input"], a.content["lang"]
        for _ in range(4):
            first = near_copy(text, lang, rng, 0.74, 0.84, region=(0.0, 0.5))
            second = near_copy(first[0], lang, rng, 0.74, 0.84, region=(0.5, 1.0)) if first else None
            if first and second and build_similarity(text, second[0], lang) < 0.66:
                break
        else:
            continue
        b, c = _Line({**a.content, "input": first[0]}), _Line({**a.content, "input": second[0]})
        position_b = later(positions[i])
        place(position_b, b)
        place(later(position_b), c)
        with_refs([a, b, c], lambda refs: truth.chains.append((refs[0], refs[1], refs[2])))

    # Translation pairs: a record and one of the other language, same task, sharing a group.
    starts_t = take(counts["translation"])
    partners = fresh_records(
        pools, rng, len(starts_t), keys=[(lines[i].content["task"], _other(lines[i].content["lang"])) for i in starts_t]
    )
    for k, (i, partner) in enumerate(zip(starts_t, partners, strict=True)):
        group = f"bench-{seed}-{shard}-{k}"
        lines[i].content["group"] = group
        partner["group"] = group
        mate = _Line(partner)
        place(later(positions[i]), mate)
        en, zh = (lines[i], mate) if lines[i].content["lang"] == "en" else (mate, lines[i])
        with_refs([en, zh], lambda refs: truth.translations.append((refs[0], refs[1])))

    # Cross-task copies: the same input under another task of its language.
    for i in take(counts["cross_task"]):
        original = lines[i]
        task, lang = original.content["task"], original.content["lang"]
        others = [t for t in pools.tasks_of[lang] if t != task]
        other = others[rng.integers(len(others))]
        copy = _Line({**original.content, **_labelled(pools, rng, other, lang)})
        place(later(positions[i]), copy)
        with_refs([original, copy], lambda refs: truth.cross_task.append((refs[0], refs[1])))

    # Near-copies of gold seeds, under the gold's own task or another task of its language.
    for _ in range(counts["gold_copy"]):
        gold = pools.gold[rng.integers(len(pools.gold))]
        made = near_copy(gold["input"], gold["lang"], rng, 0.75, 0.95)
        if made is None:
            continue
        same_task = bool(rng.random() < 0.5)
        others = [t for t in pools.tasks_of[gold["lang"]] if t != gold["task"]]
        task = gold["task"] if same_task else others[rng.integers(len(others))]
        record = {
            **_labelled(pools, rng, task, gold["lang"]),
            "input": made[0],
            "source": "synth",
            "generator": "bench-model",
            "provenance": {"template": "bench-v2", "model": "bench-model", "temperature": 0.9},
        }
        if same_task:
            record["output"] = gold["output"]
        copy = _Line(record)
        place(float(rng.uniform(0, base_count)), copy)
        with_refs([copy], lambda refs, g=gold["id"], s=same_task: truth.gold_copies.append((g, refs[0], s)))

    # Personal data, decoys and wrong-language rows change base records in place.
    for k, i in enumerate(take(counts["pii"])):
        kind = ("phone", "email", "cn_id")[k % 3]
        content = lines[i].content
        content["input"] += personal_data(kind, content["lang"], rng)
        record_ref(lines[i], truth.pii.setdefault(kind, []))
    for k, i in enumerate(take(counts["decoy"])):
        kind = ("amount", "tracking")[k % 2]
        content = lines[i].content
        content["input"] += decoy(kind, content["lang"], rng)
        record_ref(lines[i], truth.decoys.setdefault(kind, []))
    for i in take(counts["wrong_language"]):
        content = lines[i].content
        content.update(_labelled(pools, rng, content["task"], _other(content["lang"])))  # text stays as it was
        record_ref(lines[i], truth.wrong_language)

    # Originals carried to the next shard, and the twins of the previous shard's carried originals.
    if counts["carry"]:
        carried = fresh_records(pools, np.random.default_rng([seed, shard, 1]), counts["carry"])
        for record in carried:
            line = _Line(record)
            record_ref(line, truth.carried)
            place(float(rng.uniform(0, base_count)), line)
    if carried_in:
        originals = fresh_records(pools, np.random.default_rng([seed, shard - 1, 1]), carried_in)
        for k, original in enumerate(originals):
            # The original's place is the previous shard's business: named by id here, line 0 (resolved after).
            where: Ref = (f"bench-{shard - 1:04d}", 0, record_id(original["task"], original["lang"], original["input"]))
            if k % 2 == 0:
                copy = _Line({**original, "input": exact_copy(original["input"], rng)})
                with_refs([copy], lambda refs, w=where: truth.exact.append((w, refs[0])))
            else:
                made = near_copy(original["input"], original["lang"], rng, 0.75, 0.95)
                if made is None:
                    continue
                copy = _Line({**original, "input": made[0]})
                with_refs([copy], lambda refs, w=where, s=made[1]: truth.near.append((w, refs[0], round(s, 4))))
            place(float(rng.uniform(0, base_count)), copy)

    for k in range(unreadable):
        broken = ('{"task": "fin_intent", "lang": "en", "input": "cut short', '["not", "an", "object"]')[k % 2]
        line = _Line(broken)
        record_ref(line, truth.unreadable)
        place(float(rng.uniform(0, base_count)), line)

    out: list[str] = []
    while placed:
        _, _, line = heapq.heappop(placed)
        content = line.content
        if isinstance(content, dict):
            text = json.dumps(content, ensure_ascii=False)
            # Ids only where the truth needs them: deriving one costs a normalization.
            rid = record_id(content["task"], content["lang"], content["input"]) if line.notify else ""
            where = (stem, len(out) + 1, rid)
            truth.records += 1
        else:
            text = content
            where = (stem, len(out) + 1, "")
        out.append(text)
        for notify in line.notify:
            notify(where)
    truth.lines = len(out)
    return out, truth


def _other(lang: str) -> str:
    return "zh" if lang == "en" else "en"


def _labelled(pools: Pools, rng: np.random.Generator, task: str, lang: str) -> dict[str, str]:
    """Task, language, an instruction and a valid output of that task and language (from one of its templates)."""
    instructions = pools.instructions[(task, lang)]
    options = pools.by_key[(task, lang)]
    template = pools.templates[options[rng.integers(len(options))]]
    return {
        "task": task,
        "lang": lang,
        "instruction": instructions[rng.integers(len(instructions))],
        "output": template.output,
    }


def _write_shard(pools: Pools, seed: int, shard: int, size: int, has_next: bool, path: Path) -> Truth:
    lines, truth = generate_shard(pools, seed, shard, size, has_next)
    with path.open("w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return truth


def write_store(
    catalog: Catalog,
    seeds_dir: Path,
    synth_dir: Path,
    n: int,
    *,
    seed: int = 7,
    per_file: int = 125_000,
    workers: int | None = None,
) -> Truth:
    """Write `n` lines of synth store as shards `synth_dir/bench-0000.jsonl`, ...; return what was injected where."""
    pools = build_pools(catalog, seeds_dir)
    synth_dir.mkdir(parents=True, exist_ok=True)
    sizes = _shard_plan(n, per_file)
    jobs = [
        (pools, seed, k, size, k + 1 < len(sizes), synth_dir / f"bench-{k:04d}.jsonl") for k, size in enumerate(sizes)
    ]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if n >= PARALLEL_FROM and workers > 1:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_write_shard, *zip(*jobs, strict=True)))
    else:
        parts = [_write_shard(*job) for job in jobs]
    truth = Truth()
    for part in parts:
        truth.merge(part)
    _resolve_carried(truth)
    return truth


def _resolve_carried(truth: Truth) -> None:
    """Twins of carried originals name them by id with line 0: give them the line their own shard reported."""
    found = {ref[2]: ref for ref in truth.carried}
    truth.exact = [(found.get(o[2], o) if o[1] == 0 else o, c) for o, c in truth.exact]
    truth.near = [(found.get(o[2], o) if o[1] == 0 else o, c, s) for o, c, s in truth.near]
    truth.carried = []


def read_sample(synth_dir: Path, n: int) -> list[dict[str, Any]]:
    """The first `n` readable records of the store, in file order (the benchmark's dedup sample)."""
    rows: list[dict[str, Any]] = []
    for path in sorted(synth_dir.glob("bench-*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and "input" in row:
                    rows.append(row)
                    if len(rows) == n:
                        return rows
    return rows
