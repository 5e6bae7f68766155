"""The SQL that merges a store's trace rows, one per trace (without Ibis).

A trace's rows from several files (or chunks) become one: the earliest start, the largest of
each label and outcome, the longest metadata, as :func:`aiscale.facts.rollup.merge_traces`
does in the rollup. The priced calls and ``TraceStore.traces`` read it; it lives apart from
the rollup so that they do not import Ibis (~0.4 s).

Examples
--------
>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE traces AS SELECT * FROM (VALUES "
...     "('t', TIMESTAMP '2025-01-02', 'a', NULL, '{}'), ('t', TIMESTAMP '2025-01-01', NULL, 'v', '{\\"k\\": 1}')) "
...     "AS r(trace_id, started_at, task_id, variant, metadata)")
>>> sql = merged_traces_sql("traces", ["task_id", "variant"])
>>> con.sql(sql).fetchall()
[('t', datetime.datetime(2025, 1, 1, 0, 0), 'a', 'v', '{"k": 1}')]
"""

from __future__ import annotations

from collections.abc import Sequence

from aiscale import schema


def merged_traces_sql(view: str = "traces", columns: Sequence[str] | None = None) -> str:
    """SQL (DuckDB) that merges the trace rows of ``view``, one row per trace.

    Parameters
    ----------
    view : str
        The view or table of trace rows.
    columns : sequence of str, optional
        The trace columns besides ``trace_id``, ``started_at`` and ``metadata`` (default: every
        column of the store's trace schema).

    Returns
    -------
    str
        ``trace_id``, ``started_at`` (the earliest), each column's largest value, and the
        longest ``metadata``.
    """
    others = [c for c in (schema.TRACE_COLUMNS if columns is None else columns)
              if c not in ("trace_id", "started_at", "metadata")]
    cols = "".join(f", max({c}) AS {c}" for c in others)
    return (f"SELECT trace_id, min(started_at) AS started_at{cols}, "
            f"arg_max(metadata, length(metadata)) AS metadata FROM {view} GROUP BY trace_id")
