"""Parse a block of OTLP JSON lines into nested requests (used by ``otlp``).

The block is parsed by :func:`~aiscale.loaders._otlp_sql.fast_parse_query`: ``from_json`` over
the lines as text, the bytes handed to DuckDB as they are (a zero-copy view of the binary
lines), with no ``try`` and no ``decode`` (they cost ~10 % of the parse). A line that is not
JSON or not UTF-8 makes ``from_json`` raise for the whole query; then the block is parsed
again batch by batch (about ``BATCH_BYTES`` of lines each), fast, and a batch that raises once
more is parsed by the tolerant :func:`~aiscale.loaders._otlp_sql.parse_query`
(``try(from_json(try(decode(raw))))``), where the bad line gives a null request like any line
that gave no span, to be explained by ``bad_lines_query``. A bad line so costs at most one more
parse of its block and one of its batch; a file without one pays one query per block, not one
per batch (a query has a fixed cost of ~8 ms, 0.6 CPU-s per million spans in 8 MB batches).
The requests are those of the tolerant query everywhere: ``from_json`` raises on any line
where ``try`` would give null (it checks UTF-8 inside strings, and JSON allows nothing but
ASCII outside them), and reads wrong JSON types (an ``intValue`` as a number, a status code as
a name) the same way in both.

Examples
--------
>>> import duckdb, pyarrow as pa
>>> con = duckdb.connect()
>>> good, bad = b'{"resourceSpans":[]}', b'{"resourceSpans":['
>>> lines = pa.table({"line_no": [1, 2, 3], "raw": pa.array([good, bad, good], pa.large_binary())})
>>> parsed = parse_lines(con, lines, [0, 2, 3])  # two batches: lines 1-2, line 3
>>> parsed.column("req").to_pylist()
[{'resourceSpans': []}, None, {'resourceSpans': []}]
>>> COUNTS["blocks_failed"] >= 1 and COUNTS["batches_reparsed"] >= 1
True
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from aiscale.loaders._otlp_query import in_order
from aiscale.loaders._otlp_sql import fast_parse_query, parse_query

COUNTS: collections.Counter = collections.Counter()
"""What the parses so far did, for tests and benchmarks: ``blocks`` and ``batches`` parsed,
the blocks whose fast query raised (``blocks_failed``, parsed again batch by batch) and the
batches parsed by the tolerant query (``batches_reparsed``)."""

_COUNTING = threading.Lock()
_FAILED = (duckdb.InvalidInputException, duckdb.ConversionException,
           UnicodeDecodeError)  # a message quoting a line that is not UTF-8 fails to decode
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[9, 10, 13, 32]] = True  # what ``bad_lines_query`` trims: tab, newline, CR, space


def parse_lines(con: duckdb.DuckDBPyConnection, lines: pa.Table, bounds: Sequence[int]) -> pa.Table:
    """Return ``line_no`` and the parsed request ``req`` of each line of ``lines``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection to parse on.
    lines : pyarrow.Table
        ``line_no`` (int64) and ``raw`` (large_binary), one row per line, in the file's order.
    bounds : sequence of int
        Row positions cutting ``lines`` into batches: batch ``i`` is rows ``bounds[i]`` up to
        ``bounds[i + 1]``.

    Returns
    -------
    pyarrow.Table
        ``line_no`` and ``req`` (null where the line is blank, not UTF-8, not JSON or no
        object), in the lines' order.
    """
    batches = [lines.slice(lo, hi - lo) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    if not batches:  # no lines: the empty table, typed
        return in_order(con, parse_query("otlp_batch"), otlp_batch=lines)
    threads = con.sql("SELECT current_setting('threads')").fetchall()[0][0]
    try:  # the block at once: one query (a query has a fixed cost of ~8 ms)
        parsed, failed, reparsed = in_order(con, fast_parse_query("otlp_batch"),
                                            otlp_batch=_as_text(_joined(batches))), 0, 0
    except _FAILED:  # then batch by batch, and the tolerant query for a batch that raises
        parts = [_batch(con, _pieces(batch, threads)) for batch in batches]
        parsed, failed = pa.concat_tables(t for t, _ in parts), 1
        reparsed = sum(bad for _, bad in parts)
    with _COUNTING:  # blocks are parsed in several threads
        COUNTS.update(blocks=1, blocks_failed=failed, batches=len(batches), batches_reparsed=reparsed)
    return parsed


def _batch(con: duckdb.DuckDBPyConnection, batch: pa.Table) -> tuple[pa.Table, int]:
    """One batch parsed fast, or by the tolerant query where that raises (and 1)."""
    try:
        return in_order(con, fast_parse_query("otlp_batch"), otlp_batch=_as_text(batch)), 0
    except _FAILED:
        return in_order(con, parse_query("otlp_batch"), otlp_batch=batch), 1


def _as_text(batch: pa.Table) -> pa.Table:
    """``line_no``, the bytes as ``txt`` (no copy, and no UTF-8 check: ``from_json`` checks) and
    ``blank``, chunk for chunk."""
    raw = batch.column("raw").chunks
    return pa.table({"line_no": batch.column("line_no"),
                     "txt": pa.chunked_array([c.view(pa.large_string()) for c in raw], pa.large_string()),
                     "blank": pa.chunked_array([_blank(c) for c in raw], pa.bool_())})


def _joined(batches: list[pa.Table]) -> pa.Table:
    """The batches as one table of one record batch each (DuckDB scans one in each thread)."""
    return pa.Table.from_batches([b for t in batches for b in t.to_batches()], schema=batches[0].schema)


def _pieces(batch: pa.Table, threads: int) -> pa.Table:
    """``batch`` as ``threads`` record batches of equal lines (DuckDB scans one in each thread)."""
    if threads <= 1 or batch.num_rows < 2:
        return batch
    return pa.Table.from_batches(batch.to_batches(max_chunksize=-(-batch.num_rows // threads)),
                                 schema=batch.schema)


def _blank(raw: pa.Array) -> pa.Array:
    """Which lines of ``raw`` hold nothing but whitespace. A line that starts with a byte other
    than whitespace is not blank; the few that start with whitespace are looked at whole."""
    offsets = np.frombuffer(raw.buffers()[1], dtype=np.int64)[raw.offset:raw.offset + len(raw) + 1]
    values = raw.buffers()[2]
    data = np.frombuffer(values, dtype=np.uint8) if values is not None else np.zeros(0, np.uint8)
    sizes = np.diff(offsets)
    blank = sizes == 0
    starts = np.flatnonzero(~blank)
    maybe = starts[_SPACE[data[offsets[starts]]]]
    blank[maybe] = [bool(_SPACE[data[offsets[i]:offsets[i + 1]]].all()) for i in maybe]
    return pa.array(blank)
