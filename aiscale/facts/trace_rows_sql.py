"""The SQL that merges a store's trace rows, one per trace (without Ibis).

A trace's rows from several files (or chunks) become one: the earliest start, the largest of
each label and outcome, the longest metadata, as :func:`aiscale.facts.rollup.merge_traces`
does in the rollup. The priced calls and ``TraceStore.traces`` read it; it lives apart from
the rollup so that they do not import Ibis (~0.4 s).

Examples
--------
>>> import duckdb, pyarrow as pa
>>> rows = pa.Table.from_pylist([
...     {"trace_id": "t", "task_id": "a", "started_at": 2, "metadata": "{}"},
...     {"trace_id": "t", "variant": "v", "started_at": 1, "metadata": '{"k": 1}'}], schema.TRACES)
>>> (merged,) = duckdb.sql(merged_traces_sql("rows")).to_arrow_table().to_pylist()
>>> merged["started_at"].microsecond, merged["task_id"], merged["variant"], merged["metadata"]
(1, 'a', 'v', '{"k": 1}')
"""

from __future__ import annotations

from aiscale import schema


def merged_traces_sql(view: str = "traces") -> str:
    """SQL (DuckDB) that merges the trace rows of ``view``, one row per trace.

    Parameters
    ----------
    view : str
        The view or table of trace rows (:data:`aiscale.schema.TRACES`).

    Returns
    -------
    str
        ``trace_id``, ``started_at`` (the earliest), each column's largest value, and the
        longest ``metadata``.
    """
    others = [c for c in schema.TRACE_COLUMNS if c not in ("trace_id", "started_at", "metadata")]
    cols = ", ".join(f"max({c}) AS {c}" for c in others)
    return (f"SELECT trace_id, min(started_at) AS started_at, {cols}, "
            f"arg_max(metadata, length(metadata)) AS metadata FROM {view} GROUP BY trace_id")
