"""Releases: the local git registry, the Hub, the Hub-compatible server, versions and the checks before publishing."""
