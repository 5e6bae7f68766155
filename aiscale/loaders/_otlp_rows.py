"""The OTLP flatten's rows as the store's span and trace tables, in Arrow (used by ``otlp``).

Each batch of :func:`~aiscale.loaders._otlp_sql.spans_query` rows becomes one
:class:`~aiscale.loaders.base.ArrowChunk`: spans flagged by the flatten (``span_bad``) or
repeated from an earlier chunk are quarantined, the rest are cast to
:data:`aiscale.schema.SPANS`, and one trace row per trace takes the trace fields from the root
span first, then any span. No pandas and no Python loop per span.

Examples
--------
>>> import pyarrow as pa
>>> from aiscale.loaders._otlp_seen import SeenSpans
>>> batch = pa.record_batch({"line_no": [1, 2], "trace_id": ["t", "t"], "span_id": ["a", "a"],
...     "parent_id": [None, None], "kind": ["llm", "llm"], "name": ["chat", "chat"],
...     "span_bad": [None, None], "span_hash": pa.array([7, 7], pa.uint64()),
...     "task_id": ["task-1", None]})
>>> chunk = arrow_chunk(batch, "f.jsonl", SeenSpans())
>>> chunk.span_table.column("source_row").to_pylist(), chunk.trace_table.column("task_id").to_pylist()
([1, 2], ['task-1'])
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale import schema
from aiscale.loaders._otlp_quarantine import REPEAT, quarantined_spans
from aiscale.loaders._otlp_seen import SeenSpans
from aiscale.loaders.base import ArrowChunk

TRACE_FIELDS = ("task_id", "trial", "variant", "success", "score", "user_id", "session_id", "metadata")


def arrow_chunk(batch: pa.RecordBatch, path: str, seen: SeenSpans) -> ArrowChunk:
    """The chunk of one batch of flattened spans of the file ``path``."""
    spans = pa.Table.from_batches([batch])
    span_bad = spans.column("span_bad")
    seen_before = seen.check_and_add(np.asarray(spans.column("span_hash")))
    if seen_before.any():
        span_bad = pc.if_else(pc.and_(pc.is_null(span_bad), pa.array(seen_before)),
                              pa.scalar(REPEAT), span_bad)
        spans = spans.set_column(spans.column_names.index("span_bad"), "span_bad", span_bad)
    bad = np.asarray(pc.is_valid(span_bad), dtype=bool)
    quarantined = []
    if bad.any():
        quarantined = quarantined_spans(spans.filter(pa.array(bad)), str(path))
        spans = spans.filter(pa.array(~bad))
    return ArrowChunk(_span_table(spans, str(path)), _trace_table(spans),
                      quarantined=quarantined, rows_read=batch.num_rows)


def _span_table(spans: pa.Table, path: str) -> pa.Table:
    n = spans.num_rows
    columns = {name: spans.column(name) for name in spans.column_names if name in schema.SPANS.names}
    columns.update(source=pa.repeat("otlp", n), source_file=pa.repeat(path, n),
                   source_row=spans.column("line_no"))
    return schema.conform_table(pa.table(columns), "spans")


def _trace_table(spans: pa.Table) -> pa.Table:
    """One row per trace, in order of first appearance: the first start, and each trace field
    from the first span that has it, root spans (no parent) before the others.

    The spans are put in that order once (a stable sort of trace, then root or not); each
    field's first value of a trace is the first valid one in the trace's run.
    """
    n = spans.num_rows
    present = [name for name in TRACE_FIELDS if name in spans.column_names]
    encoded = pc.dictionary_encode(spans.column("trace_id")).combine_chunks()
    codes = np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)
    traces = len(encoded.dictionary)
    child = np.asarray(pc.is_valid(spans.column("parent_id")), dtype=bool) \
        if "parent_id" in spans.column_names else np.zeros(n, dtype=bool)
    order = np.argsort(codes * 2 + child, kind="stable")  # by trace, roots first, then file order
    sorted_codes = codes[order]
    columns = {"trace_id": encoded.dictionary, "started_at": _first_start(spans, order, sorted_codes, traces)}
    for name in present:
        values = spans.column(name)
        valid = np.asarray(pc.is_valid(values), dtype=bool)[order] & (sorted_codes >= 0)
        have, at = _run_starts(sorted_codes[valid])
        rows = order[np.flatnonzero(valid)[at]]
        columns[name] = _by_code(pa.array(have), pc.take(values, pa.array(rows, pa.int64())), traces)
    return schema.conform_table(pa.table(columns), "traces")


def _first_start(spans: pa.Table, order: np.ndarray, sorted_codes: np.ndarray, traces: int) -> pa.Array:
    """Each trace's earliest span start (null when none of its spans has one)."""
    kind = schema.TRACES.field("started_at").type
    if "start_time" not in spans.column_names:
        return pa.nulls(traces, kind)
    start = spans.column("start_time")
    known = np.asarray(pc.is_valid(start), dtype=bool)[order]
    micros = np.asarray(pc.fill_null(pc.cast(start, pa.int64()), 0), dtype=np.int64)[order]
    have, at = _run_starts(sorted_codes)
    if not len(at):
        return pa.nulls(traces, kind)
    low = np.minimum.reduceat(np.where(known, micros, np.iinfo(np.int64).max), at)
    some = np.logical_or.reduceat(known, at)
    firsts = pc.cast(pa.array(low, pa.int64(), mask=~some), start.type)
    return _by_code(pa.array(have), firsts, traces)


def _run_starts(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and where each first appears (``np.unique``'s
    ``return_index`` for sorted input, without sorting again)."""
    at = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(ordered) else np.zeros(0, np.int64)
    return ordered[at], at


def _by_code(codes: pa.Array, values: pa.Array, traces: int) -> pa.Array:
    """``values`` (one per code in ``codes``) placed at their code, null for the other traces."""
    codes = np.asarray(codes, dtype=np.int64)
    keep = codes >= 0
    index = np.full(traces, -1, dtype=np.int64)
    index[codes[keep]] = np.flatnonzero(keep)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.take(values, pa.array(index, mask=index < 0))
