"""Releases to a Hub-compatible server on loopback through the real `huggingface_hub` client.

`anytasktune` runs in this process (the Typer app, as the shell runs it); `load_dataset` runs in a child process, since
`datasets` reads HF_ENDPOINT once, at import.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub.constants
import polars as pl
import pytest
from typer.testing import CliRunner

from catalog import Catalog
from cli.main import app
from tests.fake_hub import FakeHub
from tests.test_release_local import HELD_BACK, built, expected_ids, hub_env, load_ids
from validation.release_data import read_release

TOKEN = "hf_TestOnlySecretToken0123456789"
REPO = "acme/anytasktune"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def cli(env: dict[str, str], *args: str) -> Run:
    """`anytasktune ARGS` with `env` on top of this process's environment (HF_TOKEN removed unless given)."""
    overrides: dict[str, str | None] = {"HF_TOKEN": None, "ANYTASKTUNE_HUB_REPO": None, **env}
    done = CliRunner().invoke(app, list(args), env=overrides)
    return Run(done.exit_code, done.stdout, done.stderr)


class LogCapture(logging.Handler):
    """Every log line of every logger, down to DEBUG, while active (the client logs its requests at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __enter__(self) -> LogCapture:
        root, hub = logging.getLogger(), logging.getLogger("huggingface_hub")
        self.saved = root.level, hub.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        hub.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self.saved[0])
        logging.getLogger("huggingface_hub").setLevel(self.saved[1])


@pytest.fixture(scope="module", autouse=True)
def hub_client_online() -> Iterator[None]:
    """The suite runs offline (conftest); these tests reach the loopback Hub, with the plain LFS transfer."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        patch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
        yield


@pytest.fixture(scope="module")
def hub_releases(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog):
    """v0.1.0, then v0.2.0 with more records, published by `anytasktune release --repo` to the fake Hub."""
    tmp = tmp_path_factory.mktemp("hub")
    logs = LogCapture()
    with FakeHub(TOKEN) as hub, logs:
        runs, records = [], []
        for version, hold_back in (("v0.1.0", True), ("v0.2.0", False)):
            settings = built(tmp / "data", catalog, hold_back)
            records.append(read_release(settings.build_dir / "anytasktune", catalog))
            env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "ANYTASKTUNE_DATA_DIR": str(settings.data_dir)}
            runs.append(cli(env, "release", "--version", version, "--repo", REPO))
            assert runs[-1].returncode == 0, runs[-1].stderr[-3000:]
        yield {
            "hub": hub,
            "tmp": tmp,
            "runs": runs,
            "records": records,
            "env": env,
            "child_env": hub_env(tmp, hub.url),
            "settings": settings,
            "logs": logs.lines,
        }


def test_publish_speaks_the_hub_protocol_with_the_token(hub_releases: dict) -> None:
    store = hub_releases["hub"].store
    calls = [(r.method, r.path.split("?")[0]) for r in store.requests]
    repo_api = f"/api/datasets/{REPO}"
    for expected in (
        ("POST", "/api/repos/create"),
        ("POST", f"{repo_api}/preupload/main"),
        ("POST", f"/datasets/{REPO}.git/info/lfs/objects/batch"),
        ("POST", f"{repo_api}/commit/main"),
        ("POST", f"{repo_api}/tag/" + store.repos[REPO].tags["v0.1.0"]),
        ("POST", f"{repo_api}/tag/" + store.repos[REPO].tags["v0.2.0"]),
    ):
        assert expected in calls, expected
    writes = [r for r in store.requests if r.method == "POST" and r.path.startswith(("/api/repos", repo_api))]
    assert writes and all(r.authorized for r in writes)
    assert sum(1 for m, _ in calls if m == "PUT") > 0  # Parquet and PNG went through LFS
    repo = store.repos[REPO]
    assert set(repo.tags) == {"v0.1.0", "v0.2.0"} and repo.branches["main"] == repo.tags["v0.2.0"]


def test_hub_revisions_hold_exactly_what_was_built(hub_releases: dict, catalog: Catalog) -> None:
    store = hub_releases["hub"].store
    settings = hub_releases["settings"]
    built_files = {
        p.relative_to(settings.build_dir / "anytasktune").as_posix(): p.read_bytes()
        for p in (settings.build_dir / "anytasktune" / "data").rglob("*.parquet")
    }
    commit = store.repos[REPO].commits[store.repos[REPO].tags["v0.2.0"]]
    assert {p: d for p, d in commit.files.items() if p.startswith("data/")} == built_files
    assert {"README.md", "dataset_info.json", "changelog.json", "plots/lengths.png", ".gitattributes"} <= set(
        commit.files
    )


def test_each_revision_loads_with_its_own_counts(hub_releases: dict) -> None:
    loaded = load_ids(hub_releases["child_env"], REPO, (HELD_BACK[0], "v0.1.0"), (HELD_BACK[0], "v0.2.0"))
    assert loaded == [expected_ids(records, HELD_BACK[0]) for records in hub_releases["records"]]
    second = hub_releases["runs"][1].stdout
    assert f"+{HELD_BACK[1]} / -0 records since v0.1.0" in second


def test_pull_downloads_a_revision_that_load_dataset_reads(hub_releases: dict, catalog: Catalog) -> None:
    from datasets import load_dataset

    dest = hub_releases["tmp"] / "pulled"
    done = cli(hub_releases["env"], "pull", "--version", "v0.1.0", "--repo", REPO, "--dest", str(dest))
    assert done.returncode == 0, done.stderr[-3000:]
    first = hub_releases["records"][0]
    assert read_release(dest, catalog).sort("id").equals(first.sort("id"))
    card = (dest / "README.md").read_text(encoding="utf-8")
    assert 'load_dataset("acme/anytasktune", "con_aspect_scoring", revision="v0.1.0")' in card
    loaded = load_dataset(str(dest), "finance")
    assert sorted(loaded["test"]["id"]) == expected_ids(first.filter(pl.col("domain") == "finance"))["test"]


def test_the_token_appears_in_no_log_card_or_file(hub_releases: dict) -> None:
    for run in hub_releases["runs"]:
        assert TOKEN not in run.stdout + run.stderr
    assert any("/preupload/" in line for line in hub_releases["logs"])  # the client's request log was captured
    assert not [line for line in hub_releases["logs"] if TOKEN in line]
    store = hub_releases["hub"].store
    for commit in store.repos[REPO].commits.values():
        for path, data in commit.files.items():
            assert TOKEN.encode() not in data, path
    for folder in (hub_releases["settings"].build_dir, hub_releases["tmp"] / "pulled"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path
    bodies = [r for r in store.requests if TOKEN.encode() in r.body]
    assert bodies == []  # sent in the Authorization header only


def test_release_without_a_token_is_refused_before_any_upload(hub_releases: dict, tmp_path: Path) -> None:
    settings = hub_releases["settings"]
    with FakeHub(TOKEN) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path), "ANYTASKTUNE_DATA_DIR": str(settings.data_dir)}
        done = cli(env, "release", "--version", "v1.0.0", "--repo", REPO)
        assert done.returncode == 1
        assert "needs a token: set HF_TOKEN" in done.stderr
        assert hub.store.paths_requested("POST") == []


def test_an_upload_failing_half_way_leaves_no_tag_and_can_be_retried(
    hub_releases: dict, tmp_path: Path, catalog: Catalog
) -> None:
    settings = hub_releases["settings"]
    with FakeHub(TOKEN) as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "ANYTASKTUNE_DATA_DIR": str(settings.data_dir)}
        hub.store.fail_uploads_after = 5
        failed = cli(env, "release", "--version", "v1.0.0", "--repo", REPO)
        assert failed.returncode == 1
        assert "publishing acme/anytasktune v1.0.0 failed" in failed.stderr and TOKEN not in failed.stderr
        assert hub.store.repos[REPO].tags == {}
        assert not any("/commit/" in p for p in hub.store.paths_requested("POST"))
        uploaded_before = len(hub.store.lfs_objects)
        assert uploaded_before == 5

        hub.store.fail_uploads_after = None
        hub.store.requests.clear()
        retried = cli(env, "release", "--version", "v1.0.0", "--repo", REPO)
        assert retried.returncode == 0, retried.stderr[-3000:]
        assert set(hub.store.repos[REPO].tags) == {"v1.0.0"}
        puts = hub.store.paths_requested("PUT")
        assert len(puts) == len(hub.store.lfs_objects) - uploaded_before  # only what was missing is sent again
        records = read_release(settings.build_dir / "anytasktune", catalog)
        assert load_ids(hub_env(tmp_path, hub.url), REPO, ("hr_jd_match", "v1.0.0")) == [
            expected_ids(records, "hr_jd_match")
        ]


TRAINING_READ_SCRIPT = """
import json, sys
from catalog import load_catalog
from training.data import ReleaseSource, load_split, resolve_release
catalog = load_catalog()
specs = [catalog.get(sys.argv[2])]
folder = resolve_release(ReleaseSource(sys.argv[1], revision=sys.argv[3]), specs)
print(json.dumps({split: sorted(load_split(folder, specs, split)["id"].to_list()) for split in ("train", "test")}))
"""


def test_training_reads_a_hub_release_at_a_revision(hub_releases: dict) -> None:
    """`anytasktune train --release org/name --revision vX` sees exactly that revision's records of its tasks."""
    task, _ = HELD_BACK
    for version, records in zip(("v0.1.0", "v0.2.0"), hub_releases["records"], strict=True):
        done = subprocess.run(
            [sys.executable, "-c", TRAINING_READ_SCRIPT, REPO, task, version],
            env=hub_releases["child_env"], cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        expected = expected_ids(records, task)
        assert json.loads(done.stdout.strip().splitlines()[-1]) == {
            "train": expected["train"],
            "test": expected["test"],
        }
