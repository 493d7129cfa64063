"""The local release registry: one bare git repository per dataset, a commit per release, tagged with its version.

Plain git, so a team can also clone, fetch or mirror it with the tools it already has. Commits are made with git
plumbing and a private index file: the release folder is the work tree, and nothing outside it is touched.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from catalog.settings import Settings

REGISTRY_VARIABLE = "ANYTASKTUNE_REGISTRY"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "AnyTaskTune release",
    "GIT_AUTHOR_EMAIL": "release@anytasktune.invalid",
    "GIT_COMMITTER_NAME": "AnyTaskTune release",
    "GIT_COMMITTER_EMAIL": "release@anytasktune.invalid",
}


class RegistryError(RuntimeError):
    """A registry operation failed; the message names the repository and what git said."""


@dataclass(frozen=True)
class TreeEntry:
    path: str
    size: int
    blob: str  # the git blob id, which the Hub API calls `oid`


def registry_root() -> Path:
    """`ANYTASKTUNE_REGISTRY`, default `registry/` in the data folder (`datasets/registry` here): a team's folder
    keeps its own releases."""
    return Path(os.environ.get(REGISTRY_VARIABLE) or Settings.from_env().data_dir / "registry")


class LocalRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def repo(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def exists(self, name: str) -> bool:
        return (self.repo(name) / "HEAD").exists()

    def names(self) -> list[str]:
        return sorted(p.name.removesuffix(".git") for p in self.root.glob("*.git") if (p / "HEAD").exists())

    def tags(self, name: str) -> list[str]:
        if not self.exists(name):
            return []
        return self._git(name, "tag", "--list").split()

    def resolve(self, name: str, revision: str) -> str | None:
        """The commit a branch, tag or commit id points to; None if there is no such revision."""
        if not self.exists(name):
            return None
        done = self._run(name, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", check=False)
        return done.stdout.strip() or None

    def files(self, name: str, commit: str) -> list[TreeEntry]:
        """Every file of a commit, with its size and blob id."""
        out = self._git(name, "ls-tree", "-r", "-l", "-z", commit)
        entries = []
        for item in filter(None, out.split("\0")):
            meta, path = item.split("\t", 1)
            _, kind, blob, size = meta.split()
            if kind == "blob":
                entries.append(TreeEntry(path, int(size), blob))
        return entries

    def log(self, name: str, commit: str) -> list[dict[str, str]]:
        """The commits reachable from `commit`, newest first: id, author, ISO date, title and message."""
        out = self._git(name, "log", "--format=%H%x1f%an%x1f%aI%x1f%s%x1f%b%x1e", commit)
        fields = ("id", "author", "date", "title", "message")
        return [
            dict(zip(fields, item.strip("\n").split("\x1f"), strict=True)) for item in out.split("\x1e") if item.strip()
        ]

    def read(self, name: str, commit: str, path: str) -> bytes:
        return self._run(name, "cat-file", "blob", f"{commit}:{path}", text=False).stdout

    def publish(self, name: str, folder: Path, version: str, message: str) -> str:
        """Commit `folder` as it is (files added, changed and removed) on `main`, then tag it; returns the commit.

        The tag comes last: a failure before it leaves no tag, so the same version can be released again.
        """
        if not self.exists(name):
            self.repo(name).mkdir(parents=True, exist_ok=True)
            self._run(name, "init", "--bare", "--quiet", "--initial-branch=main")
        with tempfile.TemporaryDirectory() as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self._run(name, "--work-tree", str(folder), "add", "--all", "--force", ".", env=env)
            tree = self._git(name, "write-tree", env=env).strip()
        parent = self.resolve(name, "refs/heads/main")
        commit = self._git(name, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message).strip()
        self._run(name, "update-ref", "refs/heads/main", commit, *([parent] if parent else []))
        self._run(name, "tag", "--annotate", version, "-m", message, commit)
        return commit

    def export(self, name: str, revision: str, dest: Path) -> None:
        """Write the files of `revision` into `dest` (created; must not exist)."""
        archive = self._run(name, "archive", "--format=tar", revision, text=False).stdout
        dest.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")

    def _git(self, name: str, *args: str, env: dict[str, str] | None = None) -> str:
        return self._run(name, *args, env=env).stdout

    def _run(
        self, name: str, *args: str, env: dict[str, str] | None = None, check: bool = True, text: bool = True
    ) -> subprocess.CompletedProcess:
        if shutil.which("git") is None:
            raise RegistryError("the local registry needs git on PATH")
        command = ["git", "--git-dir", str(self.repo(name)), *args]
        done = subprocess.run(
            command, capture_output=True, text=text, env={**os.environ, **_IDENTITY, **(env or {})}, check=False
        )
        if check and done.returncode != 0:
            stderr = done.stderr if text else done.stderr.decode(errors="replace")
            raise RegistryError(f"{self.repo(name)}: git {args[0]} failed: {stderr.strip()}")
        return done
