"""Reading spans out of a store's DuckDB views: the rows and columns asked for, priced in the
same query as the facts price them, sorted by trace, start and span.

The Parquet reader reads only the columns named (projection pushdown). Prices come from the
rollup's own expression (:func:`aiscale.facts.rollup.priced_llm_calls`, its SQL compiled once
and kept, see :mod:`aiscale.facts.compiled`), joined in the read, so spans are priced once and
agree with the facts to the cent. The sort runs on the Arrow
result (one thread, no payload shuffled between DuckDB's sort threads: less CPU than
``ORDER BY`` for the same order).

Examples
--------
>>> import duckdb
>>> from aiscale import schema
>>> con = duckdb.connect()
>>> _ = con.register("spans", schema.schema_of("spans").empty_table())
>>> read_spans(con, ["trace_id", "kind"], priced=True).columns.tolist()
['trace_id', 'kind', 'cost_usd', 'priced']
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.facts.compiled import compiled_sql
from aiscale.facts.on_duckdb import frame_of, rates_arrow

ORDER = ("trace_id", "start_time", "span_id")  # spans come back in this order, nulls last


def read_spans(con, columns: list[str], *, trace_ids=None, priced: bool = False,
               rates: pd.DataFrame | Callable[[], pd.DataFrame | None] | None = None,
               calls: pa.Table | None = None) -> pd.DataFrame:
    """Spans of the ``spans`` view of ``con``: ``columns`` (+ ``cost_usd``, ``priced``), sorted.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection with a ``spans`` view of canonical spans (:meth:`TraceStore.connect`).
    columns : list of str
        Canonical span columns to read.
    trace_ids : list of str, optional
        Only these traces.
    priced : bool, default=False
        Add ``cost_usd`` (null when unpriced and on spans that are no LLM call) and ``priced``
        (NA on spans that are no LLM call).
    rates : pandas.DataFrame or callable, optional
        The rate table (:func:`aiscale.pricing.rates.rate_table`), or a function returning it
        (called only when the spans are priced here); None leaves calls unpriced.
    calls : pyarrow.Table, optional
        The same spans' LLM calls already priced with ``rates`` (:func:`aiscale.store.calls_read.read_calls`,
        same order): their ``cost_usd`` and ``priced`` are taken row for row instead of pricing
        again, when their ``trace_id`` and ``span_id`` are those of the LLM spans read.
    """
    where = ""
    if trace_ids is not None:
        con.register("wanted_traces", pd.DataFrame({"trace_id": pd.Series(list(trace_ids), dtype=str)}))
        where = " WHERE trace_id IN (SELECT trace_id FROM wanted_traces)"
    con.execute(f"CREATE OR REPLACE TEMP VIEW chosen AS SELECT * FROM spans{where}")
    if priced and calls is not None:
        table = _sorted(con, columns, ("trace_id", "span_id", "kind"), "", "")
        table = _with_call_prices(table, calls)
        if table is not None:
            return _frame(table, priced=True)
    select, join = "", ""
    if priced:
        rates = rates() if callable(rates) else rates
        rated = rates_arrow(rates) if rates is not None and len(rates) else None
        if rated is not None:
            con.register("rates", rated)
        inputs = ["chosen", *(["rates"] if rated is not None else [])]
        prices_sql, _ = compiled_sql(con, lambda backend: _priced(backend, rated is not None),
                                     key={"query": "priced spans"}, tables=inputs)
        select = ", p.cost_usd, p.priced"
        join = f" LEFT JOIN ({prices_sql}) p ON s.trace_id = p.trace_id AND s.span_id = p.span_id"
    return _frame(_sorted(con, columns, (), select, join), priced=priced)


def _sorted(con, columns: list[str], hidden: tuple[str, ...], select: str, join: str) -> pa.Table:
    """The chosen spans' ``columns`` (+ ``select``), sorted; columns not asked for are ``_order_*``."""
    keys = [k for k in dict.fromkeys((*ORDER, *hidden)) if k not in columns]  # read, dropped later
    sql = ", ".join([*(f"s.{c}" for c in columns), *(f"s.{k} AS _order_{k}" for k in keys)]) + select
    table = con.sql(f"SELECT {sql} FROM chosen s{join}").to_arrow_table()
    order = [(k if k in columns else f"_order_{k}", "ascending", "at_end") for k in ORDER]
    return table.take(pc.sort_indices(table, sort_keys=order))


def _with_call_prices(table: pa.Table, calls: pa.Table) -> pa.Table | None:
    """``cost_usd`` and ``priced`` of the LLM spans taken from ``calls`` (same order), else None."""
    def column(name: str) -> pa.ChunkedArray:
        return table[name if name in table.column_names else f"_order_{name}"]

    llm = np.flatnonzero(pc.fill_null(pc.equal(column("kind"), "llm"), False).to_numpy(zero_copy_only=False))
    if len(llm) != calls.num_rows or not all(
            pc.all(pc.equal(column(k).take(llm), calls[k])).as_py() in (True, None) for k in ("trace_id", "span_id")):
        return None
    cost = np.full(table.num_rows, np.nan)
    cost[llm] = calls["cost_usd"].to_numpy(zero_copy_only=False)
    priced = np.full(table.num_rows, None, dtype=object)
    priced[llm] = calls["priced"].to_numpy(zero_copy_only=False)
    return table.append_column("cost_usd", pa.array(cost, from_pandas=True)).append_column(
        "priced", pa.array(priced, pa.bool_()))


def _frame(table: pa.Table, *, priced: bool) -> pd.DataFrame:
    frame = frame_of(table.drop_columns([c for c in table.column_names if c.startswith("_order_")]))
    if priced:  # as pandas gives a nullable boolean column back from NumPy: object where NA
        frame["priced"] = frame["priced"].astype("boolean").to_numpy()
    return frame


def _priced(backend, with_rates: bool):
    from aiscale.facts.rollup import priced_llm_calls  # Ibis: only when the SQL is compiled

    return priced_llm_calls(backend.table("chosen"), backend.table("rates") if with_rates else None)
