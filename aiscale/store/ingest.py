"""One file into staged Parquet parts: read, validate, partition spans by day, write.

:func:`stage_file` runs in a worker process when a load has several files (both cores),
and writes only inside its staging folder; the store then moves the parts into place and
names them in its manifest. Spans are written under ``spans/day=YYYY-MM-DD/`` (by span
start; ``day=unknown`` when the source has no timestamps) so that a window reads only
its days, one part per day of each file (:mod:`aiscale.store.day_parts`); trace and fact
rows one part per chunk.

Examples
--------
>>> import pandas as pd
>>> day_partition(pd.Series(pd.to_datetime(["2025-01-02 10:00", None], utc=True))).tolist()
['day=2025-01-02', 'day=unknown']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from aiscale import schema
from aiscale.loaders import UnknownFormatError, read_file
from aiscale.loaders.base import ArrowChunk, Chunk, Quarantined
from aiscale.loaders.validate import merge_traces, validate_facts, validate_spans
from aiscale.loaders.validate_arrow import missing_ids, validate_span_table
from aiscale.store.day_parts import DayParts
from aiscale.store.quarantine_file import write_quarantine
from aiscale.store.span_groups import AddedRows

if TYPE_CHECKING:
    import pandas as pd

TABLES = ("spans", "traces", "facts")


def day_partition(start_time: pd.Series) -> pd.Series:
    """Return the ``day=YYYY-MM-DD`` folder of each span (``day=unknown`` without a start)."""
    from aiscale.facts.window import utc_day_labels

    return utc_day_labels(start_time, "day=%Y-%m-%d").fillna("day=unknown")


def _validated(chunk: Chunk) -> tuple[dict[str, pd.DataFrame | pa.Table], list[Quarantined]]:
    bad = list(chunk.quarantined)
    tables: dict[str, pd.DataFrame | pa.Table] = {}
    if isinstance(chunk, ArrowChunk):  # spans and traces already in the store's schemas
        if chunk.span_table is not None and chunk.span_table.num_rows:
            tables["spans"], rejected = validate_span_table(chunk.span_table)
            bad += rejected
        if chunk.trace_table is not None and chunk.trace_table.num_rows:
            tables["traces"] = merge_trace_table(chunk.trace_table)
        return tables, bad
    if chunk.spans is not None and len(chunk.spans):
        tables["spans"], rejected = validate_spans(chunk.spans)
        bad += rejected
    if chunk.traces is not None and len(chunk.traces):
        tables["traces"] = merge_traces(chunk.traces)
    if chunk.facts is not None and len(chunk.facts):
        tables["facts"], rejected = validate_facts(chunk.facts)
        bad += rejected
    return tables, bad


def merge_trace_table(traces: pa.Table) -> pa.Table:
    """:func:`~aiscale.loaders.validate.merge_traces` for an Arrow trace table."""
    traces = traces.filter(pa.array(~missing_ids(traces.column("trace_id"))))
    if pc.count_distinct(traces.column("trace_id")).as_py() == traces.num_rows:
        return traces
    return schema.conform(merge_traces(traces.to_pandas()), "traces")


def _write(table: str, frame: pd.DataFrame | pa.Table, staging: Path, stem: str) -> list[str]:
    """Write one validated trace or fact frame as a part; return its path relative to the table folder."""
    if not isinstance(frame, pa.Table):
        frame = schema.conform(frame, table)
    (staging / table).mkdir(parents=True, exist_ok=True)
    pq.write_table(frame, staging / table / f"{stem}.parquet", compression="zstd")
    return [f"{stem}.parquet"]


def stage_chunks(path: Path, digest: str, chunks: Iterable[Chunk], staging: Path,
                 on_chunk: Callable[[int], None] | None = None) -> dict:
    """Validate and write every chunk of one file into ``staging``; return the manifest record.

    ``on_chunk`` is called with the rows read of each chunk (progress of a long file).
    """
    record = {"path": str(path), "rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0,
              "unit": "span", "parts": {t: [] for t in TABLES},
              "loaded_at": datetime.now(timezone.utc).isoformat(), "examples": []}
    quarantined: list[Quarantined] = []
    added = record["added"] = AddedRows()  # the load summary's counts (not kept in the manifest)
    with DayParts(staging / "spans", digest[:16]) as spans:
        for number, chunk in enumerate(chunks):
            record["unit"] = chunk.unit
            record["rows_read"] += chunk.rows_read
            tables, bad = _validated(chunk)
            record["rows_loaded"] += chunk.rows_read - len(bad)
            record["rows_quarantined"] += len(bad)
            quarantined += bad
            for table, frame in tables.items():
                if not len(frame):
                    continue
                if table == "spans":
                    span_table = frame if isinstance(frame, pa.Table) else schema.conform(frame, "spans")
                    spans.add(span_table, number)
                    added.add_spans(span_table)
                else:
                    record["parts"][table] += _write(table, frame, staging, f"{digest[:16]}-{number:05d}")
                    added.fact_rows += len(frame) if table == "facts" else 0
            if on_chunk is not None:
                on_chunk(chunk.rows_read)
    record["parts"]["spans"] = spans.names
    if quarantined:
        write_quarantine(quarantined, staging / "quarantine.jsonl")
        record["examples"] = [str(q) for q in quarantined[:5]]
    return record


def stage_file(path: Path, digest: str, format: str | None, named: bool, staging: Path,
               on_chunk: Callable[[int], None] | None = None) -> dict:
    """Read one file into ``staging``; a record with ``status`` loaded or skipped.

    An unrecognised file raises when it was named (or a format forced), else is skipped.
    """
    try:
        format_name, chunks = read_file(path, format=format)
    except UnknownFormatError as exc:
        if named or format:
            raise
        return {"status": "skipped", "path": str(path), "reason": str(exc)}
    staging.mkdir(parents=True)
    record = stage_chunks(path, digest, chunks, staging, on_chunk)
    record.update(status="loaded", format=format_name)
    return record
