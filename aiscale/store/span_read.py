"""Reading spans out of a store's DuckDB views: the rows and columns asked for, priced in the
same query as the facts price them, sorted by trace, start and span.

The Parquet reader reads only the columns named (projection pushdown). Prices come from the
rollup's own expression (:func:`aiscale.facts.on_duckdb.priced_calls_sql`), joined in the read,
so spans are priced once and agree with the facts to the cent. The sort runs on the Arrow
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

import pandas as pd
import pyarrow.compute as pc

from aiscale.facts.on_duckdb import frame_of, priced_calls_sql, rates_arrow

ORDER = ("trace_id", "start_time", "span_id")  # spans come back in this order, nulls last


def read_spans(con, columns: list[str], *, trace_ids=None, priced: bool = False,
               rates: pd.DataFrame | None = None) -> pd.DataFrame:
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
    rates : pandas.DataFrame, optional
        The rate table (:func:`aiscale.pricing.rates.rate_table`); None leaves calls unpriced.
    """
    where = ""
    if trace_ids is not None:
        con.register("wanted_traces", pd.DataFrame({"trace_id": pd.Series(list(trace_ids), dtype=str)}))
        where = " WHERE trace_id IN (SELECT trace_id FROM wanted_traces)"
    con.execute(f"CREATE OR REPLACE TEMP VIEW chosen AS SELECT * FROM spans{where}")
    select, join = ", ".join(f"s.{c}" for c in columns), ""
    if priced:
        table = rates_arrow(rates) if rates is not None and len(rates) else None
        if table is not None:
            con.register("rates", table)
        prices_sql = priced_calls_sql("chosen", None if table is None else table.schema)
        select += ", p.cost_usd, p.priced"
        join = f" LEFT JOIN ({prices_sql}) p ON s.trace_id = p.trace_id AND s.span_id = p.span_id"
    keys = [k for k in ORDER if k not in columns]  # sort keys not asked for: read, then dropped
    select += "".join(f", s.{k} AS _order_{k}" for k in keys)
    table = con.sql(f"SELECT {select} FROM chosen s{join}").to_arrow_table()
    order = [(k if k in columns else f"_order_{k}", "ascending") for k in ORDER]
    table = table.take(pc.sort_indices(table, sort_keys=order, null_placement="at_end"))
    frame = frame_of(table.drop_columns([f"_order_{k}" for k in keys]))
    if priced:  # as pandas gives a nullable boolean column back from NumPy: object where NA
        frame["priced"] = frame["priced"].astype("boolean").to_numpy()
    return frame
