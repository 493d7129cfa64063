"""The dataset card rendered from a real build: YAML the Hub reads, prose, plots, changelog, LLaMA-Factory metadata."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from datasets import load_dataset
from huggingface_hub import DatasetCard

from cards import CardContext, render_card, write_card_files
from cards.changelog import diff
from cards.llamafactory import dataset_info
from cards.provenance import summarize
from cards.sections import domain_name, quoted
from catalog import Catalog, load_catalog
from catalog.layout import SPLITS, config_files, read_recipe
from catalog.records import compact_json
from catalog.settings import Settings
from pipeline.build import build
from tests.conftest import DATA, sample_seeds
from validation.release_data import read_release

CONTEXT = CardContext("anytasktune", "v1.2.0", "2025-03-01", "acme/anytasktune")


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Path:
    """The real seeds built into a scratch folder, with the card files written into it."""
    data = tmp_path_factory.mktemp("data")
    shutil.copytree(DATA / "tasks", data / "tasks")
    shutil.copytree(sample_seeds(), data / "seeds")
    folder = build(catalog, Settings(data)).release
    write_card_files(folder, catalog, CONTEXT)
    return folder


@pytest.fixture(scope="module")
def card(release: Path) -> DatasetCard:
    return DatasetCard.load(release / "README.md")


def test_yaml_header_has_the_hub_fields_and_keeps_configs_and_dataset_info(
    card: DatasetCard, release: Path, catalog: Catalog
) -> None:
    data = card.data.to_dict()
    assert data["pretty_name"] == "AnyTaskTune"
    assert data["language"] == ["en", "zh"]
    assert data["multilinguality"] == "multilingual"
    assert data["license"] == "apache-2.0"
    published = read_release(release, catalog).height
    assert data["size_categories"] == ("n<1K" if published < 1000 else "1K<n<10K")
    assert data["task_categories"] == ["text-generation", "text-classification"]  # label tasks classify
    assert {"medical", "legal", "customer-service", "bilingual"} <= set(data["tags"])
    assert "synthetic" not in data["tags"]  # hand-written seeds only
    assert {c["config_name"] for c in data["configs"]} == set(config_files(catalog))
    records = read_release(release, catalog)
    info = {i["config_name"]: i for i in data["dataset_info"]}
    for spec in catalog:
        for split in info[spec.id]["splits"]:
            expected = records.filter((pl.col("task") == spec.id) & (pl.col("split") == split["name"])).height
            assert split["num_examples"] == expected, (spec.id, split)
    assert sum(s["num_examples"] for s in info["all"]["splits"]) == records.height


def test_the_task_table_is_compact_per_domain_in_code_order_with_counts_per_split_and_language(
    card: DatasetCard, release: Path, catalog: Catalog
) -> None:
    records = read_release(release, catalog)
    table = card.text.split("## Tasks\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| code")]
    assert all(line.count(" | ") == 7 for line in rows)  # 8 columns: nothing runs off the page
    codes = [line.split("|")[1].strip() for line in rows]
    assert codes[:4] == ["C1", "C2", "C3", "C4"]  # consumer first, in code order
    for domain in catalog.domains:
        assert f"### {domain_name(domain)}" in table
    by_config = {line.split("|")[2].strip(): line for line in rows}
    for spec in catalog:
        row = by_config[f"`{spec.id}`"]
        assert f"| {spec.code} |" in row and spec.name.zh in row and spec.name.en in row
        counts = [
            f"{records.filter((pl.col('task') == spec.id) & (pl.col('split') == s) & (pl.col('lang') == 'en')).height}"
            f"\u00a0/\u00a0{records.filter((pl.col('task') == spec.id) & (pl.col('split') == s) & (pl.col('lang') == 'zh')).height}"
            for s in SPLITS
        ]
        assert row.rstrip().endswith(" | ".join(counts) + " |"), row


def test_task_details_hold_every_instruction_the_labels_and_one_example_per_language(
    card: DatasetCard, release: Path, catalog: Catalog
) -> None:
    records = read_release(release, catalog)
    by_id = {r["id"]: r for r in records.iter_rows(named=True)}
    details = card.text.split("## Task details", 1)[1]
    for spec in catalog:
        section = details.split(f"<code>{spec.id}</code>", 1)[1].split("</details>", 1)[0]
        for lang, title in (("en", "English"), ("zh", "中文")):
            assert all(text in section for text in spec.paraphrases_for(lang))
            assert all(f". {rule}" in section for rule in getattr(spec.rules, lang))  # once, not once a paraphrase
            for name in spec.closed_sets:
                assert all(label in section for label in spec.labels(name, lang))
            record_id = section.split(f"**{title}** (`", 1)[1].split("`", 1)[0]
            example = by_id[record_id]
            assert (example["task"], example["lang"]) == (spec.id, lang)
            assert quoted(example["input"]) in section and example["instruction"] in section
        assert "```text" not in section  # inputs and free-text outputs are quotes, which wrap


def test_prose_sections_a_user_needs(card: DatasetCard) -> None:
    text = card.text
    for needle in (
        'load_dataset("acme/anytasktune", "con_aspect_scoring", revision="v1.2.0")',
        'filter(lambda r: r["lang"] == "zh")',
        "explicit",
        "## Record schema",
        "Hand-written seed records",
        "none in this release",  # no synthesized records in the seeds-only build
        "records read (seeds and synth store)",
        "not professional advice",
        "arXiv:2407.07094",
        "first release: every record is new",
        "dataset_info.json",
    ):
        assert needle in text, needle


def test_plots_are_png_files_shown_in_the_card(card: DatasetCard, release: Path) -> None:
    images = [line.split("(", 1)[1].rstrip(")") for line in card.text.splitlines() if line.startswith("![")]
    assert len(images) == 2
    for image in images:
        assert (release / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_folder_loads_by_config_with_datasets(release: Path, catalog: Catalog, card: DatasetCard) -> None:
    records = read_release(release, catalog)
    loaded = load_dataset(str(release), "med_triage")
    for split in SPLITS:
        expected = records.filter((pl.col("task") == "med_triage") & (pl.col("split") == split))["id"].sort()
        assert sorted(loaded[split]["id"]) == expected.to_list()
    # The sizes the card declares are the ones `datasets` finds when it loads the config (Arrow, not Parquet).
    declared = {i["config_name"]: i for i in card.data.to_dict()["dataset_info"]}
    for config in ("med_triage", "medical", "all"):
        loaded = load_dataset(str(release), config)
        info = declared[config]
        for split in info["splits"]:
            assert split["num_bytes"] == loaded[split["name"]].info.splits[split["name"]].num_bytes, (config, split)
        assert info["dataset_size"] == sum(s["num_bytes"] for s in info["splits"])
        parquet = sum((release / f).stat().st_size for files in config_files(catalog)[config].values() for f in files)
        assert info["download_size"] == parquet != info["dataset_size"]


def test_llamafactory_dataset_info_points_at_alpaca_columns_of_real_files(release: Path, catalog: Catalog) -> None:
    info = json.loads((release / "dataset_info.json").read_text(encoding="utf-8"))
    assert info == dataset_info(catalog)
    configs = config_files(catalog)
    names = {spec.id for spec in catalog} | set(catalog.domains) | {"all"}
    assert set(info) == names | {f"{name}_{split}" for name in names for split in SPLITS}
    for name, entry in info.items():
        assert entry["formatting"] == "alpaca" and entry["columns"] == {
            "prompt": "instruction", "query": "input", "response": "output"}  # fmt: skip
        if "file_name" in entry:  # a task: LLaMA-Factory reads the one file with its own builder
            assert (release / entry["file_name"]).exists(), name
        else:  # a domain or all: LLaMA-Factory calls load_dataset(<dataset_dir>/<script_url>, subset, split)
            assert entry["script_url"] == "." and entry["subset"] in configs, name
    assert info["fin_intent"] == info["fin_intent_train"] and info["medical"] == info["medical_train"]
    records = read_release(release, catalog)
    loaded = load_dataset("parquet", data_files=str(release / info["fin_intent"]["file_name"]), split="train")
    expected = records.filter((pl.col("task") == "fin_intent") & (pl.col("split") == "train"))
    assert set(info["fin_intent"]["columns"].values()) <= set(loaded.column_names) and len(loaded) == expected.height
    for name in ("medical", "all_test"):
        entry = info[name]
        loaded = load_dataset(os.path.join(release, entry["script_url"]), entry["subset"], split=entry["split"])
        tasks = {spec.id for spec in catalog.select([entry["subset"]])}
        wanted = records.filter(pl.col("task").is_in(list(tasks)) & (pl.col("split") == entry["split"]))
        assert sorted(loaded["id"]) == sorted(wanted["id"].to_list()), name


def _synth_record(task: str, lang: str, n: int, provenance: dict) -> dict:
    return {
        "id": f"{n:016x}",
        "task": task,
        "lang": lang,
        "source": "synth",
        "generator": provenance.pop("model"),
        "provenance": compact_json(provenance),
        "split": "train",
    }


def test_provenance_counts_sources_models_parameters_and_cost() -> None:
    records = pl.DataFrame(
        [
            {
                "id": "a" * 16,
                "task": "fin_intent",
                "lang": "en",
                "source": "seed",
                "generator": "human",
                "provenance": "{}",
                "split": "train",
            },
            _synth_record(
                "fin_intent", "en", 1, {"model": "qwen2.5-72b", "sampling": {"temperature": 0.9}, "cost_usd": 0.25}
            ),
            _synth_record(
                "fin_intent", "zh", 2, {"model": "qwen2.5-72b", "sampling": {"temperature": 0.7}, "cost_usd": 0.5}
            ),
            _synth_record("med_triage", "zh", 3, {"model": "gpt-4o", "temperature": 0.7}),
        ]
    )
    summary = summarize(records)
    assert (summary.seed_records, summary.synth_records) == (1, 3)
    assert dict(summary.generators) == {"qwen2.5-72b": 2, "gpt-4o": 1}
    assert summary.parameters == {"temperature": {"0.9", "0.7"}}
    assert summary.cost_usd == 0.75


def test_provenance_of_synthesized_records_reaches_the_card(tmp_path: Path, release: Path, catalog: Catalog) -> None:
    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    path = folder / "data" / "fin_intent" / "train-00000-of-00001.parquet"
    frame = pl.read_parquet(path)
    synth = frame.head(2).with_columns(
        source=pl.lit("synth"),
        generator=pl.lit("deepseek-v3"),
        provenance=pl.lit(compact_json({"sampling": {"temperature": 0.8, "top_p": 0.95}, "cost_usd": 1.5})),
    )
    pl.concat([frame.slice(2), synth]).write_parquet(path)
    text = render_card(folder, catalog, CONTEXT)
    assert "Synthesized records: **2**" in text
    assert "`deepseek-v3` (2)" in text
    assert "temperature = 0.8; top_p = 0.95" in text
    assert "$3.00" in text  # two records at $1.50 each
    assert "synthetic" in DatasetCard(text).data.to_dict()["tags"]


def test_changelog_counts_added_and_removed_records_per_task() -> None:
    before = pl.DataFrame({"id": ["a", "b", "c"], "task": ["t1", "t1", "t2"]})
    after = pl.DataFrame({"id": ["a", "c", "d", "e"], "task": ["t1", "t2", "t2", "t3"]})
    change = diff("v2.0.0", "2025-01-02", after, before, "v1.0.0")
    assert [(t.task, t.added, t.removed, t.records) for t in change.tasks] == [
        ("t1", 0, 1, 1),
        ("t2", 1, 0, 2),
        ("t3", 1, 0, 1),
    ]
    assert (change.added, change.removed, change.records) == (2, 1, 4)


def test_card_yaml_is_valid_yaml_and_reads_back_the_same(release: Path) -> None:
    text = (release / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(text.split("---\n", 2)[1])
    assert header == DatasetCard(text).data.to_dict()


def test_a_table_cell_is_one_line_with_its_pipes_escaped() -> None:
    from cards.sections import _cell

    assert _cell("a | b\nc") == "a \\| b c"


def test_untrusted_text_renders_as_itself_in_a_quote_that_wraps() -> None:
    from markdown_it import MarkdownIt

    from cards.sections import quoted

    hostile = (
        "<script>alert(1)</script> *bold* `code` [link](http://x) # not a heading\n\n| a | b |\n~~gone~~ back\\slash"
    )
    rendered = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(quoted(hostile))
    assert rendered.startswith("<blockquote>") and "<script>" not in rendered
    for tag in ("<em>", "<code>", "<a ", "<h1>", "<table>", "<s>"):
        assert tag not in rendered, tag
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered))
    assert " ".join(text.split()) == " ".join(hostile.split())


def test_the_recipe_in_the_release_rebuilds_the_same_parquet(
    tmp_path: Path, release: Path, catalog: Catalog, card: DatasetCard
) -> None:
    recipe = read_recipe(release)
    assert recipe is not None and recipe["tool"]["name"] == "anytasktune"
    assert recipe["build"]["near_duplicate_threshold"] == 0.7
    assert sorted(p.name for p in (release / "recipe" / "tasks").iterdir()) == [f"{t.id}.yaml" for t in catalog]
    data = tmp_path / "again"
    shutil.copytree(release / "recipe" / "tasks", data / "tasks")
    built_from = release.parents[1]  # the data folder the release was built from: <data>/build/<name>
    for item in recipe["inputs"]:  # the inputs at hand are the ones the recipe names
        source = built_from / item["path"]
        assert hashlib.sha256(source.read_bytes()).hexdigest() == item["sha256"], item["path"]
        assert source.read_bytes().count(b"\n") == item["lines"]
        (data / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, data / item["path"])
    again = build(load_catalog(data / "tasks"), Settings(data)).release
    assert len(recipe["outputs"]) == 3 * len(catalog)
    for item in recipe["outputs"]:
        assert hashlib.sha256((again / item["path"]).read_bytes()).hexdigest() == item["sha256"], item["path"]
    assert read_recipe(again)["outputs"] == recipe["outputs"]
    section = card.text.split("## Reproduce", 1)[1].split("\n## ", 1)[0]
    assert f"anytasktune {recipe['tool']['version']}" in section and "anytasktune --data-dir data build" in section


def test_the_card_has_per_column_statistics_and_label_shares_from_the_data(
    card: DatasetCard, release: Path, catalog: Catalog
) -> None:
    records = read_release(release, catalog)
    section = card.text.split("## Statistics", 1)[1].split("\n## ", 1)[0]
    columns = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| `")}
    lang = [c.strip() for c in columns["`lang`"].split("|")[2:-1]]
    assert lang == ["0", "0", "2", "2", "2", "2"]  # nulls, empty, distinct, min/median/max length
    output = [c.strip() for c in columns["`output`"].split("|")[2:-1]]
    assert (
        output[2] == f"{records['output'].n_unique():,}" and output[5] == f"{records['output'].str.len_chars().max():,}"
    )
    shares = columns["`fin_intent`"]
    total = records.filter(pl.col("task") == "fin_intent").height  # one label per record
    distinct = (
        records.filter(pl.col("task") == "fin_intent")
        .select(
            pl.col("output").replace_strict(
                {
                    z: e
                    for e, z in zip(*(catalog.get("fin_intent").labels("intent", x) for x in ("en", "zh")), strict=True)
                },
                default=pl.col("output"),
            )
        )["output"]
        .n_unique()
    )
    assert f"| {total:,} |" in shares and f"(+{distinct - 8} more)" in shares  # the eight most frequent shown
    assert "`psy_support_reply`" not in columns  # free text: no labels


def test_the_card_page_shows_a_hostile_record_as_text(tmp_path: Path, release: Path, catalog: Catalog) -> None:
    from cards.preview import render_preview

    folder = tmp_path / "release"
    shutil.copytree(release, folder)
    path = folder / "data" / "fin_intent" / "train-00000-of-00001.parquet"
    frame = pl.read_parquet(path)
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)"> **my card** was [charged](javascript:x) twice'
    first = (
        frame.filter(pl.col("lang") == "en").sort("id").head(1).with_columns(id=pl.lit("0" * 16), input=pl.lit(hostile))
    )
    pl.concat([first, frame]).write_parquet(path)  # the smallest id: the task's English example
    page = render_preview(render_card(folder, catalog, CONTEXT), "AnyTaskTune")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=" in page
    assert "<script" not in page and "<img src=x" not in page and 'href="javascript' not in page
    assert "<details>" in page and "<table>" in page and page.count("<h3>") == len(catalog.domains)
