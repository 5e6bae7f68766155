"""OpenTelemetry OTLP JSON traces (Collector file exporter; GenAI, OpenInference, OpenLLMetry).

One ``ExportTraceServiceRequest`` per line, or one pretty-printed request in a file. Ids in hex
or base64 (decoded to lowercase hex), times in unix nanoseconds (strings or integers). The file
is read in blocks of lines (into buffers used again, :mod:`aiscale.loaders._block_buffers`);
DuckDB parses each batch of a block (:mod:`aiscale.loaders._otlp_parse`: a bad line gives no
span and stops nothing), Arrow unnests it, the attribute look-ups are done in Arrow
(:mod:`aiscale.loaders._otlp_attrs`; keys no span of the block has are nulls in the query), hex
ids in NumPy (:mod:`aiscale.loaders._otlp_ids`), the mapping in SQL (:mod:`aiscale.loaders._otlp_sql`),
the ``attributes`` JSON of what it did not read in Arrow (:mod:`aiscale.loaders._otlp_json`),
and the rows stream out as chunks of at most :data:`CHUNK_ROWS` spans, in bounded memory,
with no Python loop per span. Blocks are mapped in :func:`workers` threads at once (two on two
cores, each with its own DuckDB connection), and the chunks come out in the file's order. Each chunk carries Arrow tables already in the store's span and
trace schemas (:mod:`aiscale.loaders._otlp_rows`), which the store validates and writes
without pandas. Only the lines that gave no span are looked at again, to say why they are bad.

Values that cannot be what they claim are quarantined with their rule, never stored as
null: a token count that is not a whole number within int64 (1e20, 2^63, NaN, Infinity), an
``intValue`` on any attribute that is not an int64, a start time of zero or below, before
1990 (a time in seconds, milliseconds or microseconds read as nanoseconds) or past 2262 (the
end of int64 nanoseconds). An end time of ``0`` is protobuf's "unset" and is read as unknown.
A line over :data:`MAX_LINE_BYTES` is quarantined unread (the rest of the file loads); a
UTF-8 BOM at the start of the file is skipped.

Mapping (first present wins): kind from ``openinference.span.kind``, ``gen_ai.operation.name``,
``traceloop.span.kind``, ``llm.request.type``; provider from ``gen_ai.provider.name``,
``gen_ai.system``, ``llm.provider``, ``llm.system``; model from the response model before the
request model (``llm.model_name`` between them); tokens from the GenAI, OpenLLMetry and
OpenInference usage attributes, on ``llm`` and ``embedding`` spans only (totals that chain and
agent spans carry stay in ``attributes``). Where a source's input count is smaller than its
own cache reads plus writes (or output smaller than reasoning), it evidently excludes them and
they are added (marked ``aiscale.tokens_normalised`` in ``attributes``). Trace rows come from
``aiscale.task.id``, ``aiscale.trial``, ``aiscale.variant``, ``aiscale.outcome.success``,
``aiscale.outcome.score``, ``user.id``, ``session.id`` (or ``gen_ai.conversation.id``) and
``metadata``, on the root span first, then any span, then the resource.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
>>> _ = path.write_text('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c",'
...     '"spanId":"b7ad6b7169203331","name":"chat","startTimeUnixNano":"1700000000000000000",'
...     '"attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}}]}]}]}]}\\n')
>>> sniff(path, path.read_bytes())
True
>>> chunk = next(read(path))
>>> chunk.spans[["span_id", "kind", "source_row"]].to_dict("records")
[{'span_id': 'b7ad6b7169203331', 'kind': 'llm', 'source_row': 1}]
"""

from __future__ import annotations

import collections
import functools
import multiprocessing
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.loaders._block_buffers import BlockBuffers
from aiscale.loaders._newlines import newline_ends
from aiscale.loaders._otlp_attrs import absent, lookup_columns, read_positions
from aiscale.loaders._otlp_flatten import flatten_requests
from aiscale.loaders._otlp_ids import hex_ids
from aiscale.loaders._otlp_json import attributes_json, int_bad
from aiscale.loaders._otlp_parse import parse_lines
from aiscale.loaders._otlp_quarantine import bad_lines
from aiscale.loaders._otlp_query import in_order
from aiscale.loaders._otlp_rows import arrow_chunk
from aiscale.loaders._otlp_seen import SeenSpans as _SeenSpans
from aiscale.loaders._otlp_sql import (
    FIRST_OF,
    MACROS,
    MIN_NANOS,
    READS,
    USE_FLAGS,
    bad_lines_query,
    lookup_keys,
    spans_query,
)
from aiscale.loaders._prefetch import mapped_in_order
from aiscale.loaders.base import (
    Chunk,
    DamagedStream,
    open_binary,
    stream_damage,
)

NAME = "otlp"
READS_GZIP = True  # a .jsonl.gz export is read as it is
PRIORITY = 20

CHUNK_ROWS = 100_000
BLOCK_BYTES = 48 << 20  # two blocks are mapped at once: 64 MB ones took 1.23 GB at 1 M spans
BATCH_BYTES = 8 << 20
MAX_DOCUMENT_BYTES = 1 << 30
MAX_LINE_BYTES = 32 << 20  # one request (line) over this is quarantined, not parsed
BOM = b"\xef\xbb\xbf"
MEMORY_LIMIT = "1GB"
WORKERS = 0  # threads mapping blocks; 0: see ``workers()``
MAX_WORKERS = 2  # each holds a block being mapped (see ``read``)

COUNTS: collections.Counter = collections.Counter()
"""What the reads so far did, for tests and benchmarks: ``ids`` read, and how many of them
(``ids_in_duckdb``) were not plain hex and were read by the mapping query's ``otel_id``;
``blocks`` mapped, and over them the look-up keys no span of the block had (``keys_absent``,
written as nulls)."""

_COUNTING = threading.Lock()
_START = re.compile(rb'^\s*\{\s*"resourceSpans"\s*:\s*\[')


def sniff(path: Path, head: bytes) -> bool:
    """Whether the file starts like an OTLP JSON ``ExportTraceServiceRequest`` (line or document)."""
    return bool(_START.match(head.removeprefix(BOM)))


def read(path: Path) -> Iterator[Chunk]:
    """Yield the spans and traces of an OTLP JSON file, in chunks of at most CHUNK_ROWS spans.

    :func:`workers` threads map the next blocks (each with its own DuckDB connection) while
    the caller handles a chunk; the chunks come in the file's order.
    """
    path = Path(path)
    seen = _SeenSpans()
    threads = workers()
    mapped = mapped_in_order(_blocks_to_map(path), _map_block, workers=threads, name="aiscale-otlp",
                             opened=functools.partial(_connect, max(1, _cores() // threads)))
    for batch, block in mapped:
        if "span_id" in batch.schema.names:
            yield arrow_chunk(batch, str(path), seen)
        else:
            yield bad_lines(batch, path, *block)


def workers() -> int:
    """Threads mapping blocks: :data:`WORKERS`, else one per core up to :data:`MAX_WORKERS`;
    one in a worker process of a load of several files (the files already share the cores)."""
    if WORKERS:
        return WORKERS
    if multiprocessing.parent_process() is not None:
        return 1
    return max(1, min(MAX_WORKERS, _cores()))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _blocks_to_map(path: Path) -> Iterator[tuple]:
    """The blocks of :func:`_blocks`; a cut or corrupt gzip stream ends them with a block that
    says so (what decompressed before it is loaded)."""
    try:
        yield from _blocks(path)
    except DamagedStream as damaged:
        yield np.array([damaged.line]), np.array([0, 0]), memoryview(b""), np.array([0]), damaged.why


def _map_block(block: tuple, con: duckdb.DuckDBPyConnection) -> Iterator[tuple[pa.RecordBatch, tuple | None]]:
    """The record batches of one block: spans, or bad lines with the block (for their excerpts;
    the spans' batches let go of the block's bytes as soon as it is mapped)."""
    if len(block) == 5:  # the damaged stream's block: its one bad line
        block, why = block[:4], block[4]
        yield pa.record_batch({"line_no": block[0], "line_bad": [why]}), block
        return
    for batch in _query_block(con, *block):
        yield batch, (None if "span_id" in batch.schema.names else block)


def _connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    spill = Path(tempfile.gettempdir()) / "aiscale-duckdb"
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'; SET TimeZone = 'UTC'; "
                f"SET temp_directory = '{spill}'; SET preserve_insertion_order = false; "
                "SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(MACROS)
    return con


def _blocks(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray, memoryview, np.ndarray]]:
    """Yield (line numbers, byte offsets, bytes, line sizes) per block of whole lines.

    Offsets have one more entry than line numbers; line ``i`` is ``data[offsets[i]:offsets[i+1]]``
    (its newline included). A pretty-printed single document becomes one line. A UTF-8 BOM
    at the start of the file is dropped. A line longer than a block and than
    :data:`MAX_LINE_BYTES` is not held in memory: its block holds only its first bytes, and
    its size says how long it was (it is quarantined).
    """
    with open_binary(path) as handle:  # gzip is decompressed as read; nothing seeks back
        head = handle.read(1 << 16)
        if _is_document(head):
            data = (head + handle.read(MAX_DOCUMENT_BYTES + 1 - len(head))).removeprefix(BOM)
            data = data.replace(b"\n", b" ")
            if len(data) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"{path}: a pretty-printed OTLP document over "
                                 f"{MAX_DOCUMENT_BYTES >> 20} MB; export one request per line.")
            yield np.array([1]), np.array([0, len(data)]), memoryview(data), np.array([len(data)])
            return
        buffers = BlockBuffers(BLOCK_BYTES)  # blocks are read into buffers used again
        pending = buffers.filled(handle, (head.removeprefix(BOM),), max(BLOCK_BYTES - len(head), 0))
        first_line = 1
        while pending:
            follows = handle.read(1)  # the next block's first byte: whether more follows
            ends = _line_ends(pending, whole=not follows)
            if not len(ends):  # no newline in the block: read on (a line longer than a block)
                more = follows + handle.read(BLOCK_BYTES - 1)
                if len(pending) + len(more) > MAX_LINE_BYTES:  # over the bound: skip it
                    head, size, rest = _skip_line(handle, bytes(pending) + more)
                    yield np.array([first_line]), np.array([0, len(head)]), memoryview(head), \
                        np.array([size])
                    first_line += 1
                    pending = memoryview(rest or handle.read(BLOCK_BYTES))
                    continue
                pending = memoryview(bytes(pending) + more)
                continue
            end = int(ends[-1])
            offsets = np.concatenate([[0], ends])
            yield (np.arange(first_line, first_line + len(ends)), offsets, pending[:end], np.diff(offsets))
            first_line += len(ends)
            # the next block: this one's last (unfinished) line, the byte read ahead, the rest
            pending = buffers.filled(handle, (pending[end:], follows), BLOCK_BYTES - 1) if follows else b""
        if stream_damage(handle):
            raise DamagedStream(first_line, f"{stream_damage(handle)}; the lines from here on are lost")


def _skip_line(handle, data: bytes) -> tuple[bytes, int, bytes]:
    """Read past the line ``data`` starts; return its first bytes, its size and what follows."""
    head, size = data[:1024], 0
    while data:
        cut = data.find(b"\n")
        if cut >= 0:
            return head, size + cut + 1, data[cut + 1:]
        size += len(data)
        data = handle.read(BLOCK_BYTES)
    return head, size, b""


def _line_ends(view: memoryview, *, whole: bool = True) -> np.ndarray:
    """Return the offset just past each line of ``view``; with ``whole`` the last line may lack
    a newline (without it, bytes after the last newline are no line). Newlines are found by
    :func:`~aiscale.loaders._newlines.newline_ends`."""
    ends = newline_ends(view)
    if whole and len(view) and (len(ends) == 0 or ends[-1] != len(view)):
        ends = np.append(ends, len(view))
    return ends.astype(np.int64)


def _is_document(head: bytes) -> bool:
    """A pretty-printed request: the first line alone is not the whole object."""
    first = head.removeprefix(BOM).lstrip().split(b"\n", 1)[0].strip()
    return first in (b"{", b'{"resourceSpans": [', b'{ "resourceSpans": [')


def _query_block(con: duckdb.DuckDBPyConnection, line_numbers: np.ndarray, offsets: np.ndarray,
                 data: memoryview, sizes: np.ndarray) -> Iterator[pa.RecordBatch]:
    lines = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(line_numbers), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    table = pa.table({"line_no": line_numbers, "raw": lines})
    too_long = sizes > MAX_LINE_BYTES
    if too_long.any():
        yield pa.record_batch({"line_no": line_numbers[too_long], "line_bad": [
            f"record of {size / (1 << 20):.1f} MB on one line, over the "
            f"{MAX_LINE_BYTES >> 20} MB bound (export fewer spans per request)"
            for size in sizes[too_long]]})
        table = table.filter(pa.array(~too_long))
        line_numbers = line_numbers[~too_long]
        offsets = np.concatenate([[0], np.cumsum(sizes[~too_long])])
    cuts = np.searchsorted(offsets, np.arange(BATCH_BYTES, offsets[-1], BATCH_BYTES))
    bounds = np.unique(np.concatenate([[0], cuts, [len(line_numbers)]]))
    flat = flatten_requests(con, parse_lines(con, table, bounds.tolist()))
    spanless = np.setdiff1d(line_numbers, pc.unique(flat.column("line_no")).to_numpy())
    bad = _classify(con, table, spanless) if len(spanless) else None
    if bad is not None and bad.num_rows:
        yield from bad.to_batches()
    if not flat.num_rows:
        return
    yield from _mapped_spans(con, flat)


def _classify(con: duckdb.DuckDBPyConnection, table: pa.Table, lines: np.ndarray) -> pa.Table:
    """Which of ``lines`` (the few that gave no span) are bad, and why."""
    rows = np.searchsorted(table.column("line_no").to_numpy(), lines)
    return in_order(con, bad_lines_query("otlp_failed"), otlp_failed=table.take(rows))


def _mapped_spans(con: duckdb.DuckDBPyConnection, flat: pa.Table) -> Iterator[pa.RecordBatch]:
    """The canonical span rows of the flat spans ``flat``, in batches of at most
    :data:`CHUNK_ROWS`: the mapping query's columns, then the ``attributes`` JSON written in
    Arrow from what the query did not read (:mod:`aiscale.loaders._otlp_json`)."""
    with_lookups, missing, looked_up = _with_lookups(con, flat)
    mapped = in_order(con, spans_query("otlp_flat", missing), otlp_flat=with_lookups)
    mapped = _with_passed(mapped, with_lookups)
    del with_lookups
    used = read_positions(looked_up, mapped, READS)
    attributes = attributes_json(con, flat, used, mapped.column("tokens_normalised"))
    flags = [*USE_FLAGS, "counted", "tokens_normalised"]
    at = mapped.column_names.index(flags[0])
    mapped = mapped.drop_columns(flags).add_column(at, "attributes", attributes)
    for name in ("start", "end"):
        at = mapped.column_names.index(f"{name}_ns")
        mapped = mapped.set_column(at, f"{name}_time", _nanos_time(mapped.column(at)))
    yield from mapped.to_batches(CHUNK_ROWS)


def _with_passed(mapped: pa.Table, with_lookups: pa.Table) -> pa.Table:
    """The mapped spans with the :data:`~aiscale.loaders._otlp_sql.PASSED` columns, taken as
    they are from the query's input ``with_lookups`` (``line_no`` and the ids first, ``name``
    after ``kind``), and the :data:`~aiscale.loaders._otlp_sql.FIRST_OF` columns."""
    passed = {"line_no": with_lookups.column("line_no")}
    passed.update({name: _copied(with_lookups.column(f"id:{name}")) for name in ("trace_id", "span_id", "parent_id")})
    for at, (name, column) in enumerate(passed.items()):
        mapped = mapped.add_column(at, name, column)
    name = _copied(pc.struct_field(with_lookups.column("sp"), "name"))
    mapped = mapped.add_column(mapped.column_names.index("kind") + 1, "name", name)
    for name, sources in FIRST_OF.items():  # the query wrote them as nulls
        present = [with_lookups.column(s) for s in sources if s in with_lookups.column_names]
        first = pc.coalesce(*present) if len(present) > 1 else present[0] if present else None
        if first is not None:
            mapped = mapped.set_column(mapped.column_names.index(name), name, first)
    return mapped


def _copied(column: pa.ChunkedArray) -> pa.Array:
    """``column`` in memory of its own: the ids and names are views of the parsed block
    (NumPy keeps hex ids as they are), which would stay alive with them until the main thread
    has written the chunk."""
    return pa.concat_arrays(column.chunks) if column.num_chunks else pa.array([], column.type)


def _nanos_time(nanos: pa.ChunkedArray) -> pa.Array:
    """The UTC times of ``nanos`` (unix nanoseconds), to the microsecond below; null before
    1990 (the query's ``nanos_bad`` says why)."""
    nanos = nanos.combine_chunks()
    values = nanos.fill_null(0).to_numpy()
    return pa.array(values // 1000, pa.timestamp("us", tz="UTC"),
                    mask=np.asarray(pc.is_null(nanos), dtype=bool) | (values < MIN_NANOS))


def _with_lookups(con: duckdb.DuckDBPyConnection, flat: pa.Table) -> tuple[pa.Table, frozenset[str], dict]:
    """``flat`` with the ``a:`` attribute look-up columns, ``int_bad`` (a span's first
    ``intValue`` that is not an int64) and the ids read in NumPy; the look-up keys no span of
    the block has (they get no columns; the query writes them as nulls); and the ``a:``/``p:``
    columns (for :func:`~aiscale.loaders._otlp_attrs.read_positions`).

    The span struct ``sp`` goes on without its attribute list, which the query does not read.
    """
    keys = lookup_keys()
    batches = flat.to_batches()
    if len(batches) != 1:  # one batch (copied only when the table had several chunks)
        batches = flat.combine_chunks().to_batches()
    batch = batches[0]
    span = batch.column("sp")
    attrs = pc.struct_field(span, "attributes")
    columns = lookup_columns(attrs, keys)
    missing = absent(columns, keys)
    looked_up = {name: array for name, array in columns.items() if name[2:] not in missing}
    columns = {name: array for name, array in looked_up.items() if name.startswith("a:")}
    columns["int_bad"] = int_bad(con, attrs)
    counts = collections.Counter(blocks=1, keys_absent=len(missing))
    for column, field, nbytes in (("trace_id", "traceId", 16), ("span_id", "spanId", 8),
                                  ("parent_id", "parentSpanId", 8)):
        exported = pc.struct_field(span, field)
        ids, read = hex_ids(exported, nbytes)
        if not read.all():  # base64, or not an id: the rest, by the query's ``otel_id``
            rows = pa.array(~read)
            others = in_order(con, f"SELECT otel_id(x, {nbytes}) AS id FROM otlp_ids",
                              otlp_ids=pa.table({"x": exported.filter(rows)}))
            ids = pc.replace_with_mask(ids, rows, others.column("id").combine_chunks())
        columns[f"id:{column}"] = ids
        counts.update(ids=len(read), ids_in_duckdb=int(np.count_nonzero(~read)))
    with _COUNTING:  # blocks are mapped in several threads
        COUNTS.update(counts)
    names = [f.name for f in span.type if f.name != "attributes"]
    lean = pa.StructArray.from_arrays([pc.struct_field(span, n) for n in names], names=names,
                                      mask=span.is_null())
    arrays = [lean if n == "sp" else batch.column(n) for n in batch.schema.names]
    table = pa.Table.from_batches([pa.RecordBatch.from_arrays(
        [*arrays, *columns.values()], names=[*batch.schema.names, *columns])])
    return table, missing, looked_up
