"""The two steps of a Spark OTLP load that run on the executors, with the local loader's rules.

Both are ``mapInArrow`` functions. :func:`flatten_lines` turns a partition of numbered lines
into flat span rows (or bad-line rows) with the very query the DuckDB loader runs on a block
(:func:`aiscale.loaders.otlp._query_block`: ids, times, status, kind, GenAI / OpenInference /
OpenLLMetry keys, tokens, attributes JSON, the span's rule when it breaks one).
:func:`canonical_rows` takes the spans of whole traces (the driver partitions by trace) and
applies the per-chunk rules of the local load: bad spans quarantined, then
:func:`aiscale.loaders.validate.validate_spans` (duplicates, parent cycles, ranges). No rule
is written twice.

Examples
--------
>>> [f.name for f in FLAT_SCHEMA][:3]
['line_no', 'pos', 'trace_id']
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from aiscale import schema
from aiscale.loaders import otlp
from aiscale.loaders._otlp_quarantine import line_excerpt, quarantined_spans
from aiscale.loaders.validate import validate_spans

_TRACE_FIELDS = [pa.field("task_id", pa.string()), pa.field("trial", pa.int64()),
                 pa.field("variant", pa.string()), pa.field("success", pa.bool_()),
                 pa.field("score", pa.float64()), pa.field("user_id", pa.string()),
                 pa.field("session_id", pa.string()), pa.field("metadata", pa.string())]
_LOADED = [f for f in schema.SPANS if f.name not in ("source", "source_file", "source_row")]

FLAT_SCHEMA = pa.schema([pa.field("line_no", pa.int64()), pa.field("pos", pa.int64()), *_LOADED,
                         pa.field("span_bad", pa.string()), *_TRACE_FIELDS,
                         pa.field("line_bad", pa.string()), pa.field("excerpt", pa.string())])
"""Rows of :func:`flatten_lines`: a span (``line_bad`` null) or a bad line (``line_bad`` set)."""

OUT_SCHEMA = pa.schema([*schema.SPANS, pa.field("day", pa.string()),
                        pa.field("q_reason", pa.string()), pa.field("q_excerpt", pa.string()),
                        pa.field("q_trace", pa.string()), pa.field("q_lost", pa.bool_())])
"""Rows of :func:`canonical_rows`: a span to store (``q_reason`` null) or a quarantined row."""


def flatten_lines(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Numbered lines (``line_no``, ``raw`` bytes) to :data:`FLAT_SCHEMA` rows, in DuckDB."""
    con = otlp._connect()
    pos = 0
    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            order = np.argsort(batch.column("line_no").to_numpy(zero_copy_only=False), kind="stable")
            batch = batch.take(pa.array(order))  # the block query wants lines in file order
            line_numbers = batch.column("line_no").to_numpy(zero_copy_only=False).astype(np.int64)
            lines = [raw.removeprefix(otlp.BOM) if n == 1 else raw
                     for n, raw in zip(line_numbers, batch.column("raw").to_pylist(), strict=True)]
            sizes = np.fromiter((len(raw) + 1 for raw in lines), dtype=np.int64, count=len(lines))
            offsets = np.concatenate([[0], np.cumsum(sizes)])
            data = memoryview(b"".join(raw + b"\n" for raw in lines))
            for out in otlp._query_block(con, line_numbers, offsets, data, sizes):
                if "span_id" in out.schema.names:
                    columns = {f.name: out.column(f.name) for f in FLAT_SCHEMA
                               if f.name in out.schema.names}
                else:
                    numbers = out.column("line_no").to_pylist()
                    columns = {"line_no": out.column("line_no"), "line_bad": out.column("line_bad"),
                               "excerpt": pa.array([line_excerpt(n, line_numbers, offsets, data)
                                                    for n in numbers], pa.string())}
                columns["pos"] = pa.array(np.arange(pos, pos + out.num_rows, dtype=np.int64))
                pos += out.num_rows
                yield _typed(columns, out.num_rows, FLAT_SCHEMA)
    finally:
        con.close()


def canonical_rows(source_file: str):
    """Return the ``mapInArrow`` function turning flat rows of whole traces into
    :data:`OUT_SCHEMA` rows, as the local load treats one chunk of ``source_file``."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tables = [pa.Table.from_batches([b]) for b in batches if b.num_rows]
        if not tables:
            return
        flat = pa.concat_tables(tables).to_pandas(types_mapper={
            pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get)
        flat = flat.sort_values(["line_no", "pos"], kind="stable").reset_index(drop=True)
        quarantine = []
        lines = flat.loc[flat["line_bad"].notna()]
        quarantine += [(int(n), why, text, None, False) for n, why, text
                       in lines[["line_no", "line_bad", "excerpt"]].itertuples(index=False)]
        spans = flat.loc[flat["line_bad"].isna()]
        bad = spans["span_bad"].notna()
        rejected = quarantined_spans(spans.loc[bad], source_file)
        spans = spans.loc[~bad]
        rows = spans[[f.name for f in _LOADED]].assign(
            source="otlp", source_file=source_file, source_row=spans["line_no"])
        good, invalid = validate_spans(rows.reset_index(drop=True))
        quarantine += [(q.source_row, q.reason, q.excerpt, q.trace_id, q.lost_llm_call)
                       for q in rejected + invalid]
        if len(good):
            table = schema.conform(good, "spans")
            days = pd.Series(pd.to_datetime(good["start_time"], utc=True)).dt.strftime("%Y-%m-%d")
            yield _typed({**{n: table.column(n) for n in table.column_names},
                          "day": pa.array(days.fillna("unknown").tolist(), pa.string())},
                         table.num_rows, OUT_SCHEMA)
        if quarantine:
            rows_q, reasons, texts, traces, lost = zip(*quarantine, strict=True)
            yield _typed({"source_file": pa.array([source_file] * len(rows_q), pa.string()),
                          "source_row": pa.array(rows_q, pa.int64()),
                          "q_reason": pa.array(reasons, pa.string()),
                          "q_excerpt": pa.array(texts, pa.string()),
                          "q_trace": pa.array(traces, pa.string()),
                          "q_lost": pa.array(lost, pa.bool_())}, len(rows_q), OUT_SCHEMA)

    return run


def _typed(columns: dict, n: int, target: pa.Schema) -> pa.RecordBatch:
    """A batch of ``target``'s columns in order: given ones cast, missing ones null."""
    arrays = []
    for field in target:
        value = columns.get(field.name)
        if value is None:
            arrays.append(pa.nulls(n, field.type))
        else:
            if isinstance(value, pa.ChunkedArray):
                value = value.combine_chunks()
            arrays.append(value.cast(field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=target)
