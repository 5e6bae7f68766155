"""Platform export files read as batches of records, one JSON object text per record.

JSONL (row = line number), a JSON list or ``{"data": [...]}`` API response (index in the
list), CSV (data row, header excluded) and Parquet (row), all 1-based, any of them
gzip-compressed. Each batch is an Arrow table with ``line`` (the record as JSON text) and
``_row``, for the platform loaders to map in DuckDB. Not a loader (the leading underscore
keeps it out of the registry).

JSONL is split into lines in NumPy, block by block, never parsed in Python. Bounds, each a
quarantine rule for the one record that breaks it: a line over
:data:`~aiscale.loaders.base.MAX_RECORD_BYTES` (skipped unread), invalid UTF-8, nesting deeper
than :data:`~aiscale.loaders.base.MAX_DEPTH` (measured only on lines with that many brackets).
Whether each line is a JSON object is for the loader's query to say
(:mod:`aiscale.loaders._platform_sql`). A JSONL record's text is its line without its own
newline, led by the newline of the line before it (the bytes are not copied; readers take
the leading newline off with ``ltrim``). In CSV and Parquet, text cells holding JSON
(``{...}`` or ``[...]``) become nested JSON, and camelCase column names become snake_case.

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
import pyarrow as pa
import pyarrow.parquet as pq

from aiscale.loaders._bounded import CUT, loads_bounded, max_depth
from aiscale.loaders.base import (
    MAX_DEPTH,
    MAX_RECORD_BYTES,
    TOO_DEEP,
    Quarantined,
    excerpt,
    is_gzip,
    open_binary,
    read_some,
)

BLOCK_BYTES = 32 << 20
CHUNK_ROWS = 20_000
ROW = "_row"
LINE = "line"
BOM = b"\xef\xbb\xbf"
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
TOO_LARGE = f"record larger than {MAX_RECORD_BYTES >> 20} MB"
Batch = tuple[pa.Table, list[Quarantined]]


def snake(name: str) -> str:
    """camelCase to snake_case (``traceId`` -> ``trace_id``); other names unchanged."""
    return _CAMEL.sub(r"_\1", name).lower() if "." not in name else name


def camel(name: str) -> str:
    """snake_case to camelCase (``trace_id`` -> ``traceId``), the API's spelling."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest) if "." not in name else name


def _batch(lines: pa.Array, rows: np.ndarray) -> pa.Table:
    return pa.table({LINE: lines, ROW: pa.array(rows, type=pa.int64())})


def _empty() -> pa.Table:
    return _batch(pa.array([], pa.string()), np.zeros(0, dtype=np.int64))


# -- JSON lines ------------------------------------------------------------------------------
def _line_batch(path: Path, data: bytes | memoryview, first_line: int,
                newlines: np.ndarray | None = None) -> tuple[Batch, int]:
    """The lines of ``data`` (whole lines) as a batch; also how many lines it held.

    ``newlines``: the offsets of the newlines in ``data`` when known (any beyond it are ignored).
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = (np.flatnonzero(raw == 10) if newlines is None else newlines[newlines < len(raw)]) + 1
    if not len(ends) or ends[-1] != len(raw):
        ends = np.append(ends, len(raw))
    starts = np.r_[0, ends[:-1]]
    rows = np.arange(first_line, first_line + len(ends))
    # each line's own newline is left out and the one before it leads instead (no bytes copied):
    # line i is "\n" + its text; the SQL takes that off with a cheap ltrim (never an rtrim)
    cuts = ends - (raw[ends - 1] == 10)
    lines = pa.StringArray.from_buffers(len(ends), pa.py_buffer(np.r_[0, cuts].astype(np.int32)),
                                        pa.py_buffer(data))
    keep = (ends - starts) > 1  # not just a newline; whitespace-only lines are dropped by the query
    bad: list[Quarantined] = []
    for rule, mask in (_too_large(starts, ends), _not_utf8(lines, data, starts, ends),
                       _too_deep(raw, data, starts, ends)):
        mask &= keep
        bad += [Quarantined(str(path), int(rows[i]), rule, _excerpt(data, starts[i], ends[i]))
                for i in np.flatnonzero(mask)]
        keep &= ~mask
    if not keep.all():
        lines, rows = lines.filter(pa.array(keep)), rows[keep]
    return (_batch(lines, rows), bad), len(ends)


def _excerpt(data: bytes | memoryview, start: int, end: int) -> str:
    return excerpt(bytes(data[start:min(end, start + 400)]).decode("utf-8", "replace").strip())


def _too_large(starts: np.ndarray, ends: np.ndarray) -> tuple[str, np.ndarray]:
    return TOO_LARGE, (ends - starts) > MAX_RECORD_BYTES


def _not_utf8(lines: pa.Array, data: bytes, starts: np.ndarray, ends: np.ndarray) -> tuple[str, np.ndarray]:
    """Lines that are not UTF-8; looked for line by line only when the whole block is not."""
    mask = np.zeros(len(starts), dtype=bool)
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
            try:
                bytes(data[start:end]).decode("utf-8")
            except UnicodeDecodeError:
                mask[i] = True
    return "line is not valid UTF-8", mask


_PAGE = 255 * 8  # bytes a page: its 255 words summed as whole words, no byte's count can carry


def _page_counts(opening: np.ndarray) -> np.ndarray:
    """Bracket count (1 bytes of ``opening``, a 0/1 uint8 array) per :data:`_PAGE` bytes, the
    last page short. Each page's 64-bit words are summed at once (every byte lane then holds at
    most 255), then the eight lanes of each sum are added; no byte is widened to 64 bits."""
    whole = len(opening) // _PAGE * _PAGE
    lanes = opening[:whole].view(np.uint64).reshape(-1, _PAGE // 8).sum(axis=1, dtype=np.uint64)
    for shift, mask in ((8, 0x00FF00FF00FF00FF), (16, 0x0000FFFF0000FFFF), (32, 0x00000000FFFFFFFF)):
        lanes = (lanes & np.uint64(mask)) + ((lanes >> np.uint64(shift)) & np.uint64(mask))
    return np.r_[lanes.astype(np.int64), opening[whole:].sum(dtype=np.int64)]


def _too_deep(raw: np.ndarray, data: bytes, starts: np.ndarray, ends: np.ndarray) -> tuple[str, np.ndarray]:
    """Lines nested deeper than MAX_DEPTH: measured on lines with at least that many brackets.

    Brackets are first counted per page of ~2 KB: a line can only hold MAX_DEPTH of them when
    the pages it touches do, so most blocks are cleared without counting line by line.
    """
    mask = np.zeros(len(starts), dtype=bool)
    opening = np.bitwise_or(raw, 32)  # '[' -> '{'
    np.equal(opening, ord("{"), out=opening.view(bool))
    pages = np.r_[0, _page_counts(opening)].cumsum()
    bound = pages[(ends - 1) // _PAGE + 1] - pages[starts // _PAGE]
    if not (bound >= MAX_DEPTH).any():
        return TOO_DEEP, mask
    opens = np.flatnonzero(opening)
    counts = np.bincount(np.searchsorted(ends, opens, side="right"), minlength=len(starts))[:len(starts)]
    for i in np.flatnonzero(counts >= MAX_DEPTH):
        mask[i] = max_depth(bytes(data[starts[i]:ends[i]])) > MAX_DEPTH
    return TOO_DEEP, mask


def _skip_line(handle, pending: bytes) -> bytes:
    """Read past the end of an over-long line without keeping it; return what follows."""
    while True:
        cut = pending.find(b"\n")
        if cut >= 0:
            return pending[cut + 1:]
        pending = handle.read(BLOCK_BYTES)
        if not pending:
            return b""


def _jsonl_batches(path: Path) -> Iterator[Batch]:
    if is_gzip(path):
        yield from _gzip_jsonl_batches(path)
        return
    with pa.OSFile(str(path)) as handle:
        size = handle.size()
        pos, first_line, boundary = (len(BOM) if handle.read(len(BOM)) == BOM else 0), 1, BLOCK_BYTES
        while pos < size:
            # a batch ends at the last newline before a multiple of BLOCK_BYTES (as a stream read in blocks)
            handle.seek(pos)
            data = handle.read_buffer(min(boundary, size) - pos)  # Arrow's memory: no zero-fill, no copy after
            raw = np.frombuffer(data, dtype=np.uint8)
            newlines = np.flatnonzero(raw == 10)
            end = len(raw) if boundary >= size else (int(newlines[-1]) + 1 if len(newlines) else 0)
            if end == 0 and len(raw) > MAX_RECORD_BYTES:  # one line over the bound: skip it
                yield _empty(), [Quarantined(str(path), first_line, TOO_LARGE, _excerpt(memoryview(data), 0, 400))]
                pos, first_line = _line_end(handle, pos + len(raw), size), first_line + 1
                boundary = (pos - 1) // BLOCK_BYTES * BLOCK_BYTES + BLOCK_BYTES
                continue
            boundary += BLOCK_BYTES
            if end:
                batch, count = _line_batch(path, memoryview(data)[:end], first_line, newlines)
                yield batch
                pos, first_line = pos + end, first_line + count


def _line_end(handle, at: int, size: int) -> int:
    """Where the line running on at file offset ``at`` ends (after its newline; ``size`` at the end)."""
    while at < size:
        handle.seek(at)
        newlines = np.flatnonzero(np.frombuffer(handle.read_buffer(BLOCK_BYTES), dtype=np.uint8) == 10)
        if len(newlines):
            return at + int(newlines[0]) + 1
        at += BLOCK_BYTES
    return size


def _gzip_jsonl_batches(path: Path) -> Iterator[Batch]:
    with open_binary(path) as handle:
        pending, damage = read_some(handle, BLOCK_BYTES)
        pending = pending[len(BOM):] if pending.startswith(BOM) else pending
        first_line = 1
        while pending:
            more, damage = (b"", damage) if damage else read_some(handle, BLOCK_BYTES)
            end = pending.rfind(b"\n") + 1 if more or damage else len(pending)  # a damaged stream's cut line: lost
            if end == 0 and damage:
                break
            if end == 0 and len(pending) > MAX_RECORD_BYTES:  # one line over the bound: skip it
                yield _empty(), [Quarantined(str(path), first_line, TOO_LARGE, _excerpt(pending, 0, 400))]
                pending, first_line = _skip_line(handle, pending + more), first_line + 1
                if not pending and not damage:  # the long line ended where the read did: read on
                    pending, damage = read_some(handle, BLOCK_BYTES)
                continue
            if end == 0:
                pending += more
                continue
            batch, count = _line_batch(path, memoryview(pending)[:end], first_line)
            yield batch
            first_line += count
            pending = pending[end:] + more
        if damage:  # the lines after the damage cannot be read: one quarantined row says so
            yield _empty(), [Quarantined(str(path), first_line, f"{damage}; the lines from here on are lost")]


# -- whole JSON documents, CSV, Parquet: records made into JSON text -------------------------
def _json_batches(path: Path) -> Iterator[Batch]:
    from aiscale.loaders._common import salvage_json

    with open_binary(path) as handle:
        data, damage = read_some(handle, -1)
    if damage:
        yield _empty(), [Quarantined(str(path), None, f"{damage}; the file cannot be read")]
        return
    try:
        text = data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        yield _empty(), [
            Quarantined(str(path), None, f"file is not valid UTF-8 ({exc.reason})")]
        return
    try:
        document, cut = loads_bounded(text)
        problem = None
    except json.JSONDecodeError:
        (document, problem), cut = salvage_json(text), False
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    bad = [Quarantined(str(path), None, problem + "; the records after this point are lost")] if problem else []
    if not isinstance(document, list):
        yield _empty(), bad or [
            Quarantined(str(path), None, "expected a JSON list of records")]
        return
    for start in range(0, len(document), CHUNK_ROWS):
        part = document[start:start + CHUNK_ROWS]
        rows = np.arange(start + 1, start + 1 + len(part))
        lines = [json.dumps(r, ensure_ascii=False, default=str) if isinstance(r, dict) else None for r in part]
        part_bad = bad if start == 0 else []
        part_bad += [Quarantined(str(path), int(row), "record is not a JSON object", excerpt(r))
                     for row, r, line in zip(rows, part, lines, strict=True) if line is None]
        if cut:
            part_bad += [Quarantined(str(path), int(row), TOO_DEEP) for row, line in zip(rows, lines, strict=True)
                         if line is not None and json.dumps(CUT) in line]
        quarantined = {q.source_row for q in part_bad}
        keep = np.array([row not in quarantined for row in rows], dtype=bool)
        yield _batch(pa.array(lines, pa.string()).filter(pa.array(keep)), rows[keep]), part_bad


def table_lines(table: pa.Table, first_row: int) -> pa.Table:
    """Rows of an Arrow table (Parquet or CSV) as JSON text records, JSON-holding text cells nested."""
    import duckdb

    names = [snake(n) for n in table.column_names]
    keep = [i for i, n in enumerate(table.column_names) if not n.startswith("__index_level_")]
    source = pa.table({f"c{i}": table.column(i) for i in keep})  # plain names for SQL
    cells = []
    for i in keep:
        column = f"c{i}"
        key = names[i].replace("'", "''")
        if pa.types.is_string(table.schema.field(i).type) or pa.types.is_large_string(table.schema.field(i).type):
            value = (f"CASE WHEN ltrim({column})[1] IN ('{{', '[') AND json_valid({column}) THEN json({column}) "
                     f"ELSE to_json({column}) END")
        else:
            value = f"to_json({column})"
        cells.append(f"'{key}', {value}")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("source", source)
    query = f"SELECT json_object({', '.join(cells)})::VARCHAR AS {LINE} FROM source" if cells else \
        f"SELECT '{{}}' AS {LINE} FROM source"
    lines = con.sql(query).to_arrow_table().column(LINE)
    return _batch(lines.combine_chunks(), np.arange(first_row, first_row + len(lines)))


def _parquet_batches(path: Path) -> Iterator[Batch]:
    try:
        parquet = pq.ParquetFile(open_binary(path))
    except Exception as exc:
        yield _empty(), [
            Quarantined(str(path), None, f"unreadable Parquet: {exc}")]
        return
    offset = 0
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
        yield table_lines(pa.Table.from_batches([batch]), offset + 1), []
        offset += batch.num_rows


def _csv_batches(path: Path) -> Iterator[Batch]:
    import pandas as pd

    offset = 0
    sep = "\t" if path.suffix.lower() in (".tsv",) or path.name.lower().endswith(".tsv.gz") else ","
    with open_binary(path) as handle:
        for frame in pd.read_csv(handle, sep=sep, chunksize=CHUNK_ROWS, dtype=str, keep_default_na=False,
                                 na_values=[""]):
            yield table_lines(pa.Table.from_pandas(frame, preserve_index=False), offset + 1), []
            offset += len(frame)


def _is_json_object(line: bytes) -> bool:
    """Whether a line is a complete JSON object (a JSONL record, not the start of a document)."""
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return len(line) > 1 and line.rstrip().endswith(b"}")


def read_batches(path: Path) -> Iterator[Batch]:
    """Yield ``(records, quarantined)`` batches of a Parquet, JSONL, JSON or CSV file.

    ``records`` has a ``line`` column (each record as JSON text) and ``_row``.
    """
    with open_binary(path) as handle:
        if handle.read(4) == b"PAR1":
            return _parquet_batches(path)
    first = _first_line(path)
    if first.startswith(b"["):
        return _json_batches(path)
    if first.startswith(b"{"):
        return _jsonl_batches(path) if _is_json_object(first) else _json_batches(path)
    return _csv_batches(path)


def _first_line(path: Path) -> bytes:
    with open_binary(path) as handle:
        for raw in handle:
            first = raw.lstrip(BOM).strip()
            if first:
                return first[:MAX_RECORD_BYTES]
    return b""


__all__ = ["CHUNK_ROWS", "LINE", "ROW", "camel", "read_batches", "snake", "table_lines"]
