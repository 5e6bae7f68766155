"""A loaded file's spans written as one Parquet part per day, in row groups of many chunks.

A loader hands the store its spans a chunk at a time; each chunk holds spans of many days.
Writing each chunk's rows of each day as a file of its own gave a 1 M-span file ~170 parts of
~6,000 rows, and every later read (the store checks, the load summary, the facts rollup) paid
for opening each one. Here each day has one open writer for the whole file (``day=DAY/STEM-
NNNNN.parquet``, NNNNN the first chunk it holds rows of) and a day's rows are held back until they
fill a row group of :data:`ROW_GROUP_ROWS`, or until the chunks held reach
:data:`BUFFER_BYTES`, when every day's held rows are written. Memory stays bounded however
long the file is; at most :data:`MAX_OPEN` writers are open at once (a day evicted and met
again gets a new part).

Rows keep the order they had within each day (the chunks in order, each chunk's rows of that
day in their order), as the per-chunk parts listed in order had them.

Examples
--------
>>> import tempfile, pyarrow as pa
>>> from pathlib import Path
>>> from aiscale import schema
>>> spans = schema.conform_table(pa.table({"trace_id": ["t", "t"], "span_id": ["a", "b"],
...     "start_time": pa.array([0, 86_400_000_000], pa.timestamp("us", tz="UTC"))}), "spans")
>>> with DayParts(Path(tempfile.mkdtemp()), "stem") as parts:
...     parts.add(spans, 0)
...     parts.add(spans, 1)
>>> parts.names
['day=1970-01-01/stem-00000.parquet', 'day=1970-01-02/stem-00000.parquet']
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 122_880  # DuckDB's own row group size
BUFFER_BYTES = 128 << 20  # chunks held for fuller row groups; beyond it every day is written
MAX_OPEN = 64  # writers (files) open at once
CLOSE_THREADS = 2  # days written at once when a file's parts are closed

DICTIONARY = ["trace_id", "kind", "name", "status", "error_type", "provider", "model", "tool_name",
              "source", "source_file"]
"""Span columns written dictionary-encoded (few distinct values); ids, attributes and tool
arguments are nearly all distinct, and trying a dictionary on them cost a third of the write."""

TEXT = ("attributes", "tool_arguments")
"""The long text columns: written without min/max statistics (no reader prunes on them)."""


def writer_options(schema: pa.Schema) -> dict:
    """The ParquetWriter options of a span part: zstd, dictionaries on :data:`DICTIONARY`, and
    min/max statistics on every column but :data:`TEXT`.

    LZ4 for the short columns was measured too: it cut the Parquet step by ~0.25 CPU-s per 1 M
    spans (~0.5% of a load) but grew the parts from ~29 to ~48 MB, so zstd stays. Parts
    written with statistics on every column (before this choice) read the same.
    """
    return {"compression": "zstd", "use_dictionary": DICTIONARY,
            "write_statistics": [name for name in schema.names if name not in TEXT]}


_NO_DAY = np.iinfo(np.int64).max  # sorts after every day, as "day=unknown" does after "day=2..."


def day_numbers(start_time: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Days since 1970-01-01 (UTC) of each span start; the largest int64 where unknown."""
    micros = pc.fill_null(pc.cast(start_time, pa.int64()), 0).to_numpy(zero_copy_only=False)
    known = pc.is_valid(start_time).to_numpy(zero_copy_only=False)
    return np.where(known, np.floor_divide(micros, 86_400_000_000), _NO_DAY)


def day_folder(day: int) -> str:
    """``day=YYYY-MM-DD`` of a day number, ``day=unknown`` for :func:`day_numbers`' unknown."""
    return "day=unknown" if day == _NO_DAY else "day=" + str(np.datetime64(int(day), "D"))


class DayParts:
    """The span parts of one file, written as its chunks come (see the module docstring).

    Parameters
    ----------
    folder : Path
        The ``spans`` folder of the staging area; parts go under ``folder/day=.../``.
    stem : str
        The start of each part's name (the file's digest prefix).
    """

    def __init__(self, folder: Path, stem: str):
        self.folder, self.stem = Path(folder), stem
        self.names: list[str] = []
        self._writers: dict[int, pq.ParquetWriter] = {}  # oldest use first
        self._held: dict[int, list[tuple[int, pa.Table]]] = {}  # day -> (chunk, rows)
        self._sizes: dict[int, int] = {}  # chunk -> bytes of its day-sorted copy

    def __enter__(self) -> DayParts:
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is None:
            self.close()
        else:  # the staging folder is removed by the caller
            for writer in self._writers.values():
                writer.close()

    def add(self, spans: pa.Table, chunk: int) -> None:
        """Take one chunk's validated spans (the span schema); ``chunk`` numbers new parts."""
        if not spans.num_rows:
            return
        days = day_numbers(spans.column("start_time"))
        if np.any(days[1:] < days[:-1]):  # one copy in day order; each day is a slice of it
            order = np.argsort(days, kind="stable")
            days, spans = days[order], spans.take(pa.array(order))
        values, starts = np.unique(days, return_index=True)
        self._sizes[chunk] = spans.nbytes
        for day, lo, hi in zip(values.tolist(), starts.tolist(), [*starts[1:].tolist(), len(days)], strict=True):
            self._held.setdefault(day, []).append((chunk, spans.slice(lo, hi - lo)))
            if sum(rows.num_rows for _, rows in self._held[day]) >= ROW_GROUP_ROWS:
                self._write(day)
        if self._held_bytes() > BUFFER_BYTES:
            for day in list(self._held):
                self._write(day)

    def close(self) -> list[str]:
        """Write what is held, close every part; return the part names (``day=.../name``), sorted.

        The days are written :data:`CLOSE_THREADS` at a time (the Parquet writer lets go of the
        GIL): this runs after the file's last chunk, when nothing else is left to do.
        """
        days = list(self._held)
        with ThreadPoolExecutor(max_workers=CLOSE_THREADS, thread_name_prefix="aiscale-parts") as pool:
            for at in range(0, len(days), MAX_OPEN):  # a group's writers are never evicted by it
                list(pool.map(_write_rows, [self._writer_and_rows(day) for day in days[at:at + MAX_OPEN]]))
            list(pool.map(pq.ParquetWriter.close, self._writers.values()))
        self._writers.clear()
        self.names.sort()
        return self.names

    def _held_bytes(self) -> int:
        """Bytes of the chunks some held rows still point into (each day's rows are slices)."""
        live = {chunk for held in self._held.values() for chunk, _ in held}
        self._sizes = {chunk: size for chunk, size in self._sizes.items() if chunk in live}
        return sum(self._sizes.values())

    def _write(self, day: int) -> None:
        _write_rows(self._writer_and_rows(day))

    def _writer_and_rows(self, day: int) -> tuple[pq.ParquetWriter, pa.Table]:
        """The writer of ``day`` (opened if need be, now the most recently used) and its held rows."""
        held = self._held.pop(day)
        rows = pa.concat_tables([part for _, part in held])
        writer = self._writers.pop(day, None) or self._open(day, held[0][0], rows.schema)
        self._writers[day] = writer  # most recently used last
        return writer, rows

    def _open(self, day: int, chunk: int, schema: pa.Schema) -> pq.ParquetWriter:
        if len(self._writers) >= MAX_OPEN:
            self._writers.pop(next(iter(self._writers))).close()
        name = f"{day_folder(day)}/{self.stem}-{chunk:05d}.parquet"
        while name in self.names:  # cannot happen: a day's next part starts at a later chunk
            name = name.replace(".parquet", "-b.parquet")
        (self.folder / name).parent.mkdir(parents=True, exist_ok=True)
        self.names.append(name)
        return pq.ParquetWriter(self.folder / name, schema, **writer_options(schema))


def _write_rows(job: tuple[pq.ParquetWriter, pa.Table]) -> None:
    """Write a day's held rows as one row group of its part."""
    writer, rows = job
    writer.write_table(rows, row_group_size=rows.num_rows)
