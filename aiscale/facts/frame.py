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

import pandas as pd
import pyarrow as pa

from aiscale import schema


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas with nullable integers and booleans (unknown stays unknown)."""
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
