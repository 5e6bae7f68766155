"""Run an Ibis query on DuckDB with its SQL compiled once per fingerprint and kept on disk.

Compiling the rollup (importing Ibis and its SQL generator, building the expression,
translating it) costs about half as much CPU as running it on a million spans, and every
``aiscale facts`` paid it again. The SQL depends only on aiscale's code, the versions of
Ibis, sqlglot and DuckDB, the columns and types of the tables the query reads and the
options given, so it is compiled once for each such fingerprint and read back after, with
the Arrow schema Ibis gives the result. The cache folder is ``$AISCALE_CACHE_DIR``, else
``$XDG_CACHE_HOME/aiscale``, else ``~/.cache/aiscale``; where it cannot be written nothing is
kept and each call compiles. The SQL is made from aiscale's own expressions (table names
fixed by the code, file paths passed as values), never from trace data; a kept query that
another user owns, or that others may write, is compiled again rather than run.

Examples
--------
>>> import duckdb, pyarrow as pa
>>> con = duckdb.connect()
>>> con.register("numbers", pa.table({"x": [1, 2, 3]}))  # doctest: +ELLIPSIS
<...>
>>> total = run_compiled(con, lambda backend: backend.table("numbers").x.sum().name("total").as_table(),
...                      key={"query": "doctest-sum"}, tables=["numbers"])
>>> total.to_pylist()
[{'total': 6}]
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

_VERSIONED = ("ibis-framework", "sqlglot", "duckdb", "pyarrow")


def cache_dir() -> Path:
    """The folder compiled queries are kept in (see the module docstring)."""
    if os.environ.get("AISCALE_CACHE_DIR"):
        return Path(os.environ["AISCALE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "aiscale"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 of every aiscale module's source and of the query libraries' versions."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name in _VERSIONED:
        digest.update(f"{name}={importlib.metadata.version(name)}\0".encode())
    return digest.hexdigest()


def fingerprint(con, key: dict, tables: Sequence[str]) -> str:
    """The cache key of a query: its options, its input tables' columns and types, the code."""
    inputs = {name: [[column, str(kind)] for column, kind in zip(con.table(name).columns, con.table(name).types,
                                                                  strict=True)]
              for name in tables}
    text = json.dumps({"key": key, "inputs": inputs, "code": code_fingerprint()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def run_compiled(con, build: Callable, *, key: dict, tables: Sequence[str]) -> pa.Table:
    """Run ``build(backend)``, an Ibis table expression over ``tables`` of ``con``, as Arrow.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection holding the tables (views or registered Arrow tables).
    build : callable
        Takes an Ibis DuckDB backend on ``con`` and returns the expression; called only
        when the SQL is not cached yet.
    key : dict
        Everything besides the input tables that changes the expression (JSON values).
    tables : sequence of str
        The tables the expression reads.

    Returns
    -------
    pyarrow.Table
        The rows, with the column types Ibis gives them (as ``expr.to_pyarrow()`` does).
    """
    sql, schema = compiled_sql(con, build, key=key, tables=tables)
    return as_schema(con.sql(sql).to_arrow_table(), schema)


def compiled_sql(con, build: Callable, *, key: dict, tables: Sequence[str]) -> tuple[str, pa.Schema]:
    """The DuckDB SQL of ``build(backend)`` and the Arrow schema Ibis gives its result.

    Read from the cache when kept there, else compiled and kept (see :func:`run_compiled`);
    for a caller that runs the SQL itself (in batches, inside a larger query).
    """
    path = cache_dir() / f"query-{fingerprint(con, key, tables)}.json"
    try:
        if not _trusted(path):
            raise ValueError(f"{path}: not written by this user alone")
        entry = json.loads(path.read_text())
        return entry["sql"], pa.ipc.read_schema(pa.py_buffer(base64.b64decode(entry["schema"])))
    except (OSError, ValueError, KeyError, pa.ArrowInvalid):
        sql, schema = _compile(con, build)
        _keep(path, {"sql": sql, "schema": base64.b64encode(schema.serialize().to_pybytes()).decode()})
        return sql, schema


def _compile(con, build: Callable) -> tuple[str, pa.Schema]:
    import ibis

    backend = ibis.duckdb.from_connection(con)
    expr = build(backend).as_table()
    return str(backend.compile(expr)), expr.schema().to_pyarrow()


def _trusted(path: Path) -> bool:
    """Whether a kept query is the current user's and writable by no one else (it is run)."""
    status = path.stat()
    owner = getattr(os, "getuid", lambda: status.st_uid)()
    return status.st_uid == owner and not status.st_mode & 0o022


def _keep(path: Path, entry: dict) -> None:
    """Write ``entry`` atomically; a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".query-", suffix=".tmp")
        with os.fdopen(fd, "w") as handle:
            json.dump(entry, handle)
        os.replace(tmp, path)
    except OSError:
        pass


def as_schema(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table | pa.RecordBatch:
    """Cast DuckDB's result columns (a table or a batch) to the types Ibis gives them (as Ibis' own to_pyarrow)."""
    if table.schema == schema:
        return table
    arrays = [pa.nulls(len(table), field.type) if pa.types.is_null(field.type)
              else table.column(field.name).cast(field.type) for field in schema]
    return type(table).from_arrays(arrays, schema=schema)
