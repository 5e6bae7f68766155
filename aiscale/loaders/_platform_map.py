"""A platform export file mapped by its loader's DuckDB query: batches in, rows and quarantine out.

Not a loader (the leading underscore keeps it out of the registry). The file's batches of
records (:mod:`aiscale.loaders._records`) go through the loader's query
(:mod:`aiscale.loaders._platform_sql`); rows with a problem are split off as quarantined, the
record text a query leaves to Arrow is filled in, and LLM spans wrapping another are demoted.
Both cores work: all of this runs in a second thread while the caller validates and writes
the previous batch (DuckDB and Arrow run without the GIL).

A query given as text is planned once and run over the whole file as one stream (planning
the ~16 kB query cost ~0.1 CPU-s a batch); DuckDB's threads share the stream, and its rows
are cut back into the file's batches by their row numbers, so each batch gives the same
rows as a query of its own. Such a query must keep rows in file order (no join or
aggregate over rows). A query that depends on the batch (a function of it) runs per batch.

Examples
--------
>>> import tempfile
>>> from aiscale.loaders._platform_sql import extract
>>> sql = extract({"id": [("id",)]}) + "SELECT _row, id, NULL::VARCHAR AS _problem FROM y"
>>> with tempfile.TemporaryDirectory() as folder:
...     file = Path(folder) / "runs.jsonl"
...     _ = file.write_text('{"id": "a"}\\n\\n{"id": "b"}\\nnot json\\n')
...     [(rows.column("id").to_pylist(), bad) for rows, bad in mapped_batches(file, sql)]
[(['a', 'b', None], [])]
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.loaders._platform_sql import WHITESPACE, connect, demote_wrappers
from aiscale.loaders._prefetch import prefetched
from aiscale.loaders._records import LINE, ROW, read_batches
from aiscale.loaders.base import Quarantined, excerpt

SLICES, SLICE_MIN_ROWS = 2, 2048  # a batch reaches DuckDB in slices, one per thread (two cores)
OUT_ROWS = 8192  # rows per record batch of a streamed query's result
Mapped = tuple[pa.Table | None, list[Quarantined]]


def mapped_batches(path: Path, query: str | Callable[[pa.Table], str]) -> Iterator[Mapped]:
    """``(rows, quarantined)`` per batch of a file: the loader's query run, rows with a problem split off.

    ``query`` is the SQL (run once over the file, streamed), or a function of the batch giving
    it (run per batch); ``rows`` is None for a batch without records. At most two batches are
    held ahead, so memory stays bounded. DuckDB gets each batch in :data:`SLICES` slices, so
    that its threads share a batch when a core is free.
    """
    return prefetched(_streamed(path, query), name="aiscale-map") if isinstance(query, str) else _per_batch(path, query)


def _finish(con: duckdb.DuckDBPyConnection, path: Path, batch: pa.Table, bad: list[Quarantined],
            table: pa.Table) -> Mapped:
    """One batch's query result made the loader's rows (problems split off, record text, wrappers)."""
    rows, more = split_problems(table, str(path))
    rows = record_text(rows, batch)
    return (demote_wrappers(con, rows) if "kind" in rows.column_names else rows), bad + more


def _sliced(batch: pa.Table) -> pa.Table:
    if batch.num_rows < SLICES * SLICE_MIN_ROWS:
        return batch
    return pa.Table.from_batches(batch.to_batches(max_chunksize=-(-batch.num_rows // SLICES)))


def _per_batch(path: Path, query: Callable[[pa.Table], str]) -> Iterator[Mapped]:
    """The query of each batch run on it; the next batch is read, and mapped in a second thread."""
    con, views = connect(), {}

    def mapped(batch: pa.Table, bad: list[Quarantined]) -> Mapped:
        if not batch.num_rows:
            return None, bad
        return _finish(con, path, batch, bad, _run_view(con, views, batch, query(batch)))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiscale-map") as pool:
        ahead: Future | None = None
        for batch, bad in read_batches(path):
            following = pool.submit(mapped, batch, bad)
            if ahead is not None:
                yield ahead.result()
            ahead = following
        if ahead is not None:
            yield ahead.result()


def _run_view(con: duckdb.DuckDBPyConnection, views: dict[str, str], batch: pa.Table, sql: str) -> pa.Table:
    """The query run on one batch, made a view once per file (its long text is then read once)."""
    con.register("batch", _sliced(batch))
    try:
        if sql not in views:
            views[sql] = f"_mapped_{len(views)}"
            con.execute(f"CREATE TEMP VIEW {views[sql]} AS {sql}")
        return con.sql(f"SELECT * FROM {views[sql]}").to_arrow_table()
    finally:
        con.unregister("batch")


_BATCH = pa.schema([(LINE, pa.string()), (ROW, pa.int64())])


def _streamed(path: Path, sql: str) -> Iterator[Mapped]:
    """The query run once over every batch of the file, its rows cut back into the batches."""
    con = connect()
    side = con.cursor()  # wrappers are looked up while the stream runs
    handed: deque = deque()  # batches given to DuckDB whose rows are not all out yet, in file order

    def feed() -> Iterator[pa.RecordBatch]:  # run by DuckDB's threads as they need input
        # the next batch's lines are read in a thread of their own, so that a DuckDB thread
        # asking for input finds them ready instead of reading while the other one waits
        for batch, bad in prefetched(read_batches(path), name="aiscale-lines"):
            handed.append((batch, bad))
            if batch.num_rows:
                yield from _sliced(batch.cast(_BATCH) if batch.schema != _BATCH else batch).to_batches()

    try:
        con.register("batch", pa.RecordBatchReader.from_batches(_BATCH, feed()))
        result = con.sql(sql).to_arrow_reader(OUT_ROWS)
        held: list[pa.RecordBatch] = []
        last = -1
        for part in result:
            rows = part.column(ROW).to_numpy()
            if len(rows) and (rows[0] <= last or np.any(np.diff(rows) <= 0)):
                raise RuntimeError(f"{path}: DuckDB returned the rows of a streamed query out of file order")
            last = rows[-1] if len(rows) else last
            held.append(part)
            yield from _cut(handed, held, result.schema, last, lambda *a: _finish(side, path, *a))
        yield from _cut(handed, held, result.schema, None, lambda *a: _finish(side, path, *a))
    finally:
        side.close()
        con.close()


def _cut(handed: deque, held: list[pa.RecordBatch], schema: pa.Schema, last: int | None,
         finish: Callable[[pa.Table, list[Quarantined], pa.Table], Mapped]) -> Iterator[Mapped]:
    """Each handed batch whose rows are all out (a later row seen, or ``last`` None: the end)."""
    while handed:
        batch, bad = handed[0]
        if not batch.num_rows:
            handed.popleft()
            yield None, bad
            continue
        end = batch.column(ROW)[-1].as_py()
        if last is not None and last <= end:
            return
        table = pa.Table.from_batches(held, schema)
        split = int(np.searchsorted(table.column(ROW).to_numpy(), end, side="right"))
        held[:] = table.slice(split).to_batches()
        handed.popleft()
        yield finish(batch, bad, table.slice(0, split))


def record_text(rows: pa.Table, batch: pa.Table) -> pa.Table:
    """``attributes`` left null by the query (:data:`RECORD_TEXT`) become the record's text.

    The text is the batch's line with JSON's whitespace trimmed off both ends, found by
    ``_row`` (both in file order); Arrow copies it once, with no parse.
    """
    if "attributes" not in rows.column_names or not rows.num_rows:
        return rows
    attributes = rows.column("attributes")
    if not attributes.null_count:
        return rows
    lines = batch.column(LINE)
    if rows.num_rows != batch.num_rows:  # rows kept are a subset of the batch's, in the same order
        lines = lines.take(np.searchsorted(batch.column(ROW).to_numpy(), rows.column(ROW).to_numpy()))
    text = pc.utf8_trim(lines, WHITESPACE)
    filled = text if attributes.null_count == rows.num_rows else pc.if_else(pc.is_null(attributes), text, attributes)
    return rows.set_column(rows.schema.get_field_index("attributes"), "attributes", filled)


def split_problems(table: pa.Table, path: str) -> tuple[pa.Table, list[Quarantined]]:
    """Rows with a ``_problem`` become Quarantined (invalid JSON gets the parser's message).

    The rows kept lose ``_problem`` and ``line``, and come in the batch's order.
    """
    bad = pc.is_valid(table.column("_problem"))
    good = table.drop_columns([c for c in ("_problem", LINE) if c in table.column_names])
    if len(good) > 1 and not np.all(np.diff(good.column(ROW).to_numpy()) > 0):  # a join may shuffle rows
        order = pc.sort_indices(good, [(ROW, "ascending")])
        good, table, bad = good.take(order), table.take(order), pc.take(bad, order)
    if not pc.any(bad).as_py():
        return good, []
    quarantined = []
    problems = table.filter(bad).select([ROW, "_problem", LINE]).to_pylist()
    for row in problems:
        reason, line = row["_problem"], row[LINE]
        if reason == "invalid JSON":
            reason = _parser_message(line)
        quarantined.append(Quarantined(path, int(row[ROW]), str(reason), excerpt(str(line).strip())))
    return good.filter(pc.invert(bad)), quarantined


def _parser_message(line: str) -> str:
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        pass
    return "invalid JSON"
