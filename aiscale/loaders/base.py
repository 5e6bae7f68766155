"""What every loader produces, and the small helpers loaders share.

A loader is a module in ``aiscale/loaders/`` with three names:

``NAME``
    the format's short name (``aiscale formats`` lists them; ``--format NAME`` forces one);
``sniff(path, head) -> bool``
    whether a file looks like this format, from its path and its first bytes;
``read(path) -> Iterator[Chunk]``
    the file as chunks of canonical rows, streaming in bounded memory.

Optional: ``READS_GZIP = True`` when ``read`` opens files through :func:`open_binary` (or the
helpers built on it), so that gzip-compressed exports are offered to it; other loaders never
see a compressed file.

Rows are counted in the source's own records: a span for span formats, a trajectory
for trajectory formats, a row for per-trace tables. For every chunk
``rows_read == rows loaded + len(quarantined)`` once validation has run.

Examples
--------
>>> import pandas as pd
>>> chunk = Chunk(spans=pd.DataFrame({"trace_id": ["t"], "span_id": ["s"]}), rows_read=1)
>>> chunk.rows_read
1
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    import pandas as pd

EXCERPT_CHARS = 200
MAX_RECORD_BYTES = 16 << 20
"""A record (JSONL line) larger than this is quarantined unread (DuckDB's own default bound)."""
MAX_DEPTH = 512
"""A record nested deeper than this (objects and arrays) is quarantined: parsers recurse."""
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


@dataclass
class Quarantined:
    """One source record that could not be used, with where it was and why."""

    source_file: str
    source_row: int | None
    reason: str
    excerpt: str = ""
    trace_id: str | None = None  # set when the record was an LLM call of a known trace: its
    lost_llm_call: bool = False  # trace's cost is then unknown, not the sum of the rest

    def __str__(self) -> str:
        where = f"{self.source_file}:{self.source_row}" if self.source_row is not None else self.source_file
        return f"{where}: {self.reason} (quarantined)"


@dataclass
class Chunk:
    """A piece of one file as canonical rows.

    Attributes
    ----------
    spans : DataFrame or None
        Span rows (any subset of :data:`aiscale.schema.SPAN_COLUMNS`; ``source``,
        ``source_file`` and ``source_row`` must be set).
    traces : DataFrame or None
        Trace rows (task, trial, variant, outcome) for the traces in ``spans``.
    facts : DataFrame or None
        Per-trace rows for sources without spans (leaderboards, per-trace tables).
    quarantined : list of Quarantined
        Records the loader itself could not read (truncated JSON, wrong structure).
    rows_read : int
        Source records read to make this chunk, quarantined ones included.
    unit : str
        What a row is for this source ("span", "trajectory", "row").
    """

    spans: pd.DataFrame | None = None
    traces: pd.DataFrame | None = None
    facts: pd.DataFrame | None = None
    quarantined: list[Quarantined] = field(default_factory=list)
    rows_read: int = 0
    unit: str = "span"


class ArrowChunk(Chunk):
    """A :class:`Chunk` whose spans and traces are Arrow tables, already in the store's schemas.

    The store validates and writes ``span_table`` and ``trace_table`` without pandas;
    ``spans`` and ``traces`` are the same rows as pandas frames, made only when read.

    Examples
    --------
    >>> import pyarrow as pa
    >>> chunk = ArrowChunk(pa.table({"span_id": ["s"]}), None, rows_read=1)
    >>> chunk.spans["span_id"].tolist(), chunk.traces
    (['s'], None)
    """

    def __init__(self, span_table: pa.Table, trace_table: pa.Table | None,
                 quarantined: list[Quarantined] | None = None, rows_read: int = 0) -> None:
        self.span_table, self.trace_table = span_table, trace_table
        super().__init__(quarantined=quarantined or [], rows_read=rows_read)

    spans = property(lambda self: _pandas(self.span_table), lambda self, value: _read_only(value))
    traces = property(lambda self: _pandas(self.trace_table), lambda self, value: _read_only(value))


def _read_only(value: object) -> None:
    """``Chunk.__init__`` sets ``spans`` and ``traces`` to None; an ArrowChunk's come from its tables."""
    if value is not None:
        raise AttributeError("an ArrowChunk's spans and traces are read from span_table and "
                             "trace_table; set those instead")


def _pandas(table: pa.Table | None) -> pd.DataFrame | None:
    if table is None:
        return None
    import pandas as pd

    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}.get)


def is_pandas(value: object, kind: str = "DataFrame") -> bool:
    """Whether ``value`` is a pandas ``kind`` ("DataFrame" or "Series"), without importing pandas.

    Nothing is a pandas object while pandas is not imported, so the Arrow paths never pay
    for importing it to ask.

    Examples
    --------
    >>> import pandas as pd
    >>> is_pandas(pd.DataFrame()), is_pandas(pd.Series(dtype="int64"), "Series"), is_pandas([])
    (True, True, False)
    """
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, getattr(pandas, kind))


def excerpt(value: Any) -> str:
    """Return a short, printable excerpt of a bad record for the quarantine file.

    Examples
    --------
    >>> excerpt({"a": 1})
    '{"a": 1}'
    """
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:EXCERPT_CHARS]


def special_file(path: str | Path) -> str | None:
    """What an existing path that is not a regular file or folder is (None otherwise).

    Examples
    --------
    >>> special_file("/dev/null")
    'a character device'
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    return next((what for test, what in _SPECIAL if test(mode)), None)


def refuse_special(path: str | Path) -> None:
    """Raise ValueError naming what a FIFO, device or socket is (reading it would block or never end)."""
    what = special_file(path)
    if what is not None:
        raise ValueError(f"{path}: {what}, not a regular file. aiscale reads export files (each "
                         "twice: to detect the format, then to load it); save the export to a file "
                         "and load that.")


def uncompressed_path(path: Path) -> Path:
    """``path`` without a ``.gz`` ending: the name a loader reads meaning from (run, instance, session).

    Examples
    --------
    >>> uncompressed_path(Path("run/trajs/x.traj.json.gz")).name
    'x.traj.json'
    """
    return path.with_name(path.name.removesuffix(".gz")) if path.name.endswith(".gz") else path


def is_gzip(path: str | Path) -> bool:
    """Whether a file is gzip-compressed (by its magic bytes)."""
    refuse_special(path)
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_binary(path: str | Path) -> IO[bytes]:
    """Open a file for reading bytes; a gzip file (by its magic bytes) is decompressed as read.

    Raises
    ------
    ValueError
        When the path is a FIFO, a device or a socket (:func:`refuse_special`).
    """
    refuse_special(path)
    handle = open(path, "rb")
    if handle.read(2) != GZIP_MAGIC:
        handle.seek(0)
        return handle
    handle.seek(0)
    return io.BufferedReader(_Gunzip(handle), buffer_size=1 << 20)


class _Gunzip(io.RawIOBase):
    """A gzip stream (any number of members) decompressed as read.

    Unlike :mod:`gzip`, a stream cut short or corrupt gives every byte that decompressed before
    the damage, then ends; ``damage`` then says what happened (see :func:`stream_damage`).
    """

    def __init__(self, raw: IO[bytes]):
        self._raw, self._unzip, self._out, self._at = raw, zlib.decompressobj(wbits=31), b"", 0
        self.damage: str | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._at >= len(self._out):
            try:
                if not self._fill():
                    return 0
            except (EOFError, zlib.error) as exc:
                self.damage, self._out, self._at = f"compressed stream is damaged ({exc})", b"", 0
                return 0
        n = min(len(buffer), len(self._out) - self._at)
        buffer[:n] = memoryview(self._out)[self._at:self._at + n]
        self._at += n
        return n

    def _fill(self) -> bool:
        """Decompress the next piece into the output; False at the clean end of the stream."""
        data = self._unzip.unconsumed_tail or self._unzip.unused_data or self._raw.read(1 << 20)
        if not data or self.damage:
            if not self._unzip.eof and not self.damage:
                raise EOFError("the compressed file ends before its end-of-stream marker (truncated)")
            return False
        if self._unzip.eof:  # a further gzip member follows
            self._unzip = zlib.decompressobj(wbits=31)
        self._out, self._at = self._unzip.decompress(data, 8 << 20), 0
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()


class DamagedStream(Exception):
    """Raised by a reader after the last whole part of a compressed stream that was cut short
    or is corrupt: ``line`` is the first line lost, ``why`` the damage."""

    def __init__(self, line: int, why: str) -> None:
        super().__init__(why)
        self.line, self.why = line, why


def stream_damage(handle: IO[bytes]) -> str | None:
    """What broke a compressed stream opened by :func:`open_binary` (None when intact or plain)."""
    return getattr(getattr(handle, "raw", None), "damage", None)


def read_some(handle: IO[bytes], n: int = -1) -> tuple[bytes, str | None]:
    """Up to ``n`` bytes (-1: all), and what broke the compressed stream when it broke before them.

    A truncated or corrupt gzip stream keeps what decompressed before the damage.
    """
    return handle.read(n), stream_damage(handle)


def export_stem(path: Path) -> str:
    """A file's name without its format suffix, and without ``.gz`` when compressed.

    Examples
    --------
    >>> export_stem(Path("runs/gpt-4o-airline.json.gz")), export_stem(Path("a.json"))
    ('gpt-4o-airline', 'a')
    """
    name = path.name.removesuffix(".gz") if path.name.endswith(".gz") else path.name
    return Path(name).stem


def read_head(path: Path, n: int = 65536) -> bytes:
    """Return the first ``n`` bytes of a file (decompressed when gzip), for format sniffing."""
    with open_binary(path) as handle:
        return read_some(handle, n)[0]


def iter_json_lines(path: Path) -> Iterator[tuple[int, Any | Quarantined]]:
    """Yield ``(line_number, parsed_object)`` per non-blank line; bad lines as Quarantined.

    Line numbers start at 1. Invalid UTF-8 or JSON, or a line nested deeper than
    :data:`MAX_DEPTH`, gives a :class:`Quarantined` naming the line and the rule instead of
    raising. Gzip files are read decompressed.
    """
    number = 0
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield number, Quarantined(str(path), number, f"line is not valid UTF-8 ({exc.reason})",
                                          excerpt(raw.decode("utf-8", "replace")))
            except json.JSONDecodeError as exc:
                yield number, Quarantined(str(path), number, f"invalid JSON: {exc.msg} at column {exc.colno}",
                                          excerpt(raw.decode("utf-8", "replace")))
            except RecursionError:
                yield number, Quarantined(str(path), number, TOO_DEEP, excerpt(raw.decode("utf-8", "replace")))
        if stream_damage(handle):
            yield number + 1, Quarantined(str(path), number + 1,
                                          f"{stream_damage(handle)}; the lines from here on are lost")


TOO_DEEP = f"record nested deeper than {MAX_DEPTH} levels"


def load_json_document(path: Path) -> Any | Quarantined:
    """Parse a whole-file JSON document; a truncated or invalid file gives a Quarantined."""
    try:
        with open_binary(path) as handle:
            return json.loads(handle.read().decode("utf-8"))
    except RecursionError:
        return Quarantined(str(path), None, TOO_DEEP)
    except UnicodeDecodeError as exc:
        return Quarantined(str(path), None, f"file is not valid UTF-8 ({exc.reason})")
    except json.JSONDecodeError as exc:
        return Quarantined(str(path), exc.lineno,
                           f"invalid JSON (truncated or edited?): {exc.msg} at line {exc.lineno} column {exc.colno}")


def json_text(value: Any) -> str | None:
    """Serialise a value to compact JSON text (None stays None), for ``attributes``/``metadata``."""
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str, ensure_ascii=False)


def folder_tag(folder: Path) -> str:
    """Six hex digits naming a folder by its resolved path: ids a loader builds from folder or
    file names (``<run>~<tag>/<instance>``) stay unique when two runs share a folder name.

    Examples
    --------
    >>> folder_tag(Path("/a/run")) != folder_tag(Path("/b/run"))
    True
    """
    return hashlib.sha1(str(Path(folder).resolve()).encode()).hexdigest()[:6]
