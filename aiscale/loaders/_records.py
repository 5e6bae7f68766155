"""Platform export files read as chunks of flat records with their row numbers.

JSONL (line number), a JSON list or ``{"data": [...]}`` API response (index in the list),
CSV (data row, header excluded) and Parquet (row), all 1-based; camelCase names become
snake_case (``traceId`` -> ``trace_id``). Not a loader (the leading underscore keeps it
out of the registry).

Examples
--------
>>> snake("usageDetails"), snake("context.span_id")
('usage_details', 'context.span_id')
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from aiscale.loaders.base import Quarantined, excerpt, iter_json_lines

CHUNK_ROWS = 20_000
ROW = "_row"
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    """camelCase to snake_case (``traceId`` -> ``trace_id``); other names unchanged."""
    return _CAMEL.sub(r"_\1", name).lower() if "." not in name else name



def _parquet_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        yield pd.DataFrame(), [Quarantined(str(path), None, f"unreadable Parquet: {exc}")]
        return
    offset = 0
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
        frame = batch.to_pandas()
        if frame.index.name is not None and frame.index.name not in frame.columns:
            frame = frame.reset_index()
        frame = frame.reset_index(drop=True)
        frame[ROW] = np.arange(offset + 1, offset + 1 + len(frame))
        offset += len(frame)
        yield frame, []


def _jsonl_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    rows: list[dict] = []
    bad: list[Quarantined] = []
    for number, value in iter_json_lines(path):
        if isinstance(value, Quarantined):
            bad.append(value)
        elif not isinstance(value, dict):
            bad.append(Quarantined(str(path), number, "line is not a JSON object", excerpt(value)))
        else:
            rows.append({**value, ROW: number})
        if len(rows) + len(bad) >= CHUNK_ROWS:
            yield pd.DataFrame.from_records(rows), bad
            rows, bad = [], []
    if rows or bad:
        yield pd.DataFrame.from_records(rows), bad


def _json_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    from aiscale.loaders._common import read_document

    document, problem = read_document(path)
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    bad = [problem] if problem else []
    if not isinstance(document, list):
        yield pd.DataFrame(), bad or [Quarantined(str(path), None, "expected a JSON list of records")]
        return
    for start in range(0, len(document), CHUNK_ROWS):
        rows, part_bad = [], bad if start == 0 else []
        for index, value in enumerate(document[start:start + CHUNK_ROWS], start=start + 1):
            if isinstance(value, dict):
                rows.append({**value, ROW: index})
            else:
                part_bad.append(Quarantined(str(path), index, "record is not a JSON object", excerpt(value)))
        yield pd.DataFrame.from_records(rows), part_bad


def _csv_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    offset = 0
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    for frame in pd.read_csv(path, sep=sep, chunksize=CHUNK_ROWS, dtype=str, keep_default_na=False,
                             na_values=[""]):
        frame[ROW] = np.arange(offset + 1, offset + 1 + len(frame))
        offset += len(frame)
        yield frame, []


def _is_json_object(line: bytes) -> bool:
    """Whether a line is a complete JSON object (a JSONL record, not the start of a document)."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def read_records(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    """Yield ``(records, quarantined)`` chunks of a Parquet, JSONL, JSON or CSV file.

    ``records`` has the file's columns (camelCase renamed to snake_case) plus ``_row``.
    """
    with open(path, "rb") as handle:
        first = handle.read(4)
        if first != b"PAR1":
            handle.seek(0)
            for raw in handle:
                first = raw.lstrip(b"\xef\xbb\xbf").strip()
                if first:
                    break
    if first.startswith(b"PAR1"):
        chunks = _parquet_chunks(path)
    elif first.startswith(b"["):
        chunks = _json_chunks(path)
    elif first.startswith(b"{"):
        chunks = _jsonl_chunks(path) if _is_json_object(first) else _json_chunks(path)
    else:
        chunks = _csv_chunks(path)
    for frame, bad in chunks:
        yield frame.rename(columns=snake), bad


__all__ = ["CHUNK_ROWS", "ROW", "read_records", "snake"]
