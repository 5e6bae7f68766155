"""Rolled-up trace facts as pandas: conformed to the facts schema, sorted by trace.

Kept apart from :mod:`aiscale.facts.rollup` (the Ibis expressions) so that reading facts
whose query is already compiled imports no Ibis.

Examples
--------
>>> import pandas as pd
>>> finish(pd.DataFrame({"trace_id": ["b", "a"], "n_llm_calls": [2, 1]}))[["trace_id", "n_llm_calls"]].values.tolist()
[['a', 1], ['b', 2]]
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import pyarrow as pa

from aiscale import schema

if TYPE_CHECKING:  # pandas is imported where a frame is made: facts written as Parquet need none
    import pandas as pd


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas with nullable integers and booleans (unknown stays unknown)."""
    import pandas as pd

    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=mapping.get)


def finish(facts: pd.DataFrame, stored_facts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Conform rolled-up facts (plus span-less fact rows) to the facts schema, sorted by trace."""
    return to_pandas(finish_table(facts, stored_facts))


def finish_table(facts: pd.DataFrame, stored_facts: pd.DataFrame | None = None) -> pa.Table:
    """The Arrow table :func:`finish` turns into pandas (the facts schema, sorted by trace)."""
    frames = [facts] + ([stored_facts] if stored_facts is not None and len(stored_facts) else [])
    tables = [schema.conform(f, "facts") for f in frames]
    return pa.concat_tables(tables).sort_by("trace_id")


@lru_cache(maxsize=1)
def parquet_schema() -> pa.Schema:
    """The facts schema with the pandas metadata ``pa.Table.from_pandas(facts)`` writes.

    A facts file written batch by batch with it reads back into pandas with the same dtypes
    (nullable integers and booleans) as one written from the :func:`finish` frame. Taken from
    the shipped copy when pandas and pyarrow are the versions it was made with
    (:func:`~aiscale.facts.compiled.shipped_parquet_schema`: writing facts imports no pandas),
    else made by :func:`pandas_parquet_schema`.
    """
    from aiscale.facts.compiled import shipped_parquet_schema

    shipped = shipped_parquet_schema()
    return shipped if shipped is not None else pandas_parquet_schema()


def pandas_parquet_schema() -> pa.Schema:
    """:func:`parquet_schema` made with pandas: the schema of an empty facts frame's Arrow table.

    Examples
    --------
    >>> pandas_parquet_schema().names == list(schema.FACT_COLUMNS)
    True
    """
    empty = to_pandas(schema.schema_of("facts").empty_table())
    return pa.Table.from_pandas(empty, preserve_index=False).schema
