"""Run an Ibis query on DuckDB with its SQL compiled once per fingerprint and kept on disk (or shipped).

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

The queries of a store's facts (the rollup in each of its variants, and the query that finds
the traces to de-duplicate) are also shipped with aiscale, already compiled
(:mod:`aiscale.facts.rollup_sql`, written by :mod:`aiscale.facts.generate_sql`), so that the
first ``aiscale facts`` on a machine imports no Ibis either: they are used while the sources
they were compiled from are unchanged, and a test compiles them afresh and compares the text.

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
    root = _package_root()
    digest = _sources_hash([str(path.relative_to(root)) for path in sorted(root.rglob("*.py"))])
    for name in _VERSIONED:
        digest.update(f"{name}={importlib.metadata.version(name)}\0".encode())
    return digest.hexdigest()


def input_types(con, tables: Sequence[str]) -> dict[str, list[list[str]]]:
    """The columns and DuckDB types of each input table: ``{name: [[column, type], ...]}``."""
    return {name: [[column, str(kind)] for column, kind in zip(con.table(name).columns, con.table(name).types,
                                                                strict=True)]
            for name in tables}


def fingerprint(key: dict, inputs: dict) -> str:
    """The cache key of a query: its options, its input tables' columns and types
    (:func:`input_types`), the code."""
    text = json.dumps({"key": key, "inputs": inputs, "code": code_fingerprint()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def variant_id(key: dict, inputs: dict) -> str:
    """The name of a query in :mod:`aiscale.facts.rollup_sql`: its options and input types."""
    return hashlib.sha256(json.dumps({"key": key, "inputs": inputs}, sort_keys=True).encode()).hexdigest()


# the modules the shipped queries are compiled from (paths inside the package)
SHIPPED_FROM = ("schema.py", "pricing/rates.py", "pricing/genai.py", "facts/rollup.py", "facts/on_duckdb.py",
                "facts/compiled.py", "facts/generate_sql.py", "facts/frame.py")
_shipped_off: list[bool] = []


@lru_cache(maxsize=1)
def compiler_versions() -> dict[str, str]:
    """The versions of the libraries that turn an Ibis expression into SQL text (the shipped
    SQL records those it was generated with: another version may write other, equivalent text)."""
    return {name: importlib.metadata.version(name) for name in ("ibis-framework", "sqlglot")}


def source_digest() -> str:
    """SHA-256 of the sources in :data:`SHIPPED_FROM` (what the shipped SQL is valid for)."""
    try:
        return _sources_hash(SHIPPED_FROM).hexdigest()
    except OSError:  # installed without its sources: nothing to check the shipped SQL against
        return ""


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _sources_hash(names: Sequence[str]):
    """SHA-256 over each named source of the package (path inside it, then its bytes), in order."""
    root = _package_root()
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    return digest


def shipped_sql(key: dict, inputs: dict) -> tuple[str, pa.Schema] | None:
    """The SQL and result schema shipped in :mod:`aiscale.facts.rollup_sql` for ``key`` over
    tables of these ``inputs`` types (:func:`input_types`), or None.

    None as well when the sources it was generated from have changed since (its digest), or
    inside :func:`compiling_afresh`: the query is then compiled from its Ibis expression.
    """
    if _shipped_off:
        return None
    from aiscale.facts import rollup_sql

    entry = rollup_sql.QUERIES.get(variant_id(key, inputs))
    if entry is None or rollup_sql.SOURCE_DIGEST != source_digest():
        return None
    return entry[1], _read_schema(entry[2])


def parquet_versions() -> dict[str, str]:
    """The versions of the libraries that write a facts file's pandas metadata (it names them)."""
    return {name: importlib.metadata.version(name) for name in ("pandas", "pyarrow")}


def shipped_parquet_schema() -> pa.Schema | None:
    """The facts file's schema with its pandas metadata, as shipped in :mod:`aiscale.facts.rollup_sql`
    (:func:`aiscale.facts.frame.parquet_schema` without importing pandas), or None.

    None when the installed pandas or pyarrow is not the one it was written with (the metadata
    names both), when the sources changed since, or inside :func:`compiling_afresh`.
    """
    if _shipped_off:
        return None
    from aiscale.facts import rollup_sql

    entry = getattr(rollup_sql, "FACTS_PARQUET", None)
    if entry is None or entry["versions"] != parquet_versions() or rollup_sql.SOURCE_DIGEST != source_digest():
        return None
    return _read_schema(entry["schema"])


@contextmanager
def compiling_afresh() -> Iterator[None]:
    """Within the block, every query is compiled from Ibis or read from the cache folder, never
    taken from the shipped SQL (to generate it, or to compare with it)."""
    _shipped_off.append(True)
    try:
        yield
    finally:
        _shipped_off.pop()


def _read_schema(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def schema_text(schema: pa.Schema) -> str:
    """An Arrow schema as base64 text (as the cache folder and the shipped queries keep it)."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode()


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

    Taken from the shipped queries when one was generated for ``key`` and these input types
    (:func:`shipped_sql`), else read from the cache when kept there, else compiled and kept
    (see :func:`run_compiled`); for a caller that runs the SQL itself (in batches, inside a
    larger query).
    """
    inputs = input_types(con, tables)
    shipped = shipped_sql(key, inputs)
    if shipped is not None:
        return shipped
    path = cache_dir() / f"query-{fingerprint(key, inputs)}.json"
    try:
        if not _trusted(path):
            raise ValueError(f"{path}: not written by this user alone")
        entry = json.loads(path.read_text())
        return entry["sql"], _read_schema(entry["schema"])
    except (OSError, ValueError, KeyError, pa.ArrowInvalid):
        sql, schema = compile_ibis(con, build)
        _keep(path, {"sql": sql, "schema": schema_text(schema)})
        return sql, schema


def compile_ibis(con, build: Callable) -> tuple[str, pa.Schema]:
    """The DuckDB SQL Ibis compiles ``build(backend)`` to, and the Arrow schema of its result."""
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
