"""The priced LLM calls of a store, read in one query and kept beside the facts.

A report's spend sections (spend over time, cache savings, what-if, reported versus computed,
latency per call) read the same LLM calls, priced under the report's sheet. :func:`read_calls`
reads them out of the store's DuckDB views with only the columns those sections use, prices
them with the rollup's own expression (:func:`aiscale.pricing.rates.price_spans` with its cost
terms, compiled to SQL once and kept, see :mod:`aiscale.facts.compiled`) against the store's
rate table (the one the facts are priced with), and adds the recorded 1-hour / 5-minute
cache-write tokens, the time to first token (:func:`aiscale.schema.ttft_sql`) and the trace
labels; nothing else of the attributes is read. :func:`cached_calls` keeps the result as
``STORE/cache/calls-<key>.arrow`` (Arrow IPC, LZ4) under the facts' key (:mod:`aiscale.store.facts_cache`):
a load, another or edited price sheet, another window or other code is another key, and a
damaged file is read again from the spans.

Examples
--------
>>> import duckdb
>>> from aiscale import schema
>>> con = duckdb.connect()
>>> _ = con.register("spans", schema.schema_of("spans").empty_table())
>>> _ = con.register("traces", schema.schema_of("traces").empty_table())
>>> read_calls(con, None).column_names[:3]
['trace_id', 'span_id', 'start_time']
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale import schema
from aiscale.facts.compiled import compiled_sql
from aiscale.facts.priced import rates_table
from aiscale.facts.trace_rows_sql import merged_traces_sql
from aiscale.pricing.rates import COST_PARTS, RATE_COLUMNS, price_spans
from aiscale.store import facts_cache

CALL_COLUMNS = ("trace_id", "span_id", "start_time", "end_time", "status", "provider", "model",
                *schema.TOKEN_COLUMNS, "reported_cost_usd")
LABELS = ("task_id", "variant", "user_id", "session_id")
ORDER = ("trace_id", "start_time", "span_id")  # as the spans: by trace, start and span, nulls last
FORMAT = "arrow"  # kept as Arrow IPC with LZ4: ~0.2 CPU-s to read 834k calls, Parquet ~0.7
LOWER_BOUND_SQL = ("CASE WHEN contains(attributes, 'output_tokens_lower_bound') THEN coalesce(TRY_CAST("
                   "json_extract(attributes, '$.output_tokens_lower_bound') AS BOOLEAN), false) ELSE false END")
"""Whether a loader marked the call's output count a lower bound (Claude Code's streaming-start
counts, :func:`aiscale.loaders.claude_code.output_is_lower_bound`); only attributes naming it are parsed."""


def read_calls(con, rates: pd.DataFrame | None) -> pa.Table:
    """The LLM calls of the ``spans`` view of ``con``, priced with ``rates``, with their labels.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection with ``spans`` and ``traces`` views (:meth:`TraceStore.connect`).
    rates : pandas.DataFrame or None
        The rate table (:func:`aiscale.pricing.rates.rate_table`); None leaves calls unpriced.

    Returns
    -------
    pyarrow.Table
        :data:`CALL_COLUMNS`, ``cache_write_1h_tokens``, ``cache_write_5m_tokens``, ``ttft_s``,
        ``output_lower_bound``,
        the trace labels and ``project``, ``cost_usd`` (null when unpriced), ``priced``,
        ``price_source``, the cost terms and rates; sorted by trace, start and span.
    """
    con.register("call_rates", rates_table(rates))
    con.execute(f"CREATE OR REPLACE TEMP VIEW llm_calls AS SELECT {', '.join(CALL_COLUMNS)}, "
                f"{schema.cache_write_ttl_sql('attributes')}, {schema.ttft_sql('attributes')} AS ttft_s, "
                f"{LOWER_BOUND_SQL} AS output_lower_bound, CAST(start_time AS DATE) AS day "
                "FROM spans WHERE kind = 'llm'")
    priced, _ = compiled_sql(con, _priced, key={"query": "priced calls with parts"},
                             tables=["llm_calls", "call_rates"])
    project = ("coalesce(json_extract_string(metadata, '$.project'), "
               "json_extract_string(metadata, '$.cwd')) AS project")
    labels = f"SELECT trace_id, {', '.join(LABELS)}, {project} FROM ({merged_traces_sql('traces')})"
    spans = [*CALL_COLUMNS, "cache_write_1h_tokens", "cache_write_5m_tokens", "ttft_s", "output_lower_bound"]
    prices = ["cost_usd", "priced", "price_source", *COST_PARTS, *RATE_COLUMNS]
    select = [*(f"p.{c}" for c in spans), *(f"t.{c}" for c in (*LABELS, "project")), *(f"p.{c}" for c in prices)]
    order = ", ".join(f"p.{k} ASC NULLS LAST" for k in ORDER)
    return con.sql(f"SELECT {', '.join(select)} FROM ({priced}) p "
                   f"LEFT JOIN ({labels}) t ON p.trace_id = t.trace_id ORDER BY {order}").to_arrow_table()


def cached_calls(store, *, prices=None, days: tuple[str, str] | None = None,
                 memo: dict | None = None, trace_ids=None) -> pa.Table:
    """The store's priced calls (of the span partitions of ``days``), kept in ``STORE/cache/``.

    Priced with the facts' rates; a window reads only its days' span parts, as the facts do.
    Read from the cache when the manifest, the sheet's rows, the days and the code are those
    the kept file was computed under; else read with :func:`read_calls` and kept. ``memo``
    (a dict the caller keeps) holds the last table under its key, so that a second call on an
    unchanged store reads no file. ``trace_ids`` selects the calls of those traces.
    """
    table = _kept_calls(store, prices, days, {} if memo is None else memo)
    if trace_ids is None:
        return table
    wanted = pa.array(pd.unique(pd.Series(list(trace_ids), dtype=object)).astype(str), pa.string())
    return table.filter(pc.is_in(table["trace_id"], value_set=wanted))


def _kept_calls(store, prices, days, memo: dict) -> pa.Table:
    manifest = facts_cache.manifest_bytes(store.root)
    key = facts_cache.facts_key(manifest, prices, days, kind="calls")
    if memo.get("calls", (None,))[0] == key:
        return memo["calls"][1]
    table = facts_cache.read_cached(store.root, key, kind="calls", fmt=FORMAT)
    if table is None or not _complete(table):
        rates = store.rates(prices=prices)
        with store.connect(days=days) as con:
            table = read_calls(con, rates)
        facts_cache.write_cached(store.root, key, table, manifest, kind="calls", fmt=FORMAT)
    memo["calls"] = (key, table)
    return table


def _complete(table: pa.Table) -> bool:
    """Whether a kept table has every column a read gives (else it is read again)."""
    return ({*CALL_COLUMNS, "cost_usd", "priced", "ttft_s", "output_lower_bound", *LABELS, "project"}
            <= set(table.column_names))


def _priced(backend):
    return price_spans(backend.table("llm_calls"), backend.table("call_rates"), parts=True)
