"""Publish to and pull from the Hugging Face Hub, or any Hub-compatible endpoint (`HF_ENDPOINT`).

The token is handed to `HfApi` and never printed: messages built here name the repository and the endpoint only,
and errors from the client pass through `redact` before they are shown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError

REPO_VARIABLE = "ANYTASKTUNE_HUB_REPO"
REPO_TYPE = "dataset"


class HubError(RuntimeError):
    """A Hub call failed; the message never holds the token."""


@dataclass(frozen=True)
class HubTarget:
    repo_id: str
    token: str | None
    endpoint: str

    @classmethod
    def from_env(cls, repo_id: str, token: str | None = None) -> HubTarget:
        """The repo with the token from `HF_TOKEN` (or the one `hf auth login` saved) and `HF_ENDPOINT`."""
        from huggingface_hub import constants, get_token

        endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
        return cls(repo_id, token or get_token(), endpoint.rstrip("/"))

    def api(self) -> HfApi:
        return HfApi(endpoint=self.endpoint, token=self.token or False)

    def redact(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def hub_tags(target: HubTarget) -> list[str]:
    """The repo's tags; none when the repo does not exist yet."""
    try:
        refs = target.api().list_repo_refs(target.repo_id, repo_type=REPO_TYPE)
    except RepositoryNotFoundError:
        return []
    return [tag.name for tag in refs.tags]


def publish_to_hub(target: HubTarget, folder: Path, version: str, message: str) -> str:
    """Upload `folder` as one commit (removing files the release no longer has), then tag that commit.

    An upload that fails half-way raises before any tag exists; running it again re-uses what was uploaded.
    """
    if not target.token:
        raise HubError(f"publishing to {target.repo_id} needs a token: set HF_TOKEN or run `hf auth login`")
    api = target.api()
    try:
        api.create_repo(target.repo_id, repo_type=REPO_TYPE, exist_ok=True)
        commit = api.upload_folder(
            repo_id=target.repo_id,
            repo_type=REPO_TYPE,
            folder_path=folder,
            commit_message=message,
            delete_patterns="*",
        )
        api.create_tag(target.repo_id, tag=version, revision=commit.oid, tag_message=message, repo_type=REPO_TYPE)
    except Exception as err:  # the client raises many kinds; all are reported the same way, token removed
        raise HubError(
            target.redact(f"{target.endpoint}: publishing {target.repo_id} {version} failed: {err}")
        ) from None
    return commit.oid


def pull_from_hub(target: HubTarget, version: str, dest: Path, allow: list[str] | None = None) -> Path:
    """Download the files of `version` into `dest`."""
    try:
        snapshot_download(
            target.repo_id,
            repo_type=REPO_TYPE,
            revision=version,
            local_dir=dest,
            endpoint=target.endpoint,
            token=target.token or False,
            allow_patterns=allow,
        )
    except Exception as err:  # as above
        raise HubError(target.redact(f"{target.endpoint}: pulling {target.repo_id} {version} failed: {err}")) from None
    cache = dest / ".cache"  # snapshot_download's bookkeeping for local_dir, not part of the release
    if cache.exists():
        import shutil

        shutil.rmtree(cache)
    return dest
