"""Checks of records against the catalog: the pandera record schema, per-task outputs, languages, reports."""
