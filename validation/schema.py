"""The pandera (Polars backend) schema of a record: the columns of the record contract and their values."""

from __future__ import annotations

import json

import pandera.polars as pa
import polars as pl

from catalog import Catalog
from catalog.records import ID_LENGTH, SEED_ROLES, SOURCES
from catalog.spec import LANGS

DOMAIN_CHECK = "domain is not the task's domain"


def _is_json_object(data: pa.PolarsData) -> pl.LazyFrame:
    # Parsed once per distinct value: provenance repeats a lot (one template, one model), and parsing is Python.
    def parses(text: str) -> bool:
        try:
            return isinstance(json.loads(text), dict)
        except json.JSONDecodeError:
            return False

    distinct = data.lazyframe.select(pl.col(data.key).unique()).collect().to_series().drop_nulls()
    valid = [text for text in distinct if parses(text)]
    return data.lazyframe.select(pl.col(data.key).is_in(valid).fill_null(False))


def record_schema(catalog: Catalog, unique_ids: bool = True) -> pa.DataFrameSchema:
    """Columns and value checks of a record; `role` is nullable because only seeds carry one.

    `unique_ids=False` leaves duplicates to the caller (the build quarantines them as duplicates, not as invalid).
    """
    text = pa.Check.str_length(min_value=1)
    domain_of_task = {t.id: t.domain for t in catalog}
    return pa.DataFrameSchema(
        {
            "id": pa.Column(str, pa.Check.str_matches(rf"^[0-9a-f]{{{ID_LENGTH}}}$"), unique=unique_ids),
            "task": pa.Column(str, pa.Check.isin(sorted(domain_of_task))),
            "domain": pa.Column(str, pa.Check.isin(catalog.domains)),
            "lang": pa.Column(str, pa.Check.isin(list(LANGS))),
            "instruction": pa.Column(str, text),
            "input": pa.Column(str, text),
            "output": pa.Column(str, text),
            "source": pa.Column(str, pa.Check.isin(list(SOURCES))),
            "generator": pa.Column(str, text),
            "provenance": pa.Column(str, pa.Check(_is_json_object, error="provenance is not a JSON object")),
            "role": pa.Column(str, pa.Check.isin(list(SEED_ROLES)), nullable=True, required=False),
        },
        checks=[
            pa.Check(
                lambda data: data.lazyframe.select(
                    pl.col("task").replace_strict(domain_of_task, default=None).eq(pl.col("domain")).fill_null(False)
                ),
                error=DOMAIN_CHECK,
            )
        ],
        name="record",
    )
