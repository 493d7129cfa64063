"""Orchestration: the build jobs and the command line behind the make targets. Nothing imports this package."""
