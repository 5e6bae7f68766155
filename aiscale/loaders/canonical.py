"""Canonical span tables in Parquet (aiscale's own span schema, e.g. from ``simulate``).

A Parquet file whose columns include ``trace_id``, ``span_id`` and ``kind`` is read in
record batches; extra columns are dropped, missing ones are null. A companion file named
``*.traces.parquet`` beside it (columns of the trace table) gives task, trial, variant
and outcome.

Examples
--------
>>> sniff(Path("x.parquet"), b"PAR1")
False
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from aiscale.loaders.base import Chunk, Quarantined
from aiscale.schema import SPAN_COLUMNS

if TYPE_CHECKING:
    pass

NAME = "canonical"
PRIORITY = 10
BATCH_ROWS = 200_000
_REQUIRED = {"trace_id", "span_id", "kind"}


def _columns(path: Path) -> set[str]:
    try:
        return set(pq.read_schema(path).names)
    except Exception:  # not readable Parquet: not this format
        return set()


def sniff(path: Path, head: bytes) -> bool:
    """A Parquet file with the canonical span or trace columns."""
    if not head.startswith(b"PAR1"):
        return False
    columns = _columns(path)
    return _REQUIRED <= columns or (path.name.endswith(".traces.parquet") and "trace_id" in columns)


def read(path: Path) -> Iterator[Chunk]:
    """Yield span (or trace) rows in record batches of at most 200,000 rows."""
    import pandas as pd

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        yield Chunk(quarantined=[Quarantined(str(path), None, f"unreadable Parquet: {exc}")], rows_read=1)
        return
    is_traces = not _REQUIRED <= set(parquet.schema_arrow.names)
    offset = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        frame = batch.to_pandas()
        if not is_traces:  # extra columns dropped, missing ones null (as documented)
            frame = frame.reindex(columns=list(SPAN_COLUMNS))
        if is_traces:
            yield Chunk(traces=frame, rows_read=0, unit="span")
            continue
        frame["source"] = NAME
        frame["source_file"] = str(path)
        frame["source_row"] = pd.RangeIndex(offset + 1, offset + 1 + len(frame))
        offset += len(frame)
        yield Chunk(spans=frame, rows_read=len(frame))
