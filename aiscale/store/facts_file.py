"""A store's facts as one Parquet file, rolled up on DuckDB without pandas.

``aiscale facts -o FILE.parquet`` and :meth:`TraceStore.facts` read the facts from one file:
the kept one (:mod:`aiscale.store.facts_cache`), else the rollup's batches written out. What the
rollup reads besides the parts is built here from DuckDB and Arrow alone: the rate table of the
store's distinct (provider, model, day) keys, looked up in genai-prices (a price sheet goes
through :func:`~aiscale.pricing.rates.rate_table`, with pandas), and the LLM calls lost at load.
So the command imports DuckDB, pyarrow and genai-prices, never pandas, on a store of spans and
genai-prices' prices (span-less fact rows and price sheets import it where they are read).
genai-prices is imported and its models matched in a background thread (:func:`genai_rates_ahead`,
Python holding the GIL) while DuckDB rolls up the parts of the facts that need no rates.

Examples
--------
>>> import tempfile, pyarrow.parquet as pq
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> with_facts_file(root, lambda path: pq.read_metadata(path).num_rows)  # nothing loaded: no traces
0
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow as pa

from aiscale import schema
from aiscale.facts.on_duckdb import RATE_TYPES, SQL_TYPES, duckdb_connection, rollup_batches
from aiscale.pricing.genai import RATE_TABLE_COLUMNS, genai_rates
from aiscale.store import facts_cache
from aiscale.store.manifest import TABLES, list_parts, read_manifest

T = TypeVar("T")

RATE_SCHEMA = pa.schema([(c, RATE_TYPES[c]) for c in RATE_TABLE_COLUMNS])

# the UTC day of a span's start: CAST(start_time AS DATE) under TimeZone UTC, from the epoch
# count (the cast goes through the time-zone calendar, about 2.5 times slower)
_DAY = "DATE '1970-01-01' + CAST(floor(epoch_us(start_time) / 86400000000) AS INTEGER)"
KEYS_SQL = (f"SELECT provider, model, {_DAY} AS day, count(*) AS n_calls FROM spans "
            "WHERE kind = 'llm' GROUP BY ALL")


def spans_view_sql(repeat: bool, source: str = "spans_all") -> str:
    """The ``spans`` view over ``source`` (the parts read with ``filename=True``): one row per
    (trace_id, span_id), the first by source file, row and part when two files carried it."""
    if not repeat:  # no two files carried the same span: nothing to de-duplicate
        return f"CREATE VIEW spans AS SELECT * EXCLUDE (filename) FROM {source}"
    return ("CREATE VIEW spans AS SELECT * EXCLUDE (rn, filename) FROM (SELECT *, row_number() "
            "OVER (PARTITION BY trace_id, span_id ORDER BY source_file, source_row, filename) "
            f"AS rn FROM {source}) WHERE rn = 1")


def rate_keys(parts: list[str], repeat: bool, con: duckdb.DuckDBPyConnection) -> pa.Table:
    """``provider, model, day, n_calls`` of the LLM calls in span ``parts`` (:data:`KEYS_SQL`),
    with the view ``spans`` over the parts left in ``con``."""
    con.read_parquet(parts, filename=True).create_view("spans_all")
    con.execute(spans_view_sql(repeat))
    return con.sql(KEYS_SQL).to_arrow_table()


def genai_rate_table(keys: pa.Table) -> pa.Table | None:
    """The rate table of ``keys`` (``provider, model, day``) from genai-prices alone, as Arrow.

    The rows :func:`~aiscale.pricing.rates.rate_table` gives without a price sheet, typed as
    :func:`~aiscale.facts.on_duckdb.rates_arrow` types them (:data:`RATE_SCHEMA`); a key with
    no model or no day is never joined to a call, and one genai-prices does not know has no row
    (None when no key has one). The rows are made in DuckDB: pyarrow imports pandas to convert
    Python values.

    Examples
    --------
    >>> import datetime as dt
    >>> keys = pa.table({"provider": ["openai"], "model": ["gpt-4o-2024-08-06"], "day": [dt.date(2025, 1, 1)]})
    >>> genai_rate_table(keys).column("matched_model").to_pylist()
    ['gpt-4o']
    """
    days: dict[tuple[str | None, str], list] = {}
    for provider, model, day in zip(*(keys.column(c).to_pylist() for c in ("provider", "model", "day")),
                                    strict=True):
        if model is not None and day is not None:
            days.setdefault((provider, model), []).append(day)
    rows = [{"provider": provider, "model": model, **row}
            for (provider, model), found in days.items() for row in genai_rates(provider, model, found)]
    return arrow_rows(rows, RATE_SCHEMA) if rows else None


def arrow_rows(rows: list[dict], target: pa.Schema) -> pa.Table:
    """``rows`` (dicts; a missing key is null) as an Arrow table of schema ``target``, made by DuckDB.

    Examples
    --------
    >>> arrow_rows([{"a": 1.5}, {}], pa.schema([("a", pa.float64()), ("b", pa.string())])).to_pylist()
    [{'a': 1.5, 'b': None}, {'a': None, 'b': None}]
    """
    names = [f"c{i}" for i in range(len(target))]
    casts = ", ".join(f'CAST({name} AS {SQL_TYPES[field.type]}) AS "{field.name}"'
                      for name, field in zip(names, target, strict=True))  # the schema's own names
    one = "(" + ", ".join("?" * len(target)) + ")"
    values = [row.get(field.name) for row in rows for field in target]
    con = duckdb.connect()
    try:
        table = con.sql(f"SELECT {casts} FROM (VALUES {', '.join([one] * len(rows))}) AS t({', '.join(names)})",
                        params=values).to_arrow_table()
    finally:
        con.close()
    return table if table.schema.equals(target) else table.cast(target)  # a cast imports pyarrow.compute


def store_rates(parts: list[str], repeat: bool, prices=None) -> pa.Table | None:
    """The rate table of the LLM calls in span ``parts`` as Arrow, or None when there are none.

    With a price ``prices`` sheet, :func:`~aiscale.pricing.rates.rate_table` builds it (pandas),
    from the same keys :meth:`TraceStore.rates` reads.
    """
    if not parts:
        return None
    con = duckdb_connection()
    try:
        keys = rate_keys(parts, repeat, con)
        if not keys.num_rows:
            return None
        if prices is None:
            return genai_rate_table(keys)
        from aiscale.facts.on_duckdb import rates_arrow
        from aiscale.pricing.rates import rate_table

        return rates_arrow(rate_table(con.sql(KEYS_SQL).df(), prices=prices))
    finally:
        con.close()


def genai_rates_ahead(parts: list[str], repeat: bool) -> Callable[[], pa.Table | None] | None:
    """Start making the rate table of the LLM calls in span ``parts`` from genai-prices in a
    background thread; return a function that waits for it (and raises its error), or None
    when there are no parts.

    The table of :func:`store_rates` without a price sheet (None when there are no LLM calls
    or genai-prices knows none of them). Reading the keys (DuckDB), importing genai-prices and
    matching each model (Python, ~0.45 CPU-s holding the GIL) run while DuckDB computes the
    parts of the rollup that need no rates (:func:`~aiscale.facts.on_duckdb.rollup_batches`
    calls the function after them).

    Examples
    --------
    >>> genai_rates_ahead([], False) is None  # no span parts: no calls to price
    True
    """
    return in_background(lambda: store_rates(parts, repeat)) if parts else None


def in_background(compute: Callable[[], T]) -> Callable[[], T]:
    """Start ``compute()`` in a thread; return a function that waits for its result and returns
    it, or raises its error in the caller.

    Examples
    --------
    >>> in_background(lambda: 6 * 7)()
    42
    """
    done: Future = Future()

    def run() -> None:
        try:
            done.set_result(compute())
        except BaseException as error:  # handed to the thread that waits for the result
            done.set_exception(error)

    threading.Thread(target=run, name="aiscale-background").start()
    return done.result


def lost_calls(root: Path) -> pa.Table | None:
    """``trace_id, lost_llm_calls``: LLM calls quarantined at load whose trace is known, or None.

    The rollup counts them as unpriced calls, so those traces' cost is unknown, not 0.
    """
    files = [str(f) for f in sorted((Path(root) / "quarantine").glob("*.jsonl"))]
    if not files:
        return None
    con = duckdb.connect()
    try:
        rows = con.read_json(files, format="newline_delimited", union_by_name=True)
        if "lost_llm_call" not in rows.columns:  # written before lost calls were recorded
            return None
        found = rows.filter("lost_llm_call AND trace_id IS NOT NULL").aggregate(
            "CAST(trace_id AS VARCHAR) AS trace_id, count(*)::BIGINT AS lost_llm_calls", "trace_id")
        table, target = found.to_arrow_table(), pa.schema([("trace_id", pa.string()), ("lost_llm_calls", pa.int64())])
        return table if table.schema.equals(target) else table.cast(target)
    finally:
        con.close()


def stored_facts(parts: list[str]) -> pa.Table | None:
    """The span-less fact rows of ``parts`` in the facts schema, one per trace (the first part's),
    or None when the store has none."""
    if not parts:
        return None
    con = duckdb_connection()
    try:
        rows = con.read_parquet(parts, filename=True).query("facts_raw_all", (
            "SELECT * EXCLUDE (rn, filename) FROM (SELECT *, row_number() OVER (PARTITION BY trace_id "
            "ORDER BY filename) AS rn FROM facts_raw_all) WHERE rn = 1"))
        return schema.conform(rows.df(), "facts")
    finally:
        con.close()


def with_facts_file(root: Path, use: Callable[[Path], T], *, prices=None, days: tuple[str, str] | None = None,
                    rates: Callable[[], object] | None = None, lost: Callable[[], object] | None = None) -> T:
    """``use(path)`` of the Parquet file of the store's DuckDB facts (kept in ``cache/``, else rolled up).

    Parameters
    ----------
    root : Path
        The store folder.
    use : callable
        Called with the facts file's path while it exists; its result is returned.
    prices : path or DataFrame, optional
        A price sheet that overrides genai-prices.
    days : (str, str), optional
        Read only the span parts of these days (:meth:`TraceStore.parts`).
    rates, lost : callable, optional
        Give the rate table and the lost calls (pandas or Arrow) when the caller keeps them;
        by default :func:`store_rates` and :func:`lost_calls`.

    Notes
    -----
    A kept file's footer was checked before it was trusted; pages damaged behind a sound footer
    show only when read, so such a file is dropped and the facts rolled up once more.
    """
    root = Path(root)
    for retry in (False, True):
        with _facts_file(root, prices, days, rates, lost) as path:
            try:
                return use(path)
            except (OSError, pa.ArrowException):
                if retry or not facts_cache.is_kept(root, path):
                    raise
                path.unlink(missing_ok=True)
    raise AssertionError("the second pass returns or raises")


def _facts_file(root: Path, prices, days, rates, lost):
    """A ``with`` block's facts file (:func:`~aiscale.store.facts_cache.facts_file`) of the store's state."""
    manifest = facts_cache.manifest_bytes(root)
    listing = read_manifest(root)
    parts = {name: list_parts(root, listing, name, days=days) for name in TABLES}  # raises when one is missing
    repeat = bool(listing.get("spans_may_repeat", False))

    def batches():
        if rates is None and prices is None:  # genai-prices looked up while the rollup starts
            given = genai_rates_ahead(parts["spans"], repeat)
        else:  # looked up while the rollup's parts that need no rates run
            given = in_background(rates or (lambda: store_rates(parts["spans"], repeat, prices)))
        return rollup_batches(parts, given, dedupe=repeat, lost=lost() if lost else lost_calls(root),
                              stored=stored_facts(parts["facts"]))

    return facts_cache.facts_file(root, facts_cache.facts_key(manifest, prices, days), manifest, batches)


def export_facts_parquet(root: Path, out: Path, *, prices=None, since=None, until=None,
                         days: tuple[str, str] | None = None, **sources) -> Path:
    """Write the store's facts to ``out`` (Parquet) atomically, as :meth:`TraceStore.export_facts`.

    ``since``/``until`` (UTC timestamps) keep the traces started in that window, reading the
    span parts of ``days``; ``sources`` are the ``rates``/``lost`` of :func:`with_facts_file`.
    """
    from aiscale.store.safe_output import write_atomically

    out = Path(out)
    return with_facts_file(root, lambda path: write_atomically(
        out, lambda tmp: facts_cache.export_parquet(path, tmp, since=since, until=until)),
        prices=prices, days=days, **sources)
