"""Price a frame of LLM calls in DuckDB with the rollup's pricing expression, compiled once.

:func:`price_calls` gives what :func:`aiscale.pricing.rates.price_frame` gives for the same
calls (the same rate table and the same :func:`~aiscale.pricing.rates.price_spans` expression),
but sends DuckDB only the columns pricing reads, as Arrow, runs SQL compiled once and kept
(:mod:`aiscale.facts.compiled`: no Ibis at run time) and returns only the prices. For
analyses that price the same calls again under other assumptions (what-if scenarios).

Examples
--------
>>> import pandas as pd
>>> calls = pd.DataFrame({"start_time": pd.to_datetime(["2025-01-01"] * 2, utc=True),
...     "provider": ["openai", None], "model": ["gpt-4o-2024-08-06", "no-such-model"],
...     "input_tokens": [1_000_000, 10], "output_tokens": [0, 1]})
>>> price_calls(calls)[["cost_usd", "priced"]].values.tolist()
[[2.5, True], [nan, False]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale import schema
from aiscale.facts.compiled import compiled_sql
from aiscale.facts.on_duckdb import duckdb_connection, rates_arrow
from aiscale.pricing.rates import (
    COST_PARTS,
    RATE_COLUMNS,
    RATE_TABLE_COLUMNS,
    TIER_COLUMNS,
    PriceSheet,
    price_spans,
    rate_table,
)

_PRICED_FROM = ("provider", "model", "status", *schema.TOKEN_COLUMNS)


def price_calls(calls: pd.DataFrame, *, prices: PriceSheet | None = None, parts: bool = False) -> pd.DataFrame:
    """``cost_usd`` (null when unpriced), ``priced`` and ``price_source`` of each call, in order.

    Parameters
    ----------
    calls : pandas.DataFrame
        LLM calls with start_time, provider, model and the token columns (missing token
        columns count as unknown; ``status``, when present, bills a failed attempt without
        usage nothing, as the facts do).
    prices : path or DataFrame, optional
        A price sheet that wins over genai-prices.
    parts : bool, default=False
        Also return the cost terms and rates (see :func:`aiscale.pricing.rates.price_spans`).

    Returns
    -------
    pandas.DataFrame
        One row per call, in the order given (index 0..n-1).
    """
    priced = price_table(pricing_input(calls), prices=prices, parts=parts)
    return priced.to_pandas()


def pricing_input(calls: pd.DataFrame) -> pa.Table:
    """The columns pricing reads, as Arrow: provider, model, the token counts (int64, null when
    unknown), ``status`` when present, and the UTC ``day`` of each call's start.

    Examples
    --------
    >>> calls = pd.DataFrame({"start_time": pd.to_datetime(["2025-01-01 23:00"], utc=True),
    ...     "provider": ["openai"], "model": ["gpt-4o"], "input_tokens": [10.0]})
    >>> pricing_input(calls).column_names
    ['provider', 'model', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'reasoning_tokens', 'day']
    """
    columns = {}
    for name in ("provider", "model", *schema.TOKEN_COLUMNS, *(["status"] if "status" in calls else [])):
        values = calls[name] if name in calls.columns else pd.Series(pd.NA, index=calls.index)
        if name in schema.TOKEN_COLUMNS:
            columns[name] = pa.array(pd.to_numeric(values).astype("Int64"), pa.int64())
        else:
            columns[name] = pa.array(values.astype("string"), from_pandas=True).cast(pa.string())
    started = pd.to_datetime(calls["start_time"], utc=True).dt.floor("D").dt.tz_localize(None)
    columns["day"] = pa.array(started.astype("datetime64[us]"), from_pandas=True).cast(pa.date32())
    return pa.table(columns)


def price_table(table: pa.Table, *, prices: PriceSheet | None = None, parts: bool = False,
                source: bool = True, con=None) -> pa.Table:
    """Price the calls of a :func:`pricing_input` table: ``cost_usd``, ``priced``, ``price_source``
    (not with ``source=False``; and with ``parts`` the cost terms and rates), one row per call in
    the order given.

    ``con``: a :func:`~aiscale.facts.on_duckdb.duckdb_connection` to run on (left open, for
    pricing several tables in turn); by default one is opened and closed.
    """
    table = table.append_column("_row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    own = con is None
    con = duckdb_connection() if own else con
    try:
        con.register("calls_in", table)
        rates = rate_table(_keys(con), prices=prices)
        con.register("call_rates", rates_table(rates))
        sql, _ = compiled_sql(con, lambda backend: price_spans(
            backend.table("calls_in"), backend.table("call_rates"), parts=parts),
            key={"query": "price calls", "parts": parts}, tables=["calls_in", "call_rates"])
        wanted = ["_row", "cost_usd", "priced", *(["price_source"] if source else []),
                  *((*COST_PARTS, *RATE_COLUMNS) if parts else ())]
        out = con.sql(f"SELECT {', '.join(wanted)} FROM ({sql})").to_arrow_table()
    finally:
        if own:
            con.close()
    order = (_placing(out["_row"]) if out.num_rows == table.num_rows  # one row per call, as priced
             else pc.sort_indices(out["_row"]))
    return out.take(order).drop_columns(["_row"])  # in the order given


def _placing(rows: pa.ChunkedArray) -> np.ndarray:
    """The take that puts each result row back at its call's position ``rows`` (a permutation):
    one scatter, not a sort."""
    at = np.empty(len(rows), dtype=np.int64)
    at[rows.to_numpy()] = np.arange(len(rows), dtype=np.int64)
    return at


def _keys(con) -> pd.DataFrame:
    """The distinct (provider, model, day) of ``calls_in`` with their calls, as ``price_frame``
    groups them (text keys, missing ones last, dates), counted in DuckDB."""
    keys = con.sql("SELECT provider, model, day, count(*) AS n_calls FROM calls_in GROUP BY ALL").to_arrow_table()
    keys = keys.to_pandas().astype({"provider": "string", "model": "string", "n_calls": "int64"})
    keys = keys.sort_values(["provider", "model", "day"], na_position="last", kind="stable")
    return keys.reset_index(drop=True).assign(day=lambda k: pd.to_datetime(k["day"]).dt.date)


def rates_table(rates: pd.DataFrame | None) -> pa.Table:
    """A rate table as Arrow with fixed column types (an empty one when there are no rates)."""
    types = {"day": pa.date32(), **{c: pa.int64() for c in TIER_COLUMNS}, "matched_model": pa.string(),
             "price_source": pa.string(), "provider": pa.string(), "model": pa.string()}
    fixed = pa.schema([(c, types.get(c, pa.float64())) for c in RATE_TABLE_COLUMNS])
    if rates is None or not len(rates):
        return fixed.empty_table()
    return rates_arrow(rates).select(list(RATE_TABLE_COLUMNS)).cast(fixed)
