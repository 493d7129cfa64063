"""Checks of records against the catalog: the pandera record schema, per-task outputs, languages, reports, and each
task's metric (shared by evaluation, the review app's blind mode and the agreement table)."""
