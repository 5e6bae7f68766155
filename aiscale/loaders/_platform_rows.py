"""A platform loader's mapped rows as the store's span and trace tables, in Arrow.

Not a loader (the leading underscore keeps it out of the registry). The rows of
:func:`~aiscale.loaders._platform_map.mapped_batches` (span columns, ``attributes``, the
loader's trace fields and ``_row``) become one :class:`~aiscale.loaders.base.ArrowChunk`: the
span columns cast to :data:`aiscale.schema.SPANS` and one trace row per trace, each trace field
the first non-null of its spans (root spans first when the loader says so). The store
validates and writes both without pandas. No Python loop per row.

Token counts arrive as DuckDB doubles. The few that cannot be int64 (not whole, not finite,
beyond int64) break a rule of :func:`~aiscale.loaders.validate.validate_spans` ("is not a whole
number", "is negative", "is absurd"); those rows alone are validated by it here, so they are
quarantined with the same rule as before. A NaN count is unknown (null), as in
:func:`aiscale.schema.conform`.

Examples
--------
>>> import pyarrow as pa
>>> rows = pa.table({"_row": [1, 2, 3], "trace_id": ["t", "t", "u"], "span_id": ["a", "b", "c"],
...     "parent_id": [None, "a", None], "kind": ["chain", "llm", "llm"], "status": ["ok"] * 3,
...     "input_tokens": [None, 10.0, 2.5], "user_id": [None, "ann", None]})
>>> chunk = arrow_chunk(rows, [], "runs.jsonl", "langsmith", ("user_id",))
>>> chunk.span_table.column("input_tokens").to_pylist(), chunk.rows_read
([None, 10], 3)
>>> [str(q) for q in chunk.quarantined]
['runs.jsonl:3: input_tokens is not a whole number (quarantined)']
>>> chunk.trace_table.select(["trace_id", "user_id"]).to_pylist()
[{'trace_id': 't', 'user_id': 'ann'}, {'trace_id': 'u', 'user_id': None}]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale import schema
from aiscale.loaders.base import ArrowChunk, Quarantined

ROW = "_row"
_INT64_BOUND = 2.0 ** 63  # doubles at or beyond it are no int64


def arrow_chunk(rows: pa.Table, bad: list[Quarantined], path: str, source: str,
                trace_fields: Sequence[str], *, roots_first: bool = False,
                root_start: bool = False) -> ArrowChunk:
    """The chunk of one batch of mapped rows: spans, trace rows, and the batch's quarantine.

    Parameters
    ----------
    rows : pyarrow.Table
        The loader's mapped rows (``_row``, span columns, ``attributes``, ``trace_fields``).
    bad : list of Quarantined
        Records the loader quarantined in this batch.
    path, source : str
        The file, and the loader's name (``source``).
    trace_fields : sequence of str
        Columns of ``rows`` that go to the trace table (first non-null per trace).
    roots_first, root_start : bool
        Take trace fields from root spans (no parent) first; ``started_at`` is the start of
        the trace's first root span (null without one).
    """
    spans, rejected = span_table(rows, path, source)
    traces = trace_table(rows, trace_fields, roots_first=roots_first, root_start=root_start)
    return ArrowChunk(spans, traces, quarantined=bad + rejected, rows_read=rows.num_rows + len(bad))


def span_table(rows: pa.Table, path: str, source: str) -> tuple[pa.Table, list[Quarantined]]:
    """The span columns of ``rows`` in the store's schema, and the rows whose counts cannot be.

    Returns
    -------
    (pyarrow.Table, list of Quarantined)
        Spans with :data:`aiscale.schema.SPANS` (not yet validated), and the rows quarantined
        because a token count is no int64 (see the module docstring).
    """
    n = rows.num_rows
    columns = {name: rows.column(name) for name in rows.column_names if name in schema.SPANS.names}
    columns.update(source=pa.repeat(pa.scalar(source), n), source_file=pa.repeat(pa.scalar(path), n),
                   source_row=rows.column(ROW))
    table = pa.table(columns)
    fixed, castable = _counts(table)
    if not castable.all():
        rejected = _rejected_counts(table.filter(pa.array(~castable)))
        fixed = fixed.filter(pa.array(castable))
    else:
        rejected = []
    return schema.conform_table(fixed, "spans"), rejected


def _counts(table: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """Token columns with NaN as null, and which rows have every count castable to int64."""
    castable = np.ones(table.num_rows, dtype=bool)
    for name in schema.TOKEN_COLUMNS:
        if name not in table.column_names or not pa.types.is_floating(table.schema.field(name).type):
            continue
        values = table.column(name)
        if values.null_count == len(values):
            continue
        values = pc.if_else(pc.is_nan(values), pa.scalar(None, values.type), values)
        whole = pc.and_(pc.equal(pc.floor(values), values), pc.less(pc.abs(values), _INT64_BOUND))
        castable &= np.asarray(pc.fill_null(whole, True), dtype=bool)
        table = table.set_column(table.schema.get_field_index(name), name, values)
    return table, castable


def _rejected_counts(table: pa.Table) -> list[Quarantined]:
    """The few rows whose counts cannot be int64, quarantined by ``validate_spans``'s rules."""
    from aiscale.loaders.validate import validate_spans

    good, rejected = validate_spans(table.to_pandas())
    if len(good):  # every such count breaks a rule; kept in the same words should one not
        raise AssertionError(f"token counts that are no int64 passed validation: rows {good['source_row'].tolist()}")
    return rejected


def trace_table(rows: pa.Table, fields: Sequence[str], *, roots_first: bool = False,
                root_start: bool = False) -> pa.Table:
    """One row per trace in the store's trace schema (see :func:`arrow_chunk`).

    Traces come in order of their first row, root rows first when ``roots_first``; each
    field is the first non-null of the trace's rows in that order.
    """
    n = rows.num_rows
    encoded = pc.dictionary_encode(rows.column("trace_id").combine_chunks())
    codes = np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)
    child = np.asarray(pc.is_valid(rows.column("parent_id")), dtype=bool) if roots_first or root_start \
        else np.zeros(n, dtype=bool)
    order = np.lexsort((np.arange(n), child)) if roots_first else np.arange(n)
    ordered = codes[order]
    known = ordered >= 0
    present, first = np.unique(ordered[known], return_index=True)
    output = present[np.argsort(first, kind="stable")]  # codes in order of their first row
    position = np.full(len(encoded.dictionary), -1, dtype=np.int64)
    position[output] = np.arange(len(output))
    columns = {"trace_id": encoded.dictionary.take(pa.array(output, pa.int64()))}
    for name in fields:
        values = rows.column(name)
        columns[name] = _first(values, np.asarray(pc.is_valid(values), dtype=bool)[order] & known,
                               ordered, order, position, len(output))
    if root_start:
        columns["started_at"] = _first(rows.column("start_time"), ~child[order] & known, ordered, order,
                                       position, len(output))
    return schema.conform_table(pa.table(columns), "traces")


def _first(values: pa.ChunkedArray, usable: np.ndarray, ordered: np.ndarray, order: np.ndarray,
           position: np.ndarray, traces: int) -> pa.ChunkedArray:
    """Per output trace, the value of its first usable row (in ``order``); null for none."""
    codes, at = np.unique(ordered[usable], return_index=True)
    index = np.full(traces, -1, dtype=np.int64)
    index[position[codes]] = order[np.flatnonzero(usable)[at]]
    return pc.take(values, pa.array(index, mask=index < 0))
