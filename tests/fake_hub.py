"""A Hub-compatible server on loopback for the tests: the Hub's write API in memory, on top of the read API of
`publish.hub_server`.

It answers what `HfApi.create_repo`, `upload_folder` (validate-yaml, preupload, LFS batch, PUT upload, commit),
`create_tag` and `list_repo_refs` send, and what `snapshot_download` and `datasets.load_dataset` read. Parquet and
PNG files go through LFS, as on the Hub; the client must use the plain LFS transfer (`HF_HUB_DISABLE_XET=1`), since
this server does not speak Xet. Every request is recorded (method, path, whether it carried the expected token).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from publish.hub_server import _API, HubReadHandler, make_server
from publish.registry import TreeEntry

LFS_SUFFIXES = (".parquet", ".png")


@dataclass
class Commit:
    oid: str
    parent: str | None
    message: str
    files: dict[str, bytes]
    lfs: set[str]  # paths stored as LFS objects


@dataclass
class Repo:
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    authorized: bool
    headers: dict[str, str]
    body: bytes


class MemoryStore:
    """Repos, commits and LFS objects in memory; also the failure switch the tests flip."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.fail_uploads_after: int | None = None  # answer 403 to LFS uploads once this many succeeded
        self.uploads = 0
        self.lock = threading.Lock()

    # -- the read side, as `publish.hub_server` expects it --------------------------------------------------------
    def exists(self, repo_id: str) -> bool:
        return repo_id in self.repos

    def resolve(self, repo_id: str, revision: str) -> str | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return None
        if revision in repo.commits:
            return revision
        return repo.branches.get(revision) or repo.tags.get(revision)

    def refs(self, repo_id: str) -> dict[str, dict[str, str]]:
        repo = self.repos[repo_id]
        return {"branches": dict(repo.branches), "tags": dict(repo.tags)}

    def files(self, repo_id: str, commit: str) -> list[TreeEntry]:
        files = self.repos[repo_id].commits[commit].files
        return [TreeEntry(path, len(data), _blob_id(data)) for path, data in sorted(files.items())]

    def read(self, repo_id: str, commit: str, path: str) -> bytes:
        return self.repos[repo_id].commits[commit].files[path]

    def commits(self, repo_id: str, commit: str) -> list[dict[str, str]]:
        history, at = [], commit
        while at is not None:
            entry = self.repos[repo_id].commits[at]
            history.append({"id": at, "author": "test", "date": "2025-01-01T00:00:00+00:00",
                            "title": entry.message, "message": ""})  # fmt: skip
            at = entry.parent
        return history

    # -- what the tests ask --------------------------------------------------------------------------------------
    def paths_requested(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]


class FakeHubHandler(HubReadHandler):
    store: MemoryStore

    def dispatch(self, route: Any) -> None:
        self._body = None  # one handler serves every request of a keep-alive connection
        body = self.body() if self.command in ("POST", "PUT") else b""
        self._body = body
        authorized = self.headers.get("Authorization") == f"Bearer {self.store.token}"
        with self.store.lock:
            self.store.requests.append(Request(self.command, self.path, authorized, dict(self.headers), body))
        super().dispatch(route)

    def body(self) -> bytes:
        cached = getattr(self, "_body", None)
        return cached if cached is not None else super().body()

    def authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.store.token}":
            return True
        self.send_error_json(401, "Invalid credentials in Authorization header")
        return False

    def route_put(self, path: str, query: dict[str, list[str]]) -> bool:
        if not path.startswith("/lfs-upload/"):
            return False
        oid = path.removeprefix("/lfs-upload/")
        with self.store.lock:
            limit = self.store.fail_uploads_after
            if limit is not None and self.store.uploads >= limit:
                self.send_error_json(403, "upload refused (the test switched uploads off)")
                return True
            self.store.uploads += 1
        data = self.body()
        if hashlib.sha256(data).hexdigest() != oid:
            self.send_error_json(400, "content does not match its sha256")
            return True
        self.store.lfs_objects[oid] = data
        self.send_bytes(b"", headers={"ETag": f'"{oid}"'})
        return True

    def route_post(self, path: str, query: dict[str, list[str]]) -> bool:
        if path == "/api/repos/create":
            self.create_repo(json.loads(self.body()))
            return True
        if path == "/api/validate-yaml":
            self.send_json({"warnings": []})
            return True
        if path.startswith("/datasets/") and path.endswith(".git/info/lfs/objects/batch"):
            self.lfs_batch(path.removeprefix("/datasets/").removesuffix(".git/info/lfs/objects/batch"))
            return True
        match = _API.match(path)
        rest = (match["rest"] or "") if match else ""
        for route, action in (("/preupload/", self.preupload), ("/commit/", self.commit), ("/tag/", self.tag)):
            if match and rest.startswith(route):
                if self.authorized():
                    action(match["repo"], unquote(rest.removeprefix(route)))
                return True
        return super().route_post(path, query)

    def create_repo(self, payload: dict[str, Any]) -> None:
        if not self.authorized():
            return
        repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        url = f"http://{self.headers['Host']}/datasets/{repo_id}"
        if repo_id in self.store.repos:  # the Hub's conflict answer also carries the repo's url
            self.send_json({"error": "You already created this dataset repo", "url": url}, 409)
            return
        repo = Repo()
        initial = Commit(_commit_id("initial", repo_id), None, "initial commit", {".gitattributes": b""}, set())
        repo.commits[initial.oid] = initial
        repo.branches["main"] = initial.oid
        self.store.repos[repo_id] = repo
        self.send_json({"url": url, "name": repo_id})

    def preupload(self, repo_id: str, revision: str) -> None:
        commit = self.commit_of(repo_id, revision)
        if commit is None:
            return
        current = self.store.repos[repo_id].commits[commit].files
        files = []
        for item in json.loads(self.body())["files"]:
            path = item["path"]
            mode = "lfs" if path.endswith(LFS_SUFFIXES) else "regular"
            known = current.get(path)
            oid = None
            if known is not None:
                oid = hashlib.sha256(known).hexdigest() if mode == "lfs" else _blob_id(known)
            files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self.send_json({"files": files, "commitOid": commit})

    def lfs_batch(self, repo_id: str) -> None:
        if not self.authorized():
            return
        request = json.loads(self.body())
        host = self.headers["Host"]
        objects = []
        for obj in request["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.store.lfs_objects:  # already uploaded objects get no action, as on the Hub
                entry["actions"] = {"upload": {"href": f"http://{host}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        self.send_json({"transfer": "basic", "objects": objects})

    def commit(self, repo_id: str, revision: str) -> None:
        parent = self.commit_of(repo_id, revision)
        if parent is None:
            return
        repo = self.store.repos[repo_id]
        files = dict(repo.commits[parent].files)
        lfs = set(repo.commits[parent].lfs)
        header: dict[str, Any] = {}
        for line in filter(None, self.body().split(b"\n")):
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
                lfs.discard(value["path"])
            elif key == "lfsFile":
                if value["oid"] not in self.store.lfs_objects:
                    self.send_error_json(400, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    return
                files[value["path"]] = self.store.lfs_objects[value["oid"]]
                lfs.add(value["path"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
                lfs.discard(value["path"])
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    files.pop(path)
                    lfs.discard(path)
        oid = _commit_id(parent, json.dumps(header), *sorted(f"{p}:{_blob_id(d)}" for p, d in files.items()))
        repo.commits[oid] = Commit(oid, parent, header.get("summary", ""), files, lfs)
        repo.branches[revision] = oid
        host = self.headers["Host"]
        self.send_json({"commitUrl": f"http://{host}/datasets/{repo_id}/commit/{oid}", "commitOid": oid})

    def tag(self, repo_id: str, revision: str) -> None:
        commit = self.commit_of(repo_id, revision)
        if commit is None:
            return
        name = json.loads(self.body())["tag"]
        repo = self.store.repos[repo_id]
        if name in repo.tags:
            self.send_error_json(409, f"Tag {name} already exists")
            return
        repo.tags[name] = commit
        self.send_json({"name": name})

    def resolve_file(self, repo: str, revision: str, path: str) -> None:
        """As on the Hub, an LFS file's HEAD also names its content hash and size in `X-Linked-*` headers."""
        commit = self.store.resolve(repo, revision) if self.store.exists(repo) else None
        if commit and path in self.store.repos[repo].commits[commit].lfs:
            data = self.store.read(repo, commit, path)
            self.send_bytes(
                data,
                headers={
                    "X-Repo-Commit": commit,
                    "X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                    "X-Linked-Size": str(len(data)),
                    "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
                },
            )
            return
        super().resolve_file(repo, revision, path)


def _blob_id(data: bytes) -> str:
    """The git blob id of `data`, which the Hub reports as a file's `oid`."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _commit_id(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


class FakeHub:
    """Start with `with FakeHub(token) as hub:`; `hub.url` is the endpoint, `hub.store` what it holds and saw."""

    def __init__(self, token: str) -> None:
        self.store = MemoryStore(token)
        self.server = make_server(self.store, "127.0.0.1", 0, FakeHubHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
