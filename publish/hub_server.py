"""A read-only Hub-compatible HTTP server over the local registry, for sharing releases with a team.

Colleagues set `HF_ENDPOINT=http://host:port` and call `load_dataset("<namespace>/<name>", config, revision=tag)`
or `snapshot_download(..., repo_type="dataset")` as they would against the Hugging Face Hub. It speaks the part of
the Hub API those calls use: repo and revision info, refs, tree listing, paths-info, and file resolve (GET/HEAD).
It never writes; publishing stays with `anytasktune release`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from publish.registry import LocalRegistry, TreeEntry

_API = re.compile(r"^/api/datasets/(?P<repo>[^/]+/[^/]+)(?P<rest>/.*)?$")
_RESOLVE = re.compile(r"^/datasets/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


class RepoStore(Protocol):
    """What the server reads from: repositories of commits, refs and files."""

    def exists(self, repo_id: str) -> bool: ...
    def resolve(self, repo_id: str, revision: str) -> str | None: ...
    def refs(self, repo_id: str) -> dict[str, dict[str, str]]: ...  # {"branches": {name: commit}, "tags": {...}}
    def files(self, repo_id: str, commit: str) -> list[TreeEntry]: ...
    def read(self, repo_id: str, commit: str, path: str) -> bytes: ...
    def commits(self, repo_id: str, commit: str) -> list[dict[str, str]]: ...  # newest first: id, author, date, …


@dataclass
class RegistryStore:
    """The local registry seen as Hub repositories `<namespace>/<name>`."""

    registry: LocalRegistry
    namespace: str

    def _name(self, repo_id: str) -> str | None:
        namespace, _, name = repo_id.partition("/")
        return name if namespace == self.namespace and self.registry.exists(name) else None

    def exists(self, repo_id: str) -> bool:
        return self._name(repo_id) is not None

    def resolve(self, repo_id: str, revision: str) -> str | None:
        name = self._name(repo_id)
        return self.registry.resolve(name, revision) if name else None

    def refs(self, repo_id: str) -> dict[str, dict[str, str]]:
        name = self._name(repo_id)
        if name is None:
            return {"branches": {}, "tags": {}}
        tags = {tag: self.registry.resolve(name, tag) or "" for tag in self.registry.tags(name)}
        return {"branches": {"main": self.registry.resolve(name, "refs/heads/main") or ""}, "tags": tags}

    def files(self, repo_id: str, commit: str) -> list[TreeEntry]:
        return self.registry.files(self._name(repo_id) or "", commit)

    def read(self, repo_id: str, commit: str, path: str) -> bytes:
        return self.registry.read(self._name(repo_id) or "", commit, path)

    def commits(self, repo_id: str, commit: str) -> list[dict[str, str]]:
        return self.registry.log(self._name(repo_id) or "", commit)


class HubReadHandler(BaseHTTPRequestHandler):
    """Routes of the Hub's read API. Subclasses set `store` and may add write routes in `route_post`."""

    store: RepoStore
    protocol_version = "HTTP/1.1"
    server_version = "AnyTaskTuneHub/1"

    # -- plumbing -------------------------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet by default; the CLI's `serve` turns request logging back on."""

    def send_json(self, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(json.dumps(value).encode(), status, {"Content-Type": "application/json", **(headers or {})})

    def send_bytes(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_json(self, status: int, message: str, error_code: str | None = None) -> None:
        headers = {"X-Error-Message": message, **({"X-Error-Code": error_code} if error_code else {})}
        self.send_json({"error": message}, status, headers)

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- dispatch -------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.dispatch(self.route_get)

    def do_HEAD(self) -> None:
        self.dispatch(self.route_get)

    def do_POST(self) -> None:
        self.dispatch(self.route_post)

    def do_PUT(self) -> None:
        self.dispatch(self.route_put)

    def dispatch(self, route: Callable[[str, dict[str, list[str]]], bool]) -> None:
        parts = urlsplit(self.path)
        if not route(parts.path, parse_qs(parts.query)):
            self.send_error_json(404, f"no route for {self.command} {parts.path}")

    def route_put(self, path: str, query: dict[str, list[str]]) -> bool:
        return False

    def route_post(self, path: str, query: dict[str, list[str]]) -> bool:
        match = _API.match(path)
        if match and (rest := match["rest"] or "").startswith("/paths-info/"):
            self.paths_info(match["repo"], unquote(rest.removeprefix("/paths-info/")))
            return True
        return False

    def route_get(self, path: str, query: dict[str, list[str]]) -> bool:
        if match := _RESOLVE.match(path):
            self.resolve_file(match["repo"], unquote(match["rev"]), unquote(match["path"]))
            return True
        match = _API.match(path)
        if not match:
            return False
        repo, rest = match["repo"], match["rest"] or ""
        if rest in ("", "/") or rest.startswith("/revision/"):
            self.repo_info(repo, unquote(rest.removeprefix("/revision/")) if rest.startswith("/revision/") else "main")
        elif rest == "/refs":
            self.list_refs(repo)
        elif rest.startswith("/commits/"):
            self.list_commits(repo, unquote(rest.removeprefix("/commits/")))
        elif rest.startswith("/tree/"):
            revision, _, folder = rest.removeprefix("/tree/").partition("/")
            self.tree(
                repo, unquote(revision), unquote(folder).strip("/"), query.get("recursive", [""])[0].lower() == "true"
            )
        else:
            return False
        return True

    # -- the Hub's read API ---------------------------------------------------------------------------------------
    def commit_of(self, repo: str, revision: str) -> str | None:
        """The commit of `revision`, or None after answering 404 the way the Hub does."""
        if not self.store.exists(repo):
            self.send_error_json(404, f"Repository {repo} not found", "RepoNotFound")
            return None
        commit = self.store.resolve(repo, revision)
        if commit is None:
            self.send_error_json(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def repo_info(self, repo: str, revision: str) -> None:
        if commit := self.commit_of(repo, revision):
            siblings = [{"rfilename": e.path, "size": e.size} for e in self.store.files(repo, commit)]
            self.send_json(
                {
                    "id": repo,
                    "_id": repo,
                    "sha": commit,
                    "private": False,
                    "disabled": False,
                    "gated": False,
                    "siblings": siblings,
                    "tags": [],
                    "cardData": {},
                }
            )

    def list_refs(self, repo: str) -> None:
        if not self.store.exists(repo):
            self.send_error_json(404, f"Repository {repo} not found", "RepoNotFound")
            return
        refs = self.store.refs(repo)

        def listing(kind: str, prefix: str) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"{prefix}{n}", "targetCommit": c} for n, c in sorted(refs[kind].items())]

        self.send_json(
            {"branches": listing("branches", "refs/heads/"), "tags": listing("tags", "refs/tags/"), "converts": []}
        )

    def list_commits(self, repo: str, revision: str) -> None:
        """The history of a revision, newest first, in the Hub's shape (one page: no `Link` header)."""
        if commit := self.commit_of(repo, revision):
            self.send_json(
                [
                    {
                        "id": c["id"],
                        "title": c["title"],
                        "message": c["message"],
                        "authors": [{"user": c["author"]}],
                        "date": hub_date(c["date"]),
                    }
                    for c in self.store.commits(repo, commit)
                ]
            )

    def tree(self, repo: str, revision: str, folder: str, recursive: bool) -> None:
        commit = self.commit_of(repo, revision)
        if commit is None:
            return
        entries = self.store.files(repo, commit)
        prefix = f"{folder}/" if folder else ""
        inside = [e for e in entries if e.path.startswith(prefix)]
        if folder and not inside:
            self.send_error_json(404, f"{folder} not found at {revision}", "EntryNotFound")
            return
        listed: list[dict[str, Any]] = []
        folders: set[str] = set()
        for entry in inside:
            relative = entry.path[len(prefix) :]
            parts = relative.split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                listed.append(file_json(entry))
        listed += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": p} for p in sorted(folders)]
        self.send_json(sorted(listed, key=lambda item: item["path"]))

    def paths_info(self, repo: str, revision: str) -> None:
        form = parse_qs(self.body().decode())
        commit = self.commit_of(repo, revision)
        if commit is None:
            return
        entries = {e.path: e for e in self.store.files(repo, commit)}
        found = []
        for path in (p.strip("/") for p in form.get("paths", [])):
            if path in entries:
                found.append(file_json(entries[path]))
            elif any(p.startswith(f"{path}/") for p in entries):
                found.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": path})
        self.send_json(found)

    def resolve_file(self, repo: str, revision: str, path: str) -> None:
        commit = self.commit_of(repo, revision)
        if commit is None:
            return
        entry = next((e for e in self.store.files(repo, commit) if e.path == path), None)
        if entry is None:
            self.send_error_json(404, f"{path} not found at {revision}", "EntryNotFound")
            return
        body = self.store.read(repo, commit, path)
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{entry.blob}"',
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        wanted = self.headers.get("Range")
        if wanted is None:
            self.send_bytes(body, headers=headers)
            return
        span = byte_range(wanted, len(body))
        if span is None:  # unsatisfiable or malformed: the Hub's (and RFC 9110's) 416 with the full length
            self.send_bytes(b"", 416, {**headers, "Content-Range": f"bytes */{len(body)}"})
            return
        first, last = span
        self.send_bytes(body[first : last + 1], 206, {**headers, "Content-Range": f"bytes {first}-{last}/{len(body)}"})


def hub_date(iso: str) -> str:
    """An ISO 8601 time as the Hub writes it (UTC, milliseconds, `Z`), which huggingface_hub parses strictly."""
    moment = dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The (first, last) bytes a single `Range: bytes=…` asks for, clipped to the file; None when it cannot be met.
    `bytes=a-b`, `bytes=a-` (to the end) and `bytes=-n` (the last n); several ranges are not served."""
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    start, end = match.groups()
    if start == "":
        length = int(end)
        return (max(0, size - length), size - 1) if length > 0 and size > 0 else None
    first, last = int(start), int(end) if end else size - 1
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)


def file_json(entry: TreeEntry) -> dict[str, Any]:
    return {"type": "file", "oid": entry.blob, "size": entry.size, "path": entry.path}


def make_server(
    store: RepoStore, host: str, port: int, handler: type[HubReadHandler] = HubReadHandler
) -> ThreadingHTTPServer:
    """A threaded server answering with `handler` over `store` (port 0 picks a free one)."""
    bound = type("BoundHubHandler", (handler,), {"store": store})
    server = ThreadingHTTPServer((host, port), bound)
    server.daemon_threads = True
    return server
