"""Trace facts (and the priced LLM calls) kept beside the store, keyed on everything they are
computed from.

Rolling a large store's spans up to facts takes seconds, and a report, ``aiscale check`` and
``aiscale facts`` on an unchanged store compute the same rows again. The facts table of a
DuckDB rollup is kept as ``STORE/cache/facts-<key>.parquet``; the key is a SHA-256 of:

- the manifest's bytes: which files are loaded, their parts and checksums, whether spans
  repeat (a load, a repair or ``--drop-damaged`` writes another manifest);
- the price sheet's rows as read (a path is read, so editing the file changes the key);
- the days read (a window reads only its days' parts);
- the code and data that compute facts: the fingerprint the compiled rollup query is kept under
  (every aiscale module's source, the query libraries' versions; see
  :mod:`aiscale.facts.compiled`) and genai-prices' version.

The priced calls a report reads (:mod:`aiscale.store.calls_read`) are kept the same way, under
the same key with ``kind="calls"``, as ``calls-<key>.arrow`` (``fmt="arrow"``: Arrow IPC with
LZ4 buffers, which reads back in a fifth of the CPU time of Parquet; the facts stay Parquet,
the format of an export).

Anything else is another key and the facts are rolled up afresh. A cache is written only when
the manifest did not change while the facts were computed; a store that cannot be written to
(or a damaged cache file) is no error: the facts are computed instead. The newest
:data:`KEEP` files are kept.

Examples
--------
>>> import tempfile, pyarrow as pa
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> key = facts_key(b"", None, None)  # a store nothing was loaded into
>>> read_cached(root, key) is None
True
>>> write_cached(root, key, pa.table({"trace_id": ["t"]}), b"")
>>> read_cached(root, key).num_rows
1
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from aiscale import schema
from aiscale.facts.frame import parquet_schema
from aiscale.facts.on_duckdb import BATCH_ROWS
from aiscale.store.build_lock import FOLDER, building
from aiscale.store.manifest import MANIFEST
from aiscale.store.safe_output import write_atomically

KEEP = 4

STALE_S = 3600
"""Age (seconds) after which a temporary file of the cache is left over, not being written."""


def code_fingerprint() -> str:
    """The compiled-query fingerprint (every aiscale module, the query libraries) and genai-prices' version."""
    from aiscale.facts.compiled import code_fingerprint as source_fingerprint
    from aiscale.pricing.genai import genai_version

    return hashlib.sha256(f"{source_fingerprint()}\0{genai_version()}".encode()).hexdigest()


def sheet_fingerprint(prices) -> str:
    """The price sheet's rows as :func:`~aiscale.pricing.sheet.read_price_sheet` reads them."""
    if prices is None:
        return "genai-prices"
    from aiscale.pricing.sheet import read_price_sheet

    return read_price_sheet(prices).to_csv(index=False)  # floats written exactly (shortest round trip)


def manifest_bytes(root: Path) -> bytes:
    """The manifest as stored (empty for a store nothing was loaded into)."""
    path = Path(root) / MANIFEST
    return path.read_bytes() if path.exists() else b""


def facts_key(manifest: bytes, prices, days: tuple[str, str] | None, *, kind: str = "facts") -> str:
    """The cache key of the facts (or ``kind="calls"``: the priced calls) of a store state, a
    price sheet and the days read."""
    digest = hashlib.sha256(code_fingerprint().encode())
    for part in (kind.encode(), manifest, sheet_fingerprint(prices).encode(), repr(days).encode()):
        digest.update(len(part).to_bytes(8, "little") + part)
    return digest.hexdigest()


def read_cached(root: Path, key: str, *, kind: str = "facts", fmt: str = "parquet") -> pa.Table | None:
    """The cached table of ``key`` (facts, or ``kind="calls"``), or None (none kept, or unreadable).

    ``fmt`` is the file's format: ``"parquet"``, or ``"arrow"`` (Arrow IPC, LZ4-compressed).
    """
    path = Path(root) / FOLDER / f"{kind}-{key}.{fmt}"
    if not path.is_file():
        return None
    try:
        return feather.read_table(path, memory_map=False) if fmt == "arrow" else pq.read_table(path)
    except (OSError, pa.ArrowException):
        return None


def write_cached(root: Path, key: str, table: pa.Table, manifest: bytes, *, kind: str = "facts",
                 fmt: str = "parquet") -> None:
    """Keep ``table`` under ``key`` (in ``fmt``, as :func:`read_cached` reads it) when the manifest
    is still ``manifest``; drop older files of the same ``kind``."""
    folder = Path(root) / FOLDER
    try:
        if manifest_bytes(root) != manifest:  # a load committed meanwhile: these facts are of neither state
            return
        folder.mkdir(exist_ok=True)
        write_atomically(folder / f"{kind}-{key}.{fmt}", lambda tmp: feather.write_feather(
            table, tmp, compression="lz4") if fmt == "arrow" else pq.write_table(table, tmp))
        _prune(folder, kind)
    except OSError:
        return


@contextmanager
def facts_file(root: Path, key: str, manifest: bytes,
               batches: Callable[[], Iterable[pa.RecordBatch]]) -> Iterator[Path]:
    """The Parquet file of the facts of ``key``: the kept one, else ``batches()`` written out.

    The batches (in the facts schema) are written one at a time, so memory stays flat in the
    number of traces, in row groups of :data:`~aiscale.facts.on_duckdb.BATCH_ROWS` and with the
    pandas metadata of an export (:func:`~aiscale.facts.frame.parquet_schema`), so that
    :func:`export_parquet` copies its bytes instead of writing it again. The new file is kept
    under ``key`` when the manifest is still ``manifest`` (as :func:`write_cached`); otherwise,
    or when the store cannot be written to, it is a temporary file, removed when the ``with``
    block ends.
    """
    kept = Path(root) / FOLDER / f"facts-{key}.parquet"
    if _readable(kept):
        yield kept
        return
    with building(root, "facts"):  # another thread or process rolling them up: wait, then read its file
        left = None if _readable(kept) else _written(root, kept, manifest, batches)
    if left is None:
        yield kept
        return
    try:
        yield left
    finally:
        left.unlink(missing_ok=True)


def _written(root: Path, kept: Path, manifest: bytes,
             batches: Callable[[], Iterable[pa.RecordBatch]]) -> Path | None:
    """Write the facts and keep them as ``kept`` (None); the temporary file when they cannot be
    kept (a store we may only read, or a load committed meanwhile), which the caller removes."""
    try:
        kept.parent.mkdir(exist_ok=True)
        tmp = kept.parent / f".facts-{uuid.uuid4().hex}.tmp"
        tmp.open("xb").close()  # made as any file is (the umask's mode), as the other kept files are
    except OSError:  # a store we may only read: the facts go to the temp folder, private
        fd, name = tempfile.mkstemp(prefix="aiscale-facts-", suffix=".parquet")
        os.close(fd)
        tmp = Path(name)
    try:
        write_batches(tmp, rebatched(batches(), BATCH_ROWS), parquet_schema())
        return None if _keep(root, kept, tmp, manifest) else tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_batches(path: Path, batches: Iterable[pa.RecordBatch], target: pa.Schema) -> None:
    """Write record batches to one Parquet file with the schema ``target``, a row group each."""
    plain = target.remove_metadata()
    with pq.ParquetWriter(path, target) as writer:
        for batch in batches:  # a cast only where the types differ (it imports pyarrow.compute)
            writer.write_batch(batch if batch.schema.equals(plain) else batch.cast(target))


def rebatched(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``batches`` again, in batches of exactly ``rows`` rows (the last one fewer).

    Examples
    --------
    >>> parts = [pa.record_batch({"x": pa.array(range(n), pa.int64())}) for n in (3, 0, 4, 2)]
    >>> [len(b) for b in rebatched(parts, 4)]
    [4, 4, 1]
    """
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not len(batch):
            continue
        held.append(batch)
        count += len(batch)
        while count >= rows:
            table = pa.Table.from_batches(held).combine_chunks()
            yield table.slice(0, rows).to_batches()[0]
            rest = table.slice(rows)
            held, count = (rest.to_batches() if rest.num_rows else []), rest.num_rows
    if count:
        yield pa.Table.from_batches(held).combine_chunks().to_batches()[0]


def export_parquet(source: Path, out: Path, *, since=None, until=None) -> None:
    """Copy a facts file to ``out`` batch by batch, as :meth:`TraceStore.export_facts` writes it.

    ``out`` reads back into pandas as the facts frame would (the pandas metadata of
    ``pa.Table.from_pandas``); with ``since``/``until`` only traces started in the window.
    A file written by :func:`facts_file` is already that file: its bytes are copied.
    """
    if since is None and until is None and _is_export(source):
        shutil.copyfile(source, out)
        return

    from aiscale.facts.window import in_window  # pandas: only a window's export needs it

    def rows() -> Iterator[pa.RecordBatch]:
        for batch in pq.ParquetFile(source).iter_batches(batch_size=BATCH_ROWS):
            if since is None and until is None:
                yield batch
            else:
                yield batch.filter(pa.array(in_window(batch.column("started_at").to_pandas(), since, until)))

    write_batches(out, rows(), parquet_schema())


def _is_export(path: Path) -> bool:
    """Whether a facts file has the schema and row groups :func:`export_parquet` would write."""
    file = pq.ParquetFile(path)
    groups = [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]
    return file.schema_arrow.equals(parquet_schema(), check_metadata=True) and all(
        n == BATCH_ROWS for n in groups[:-1])


def is_kept(root: Path, path: Path) -> bool:
    """Whether ``path`` is a facts file kept in the store's cache (not a temporary one)."""
    path = Path(path)
    return path.parent.resolve() == (Path(root) / FOLDER).resolve() and path.name.startswith("facts-")


def facts_kept(root: Path, prices=None, days: tuple[str, str] | None = None) -> bool:
    """Whether the facts of the store's state, ``prices`` and ``days`` are kept (so reading them
    rolls nothing up)."""
    key = facts_key(manifest_bytes(root), prices, days)
    return _readable(Path(root) / FOLDER / f"facts-{key}.parquet")


def read_facts(path: Path) -> pa.Table:
    """A facts file as a table in the facts schema (a kept file has the export's schema: the
    pandas metadata, and text as large strings)."""
    return pq.read_table(path).cast(schema.schema_of("facts"))


def _readable(path: Path) -> bool:
    """A kept facts file whose footer reads and whose columns are the facts schema's (as an
    export writes them, or as the facts schema has them)."""
    try:
        found = pq.read_schema(path).remove_metadata() if path.is_file() else None
    except (OSError, pa.ArrowException):
        return False
    return found is not None and (found.equals(parquet_schema().remove_metadata())
                                  or found.equals(schema.schema_of("facts")))


def _keep(root: Path, kept: Path, tmp: Path, manifest: bytes) -> Path | None:
    """Move ``tmp`` to ``kept`` when it sits in the cache and the manifest is unchanged (the
    folders compared resolved: a store named by a relative path has its temporary files named
    by an absolute one)."""
    if tmp.parent.resolve() != kept.parent.resolve() or manifest_bytes(root) != manifest:
        return None
    try:
        os.replace(tmp, kept)
    except OSError:
        return None
    _prune(kept.parent)
    return kept


def _prune(folder: Path, kind: str = "facts") -> None:
    """Drop all but the newest :data:`KEEP` files of ``kind``, in any format (another process may be
    pruning too), and temporary files of ``kind`` older than :data:`STALE_S` (a process killed while
    writing one, e.g. a report kernel stopped after a failed cell, leaves it)."""
    try:
        kept = sorted((p for p in folder.glob(f"{kind}-*") if p.suffix in (".parquet", ".arrow")), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)
        for tmp in folder.glob(f".{kind}-*.tmp"):
            if time.time() - tmp.stat().st_mtime > STALE_S:
                tmp.unlink(missing_ok=True)
    except OSError:
        return
