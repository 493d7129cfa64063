"""Releases into the local git registry, pulls out of it, and sharing it through the Hub-compatible server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from catalog import Catalog
from catalog.settings import Settings
from cli.main import app
from pipeline.build import build
from publish.hub_server import RegistryStore, make_server
from publish.registry import LocalRegistry
from publish.release import Destination, ReleaseError, pull, release
from tests.conftest import DATA, sample_seeds
from validation.release_data import read_release

HELD_BACK = ("med_triage", 4)  # v0.1.0 is built without the last 4 seed lines of this task; v0.2.0 adds them

# Run in a child process: `datasets` and `huggingface_hub` read HF_ENDPOINT and offline mode once, at import.
LOAD_SCRIPT = """
import json, sys
from datasets import load_dataset
repo, pairs = sys.argv[1], sys.argv[2:]
answers = []
for config, revision in zip(pairs[::2], pairs[1::2]):
    loaded = load_dataset(repo, config, revision=revision)
    answers.append({split: sorted(loaded[split]["id"]) for split in loaded})
print(json.dumps(answers))
"""


def make_data_dir(root: Path, hold_back: bool) -> Path:
    """A scratch data folder with the real tasks and seeds, optionally minus the held-back seed lines."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(DATA / "tasks", root / "tasks")
    shutil.copytree(sample_seeds(), root / "seeds")
    if hold_back:
        task, count = HELD_BACK
        path = root / "seeds" / f"{task}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(lines[:-count]) + "\n", encoding="utf-8")
    return root


def built(root: Path, catalog: Catalog, hold_back: bool) -> Settings:
    settings = Settings(make_data_dir(root, hold_back))
    build(catalog, settings)
    return settings


def hub_env(tmp: Path, endpoint: str, **extra: str) -> dict[str, str]:
    """The environment of a child process that talks to a Hub-compatible server on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ANYTASKTUNE_"))}
    return {
        **env,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp / "hf-home"),
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        **extra,
    }


def load_ids(env: dict[str, str], repo: str, *loads: tuple[str, str]) -> list[dict[str, list[str]]]:
    """`load_dataset(repo, config, revision=...)` in one child process per call: split → sorted ids, per load."""
    pairs = [item for load in loads for item in load]
    done = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, repo, *pairs], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def expected_ids(records: pl.DataFrame, task: str | None = None) -> dict[str, list[str]]:
    part = records if task is None else records.filter(pl.col("task") == task)
    return {s: sorted(part.filter(pl.col("split") == s)["id"].to_list()) for s in ("train", "validation", "test")}


@pytest.fixture(scope="module")
def registry_releases(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> dict:
    """v0.1.0 without the held-back seeds, then v0.2.0 with them, both in one local registry."""
    tmp = tmp_path_factory.mktemp("local")
    destination = Destination(LocalRegistry(tmp / "registry"))
    settings = built(tmp / "data", catalog, hold_back=True)
    first_records = read_release(settings.build_dir / "anytasktune", catalog)
    first = release(catalog, settings, destination, name="anytasktune", version="v0.1.0", date="2025-01-01")
    settings = built(tmp / "data", catalog, hold_back=False)
    second_records = read_release(settings.build_dir / "anytasktune", catalog)
    second = release(catalog, settings, destination, name="anytasktune", version="v0.2.0", date="2025-02-01")
    return {
        "tmp": tmp,
        "settings": settings,
        "destination": destination,
        "results": (first, second),
        "records": (first_records, second_records),
    }


def test_each_release_is_a_tagged_commit_on_main(registry_releases: dict) -> None:
    registry: LocalRegistry = registry_releases["destination"].registry
    first, second = registry_releases["results"]
    assert registry.tags("anytasktune") == ["v0.1.0", "v0.2.0"]
    assert registry.resolve("anytasktune", "v0.1.0") == first.commit
    assert registry.resolve("anytasktune", "main") == second.commit
    log = subprocess.run(
        ["git", "--git-dir", str(registry.repo("anytasktune")), "log", "--format=%H %s", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert log == [f"{second.commit} Release anytasktune v0.2.0", f"{first.commit} Release anytasktune v0.1.0"]


def test_pulled_releases_load_with_their_own_records(registry_releases: dict, catalog: Catalog) -> None:
    from datasets import load_dataset

    tmp, destination = registry_releases["tmp"], registry_releases["destination"]
    for version, records in zip(("v0.1.0", "v0.2.0"), registry_releases["records"], strict=True):
        folder = pull(destination, name="anytasktune", version=version, dest=tmp / "pulled" / version)
        loaded = load_dataset(str(folder), "med_triage")
        assert {s: sorted(loaded[s]["id"]) for s in loaded} == expected_ids(records, "med_triage")
        for name in ("README.md", "dataset_info.json", "changelog.json", "plots/records_per_task.png"):
            assert (folder / name).is_file(), name
    first, second = registry_releases["records"]
    assert second.height - first.height == HELD_BACK[1]


def test_second_changelog_names_the_records_added(registry_releases: dict) -> None:
    first, second = registry_releases["results"]
    assert (first.previous, first.added, first.removed) == (None, registry_releases["records"][0].height, 0)
    assert (second.previous, second.added, second.removed) == ("v0.1.0", HELD_BACK[1], 0)
    card = (second.staged / "README.md").read_text(encoding="utf-8")
    assert f"**v0.2.0** (2025-02-01), against v0.1.0: **+{HELD_BACK[1]}** records added" in card
    task_row = next(line for line in card.splitlines() if line.startswith(f"| `{HELD_BACK[0]}` | +"))
    assert task_row.startswith(f"| `{HELD_BACK[0]}` | +{HELD_BACK[1]} | −0 |")
    assert "- **v0.1.0** (2025-01-01)" in card  # the history carried over from the previous release


def test_refuses_an_existing_smaller_or_malformed_version(registry_releases: dict, catalog: Catalog) -> None:
    settings, destination = registry_releases["settings"], registry_releases["destination"]
    for version, reason in (("v0.2.0", "already released"), ("v0.1.5", "not greater"), ("2.0", "vMAJOR.MINOR.PATCH")):
        with pytest.raises(ReleaseError, match=reason):
            release(catalog, settings, destination, name="anytasktune", version=version)
    assert destination.registry.tags("anytasktune") == ["v0.1.0", "v0.2.0"]


def test_refuses_an_invalid_build_and_names_the_record(tmp_path: Path, catalog: Catalog) -> None:
    settings = built(tmp_path / "data", catalog, hold_back=False)
    path = settings.build_dir / "anytasktune" / "data" / "fin_intent" / "train-00000-of-00001.parquet"
    frame = pl.read_parquet(path)
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("no such intent")).otherwise("output").alias("output")
    ).write_parquet(path)
    destination = Destination(LocalRegistry(tmp_path / "registry"))
    with pytest.raises(ReleaseError, match="not valid") as refused:
        release(catalog, settings, destination, name="anytasktune", version="v1.0.0")
    assert [(p.line, p.field) for p in refused.value.problems] == [(3, "output")]
    assert "fin_intent/train-00000-of-00001.parquet" in refused.value.problems[0].file
    assert destination.registry.tags("anytasktune") == []


@pytest.fixture
def shared(registry_releases: dict) -> Iterator[str]:
    """The registry served read-only on loopback, as `anytasktune serve` does."""
    store = RegistryStore(registry_releases["destination"].registry, "acme")
    server = make_server(store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_colleague_loads_each_revision_through_the_shared_endpoint(shared: str, registry_releases: dict) -> None:
    env = hub_env(registry_releases["tmp"] / "colleague", shared)
    loaded = load_ids(env, "acme/anytasktune", ("medical", "v0.1.0"), ("medical", "v0.2.0"))
    assert loaded == [expected_ids(r.filter(pl.col("domain") == "medical")) for r in registry_releases["records"]]


def test_cli_release_and_pull_on_the_defaults(
    tmp_path: Path, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = built(tmp_path / "data", catalog, hold_back=False)
    monkeypatch.setenv("ANYTASKTUNE_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("ANYTASKTUNE_REGISTRY", raising=False)
    monkeypatch.delenv("ANYTASKTUNE_HUB_REPO", raising=False)
    monkeypatch.chdir(tmp_path)  # the default registry is the data folder's, wherever the command runs
    runner = CliRunner()
    done = runner.invoke(app, ["release", "--version", "v1.0.0"])
    assert done.exit_code == 0, done.output
    assert "released anytasktune v1.0.0" in done.output
    assert LocalRegistry(settings.data_dir / "registry").tags("anytasktune") == ["v1.0.0"]
    assert not (tmp_path / "datasets").exists()
    again = runner.invoke(app, ["release", "--version", "v1.0.0"])
    assert again.exit_code == 1 and "already released" in again.output
    pulled = runner.invoke(app, ["pull", "--version", "v1.0.0"])
    assert pulled.exit_code == 0, pulled.output
    folder = settings.data_dir / "pulled" / "anytasktune-v1.0.0"
    assert (
        read_release(folder, catalog)
        .sort("id")
        .equals(read_release(settings.build_dir / "anytasktune", catalog).sort("id"))
    )
    missing = runner.invoke(app, ["pull", "--version", "v9.9.9"])
    assert missing.exit_code == 1 and "no release v9.9.9" in missing.output


CLIENT_SCRIPT = """
import json, sys
from huggingface_hub import HfApi, HfFileSystem
repo, path = sys.argv[1], sys.argv[2]
api = HfApi()
history = {rev: [(c.commit_id, c.title, c.authors) for c in api.list_repo_commits(repo, repo_type="dataset", revision=rev)]
           for rev in ("main", "v0.1.0")}
fs = HfFileSystem()
with fs.open(f"datasets/{repo}@v0.2.0/{path}", "rb", block_size=16) as handle:  # reads by Range requests
    handle.seek(10)
    middle = handle.read(10)
print(json.dumps({"history": history, "middle": middle.decode("latin-1")}))
"""


def test_the_shared_endpoint_lists_commits_and_serves_byte_ranges_as_the_hub_does(
    shared: str, registry_releases: dict
) -> None:
    first, second = registry_releases["results"]
    env = hub_env(registry_releases["tmp"] / "client", shared)
    done = subprocess.run([sys.executable, "-c", CLIENT_SCRIPT, "acme/anytasktune", "README.md"], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert [c[0] for c in answer["history"]["main"]] == [second.commit, first.commit]
    assert answer["history"]["main"][0][1] == "Release anytasktune v0.2.0"
    assert [c[0] for c in answer["history"]["v0.1.0"]] == [first.commit]
    url = f"{shared}/datasets/acme/anytasktune/resolve/v0.2.0/README.md"
    whole = urllib.request.urlopen(url).read()
    assert answer["middle"].encode("latin-1") == whole[10:20]
    size = len(whole)
    for wanted, expected, span in (
        ("bytes=10-19", whole[10:20], f"10-19/{size}"),
        ("bytes=-5", whole[-5:], f"{size - 5}-{size - 1}/{size}"),
        ("bytes=100-", whole[100:], f"100-{size - 1}/{size}"),
        (f"bytes=10-{10 * size}", whole[10:], f"10-{size - 1}/{size}"),
    ):
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": wanted})) as response:
            assert (response.status, response.read()) == (206, expected), wanted
            assert response.headers["Content-Range"] == f"bytes {span}"
    for unmet in (f"bytes={size}-", "bytes=5-2", "bytes=-0", "lines=1-2"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, headers={"Range": unmet}))
        assert refused.value.code == 416 and refused.value.headers["Content-Range"] == f"bytes */{size}", unmet
