"""Release versions: `vMAJOR.MINOR.PATCH` tags, and the rule that a new one must be greater than every earlier one."""

from __future__ import annotations

import re

VERSION = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


class VersionError(ValueError):
    """The version is malformed, already released, or not greater than the last release."""


def parse_version(text: str) -> tuple[int, int, int]:
    match = VERSION.match(text)
    if not match:
        raise VersionError(f"version {text!r} is not of the form vMAJOR.MINOR.PATCH (e.g. v1.0.0)")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def released_versions(tags: list[str]) -> list[str]:
    """The tags that are versions, oldest first (other tags are ignored)."""
    return sorted((t for t in tags if VERSION.match(t)), key=parse_version)


def check_new_version(version: str, tags: list[str]) -> str | None:
    """Refuse a version that exists or is not greater than the last; returns the last version (None if first)."""
    parse_version(version)
    if version in tags:
        raise VersionError(f"version {version} is already released: choose a greater one")
    earlier = released_versions(tags)
    last = earlier[-1] if earlier else None
    if last is not None and parse_version(version) <= parse_version(last):
        raise VersionError(f"version {version} is not greater than the last release, {last}")
    return last
