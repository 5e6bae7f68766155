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

import threading
from collections.abc import Callable
from functools import partial

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale import schema
from aiscale.facts.compiled import compiled_sql
from aiscale.facts.priced import rates_table
from aiscale.facts.trace_rows_sql import merged_traces_sql
from aiscale.pricing.rates import COST_PARTS, RATE_COLUMNS, price_spans
from aiscale.store import facts_cache
from aiscale.store.build_lock import built_once

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
    labels = con.sql(f"SELECT trace_id, {', '.join(LABELS)}, {project} FROM ({merged_traces_sql('traces')})"
                     ).to_arrow_table()
    spans = [*CALL_COLUMNS, "cache_write_1h_tokens", "cache_write_5m_tokens", "ttft_s", "output_lower_bound"]
    prices = ["cost_usd", "priced", "price_source", *COST_PARTS, *RATE_COLUMNS]
    order = ", ".join(f"{k} ASC NULLS LAST" for k in ORDER)
    calls = con.sql(f"SELECT {', '.join([*spans, *prices])} FROM ({priced}) ORDER BY {order}").to_arrow_table()
    return _labelled(calls, labels, at=len(spans))


def _labelled(calls: pa.Table, labels: pa.Table, *, at: int) -> pa.Table:
    """``calls`` with their trace's labels (one row per trace in ``labels``) inserted at column ``at``.

    The left join of the calls to the labels, done as one Arrow hash look-up of each call's
    trace (~0.4 CPU-s less than joining in the sorted query); a call of no labelled trace gets
    nulls.
    """
    where = pc.index_in(calls["trace_id"], value_set=labels["trace_id"].combine_chunks(), skip_nulls=True)
    for offset, name in enumerate(labels.column_names[1:]):
        calls = calls.add_column(at + offset, labels.schema.field(name), labels[name].take(where))
    return calls


def cached_calls(store, *, prices=None, days: tuple[str, str] | None = None,
                 memo: dict | None = None, trace_ids=None, lock: threading.Lock | None = None,
                 threads: int | None = None) -> pa.Table:
    """The store's priced calls (of the span partitions of ``days``), kept in ``STORE/cache/``.

    Priced with the facts' rates; a window reads only its days' span parts, as the facts do.
    Read from the cache when the manifest, the sheet's rows, the days and the code are those
    the kept file was computed under; else read with :func:`read_calls` and kept. ``memo``
    (a dict the caller keeps) holds the last table under its key, so that a second call on an
    unchanged store reads no file. ``trace_ids`` selects the calls of those traces.

    ``lock`` (the store's, :meth:`TraceStore.reading`) is held while the calls are read or built
    and released before the new file is written (~0.3 s of LZ4 for 834 k calls), so that a
    thread waiting for the calls takes them from ``memo`` meanwhile; the file is written before
    this returns. They are built once however many threads and processes ask at once
    (:func:`~aiscale.store.build_lock.built_once`): the others wait and read the kept file. ``threads`` caps DuckDB's threads for building them (default: as many
    as cores), for a caller that builds them beside other DuckDB work.
    """
    memo = {} if memo is None else memo
    table = built_once(store.root, "calls", lambda: _remembered(store, prices, days, memo),
                       lambda: _built(store, prices, days, memo, threads), lock)
    if trace_ids is None:
        return table
    wanted = pa.array(pd.unique(pd.Series(list(trace_ids), dtype=object)).astype(str), pa.string())
    return table.filter(pc.is_in(table["trace_id"], value_set=wanted))


def _remembered(store, prices, days, memo: dict) -> pa.Table | None:
    """The calls of the store's state from ``memo`` or the kept file (then remembered in
    ``memo``); None when neither has them."""
    key = facts_cache.facts_key(facts_cache.manifest_bytes(store.root), prices, days, kind="calls")
    if memo.get("calls", (None,))[0] == key:
        return memo["calls"][1]
    table = facts_cache.read_cached(store.root, key, kind="calls", fmt=FORMAT)
    if table is None or not _complete(table):
        return None
    memo["calls"] = (key, table)
    return table


def _built(store, prices, days, memo: dict, threads: int | None) -> tuple[pa.Table, Callable[[], None]]:
    """The calls read from the spans (remembered in ``memo``) and what keeps them in a file."""
    manifest = facts_cache.manifest_bytes(store.root)
    key = facts_cache.facts_key(manifest, prices, days, kind="calls")
    rates = store.rates(prices=prices)
    with store.connect(days=days) as con:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        table = read_calls(con, rates)
    memo["calls"] = (key, table)
    return table, partial(facts_cache.write_cached, store.root, key, table, manifest, kind="calls", fmt=FORMAT)


def _complete(table: pa.Table) -> bool:
    """Whether a kept table has every column a read gives (else it is read again)."""
    return ({*CALL_COLUMNS, "cost_usd", "priced", "ttft_s", "output_lower_bound", *LABELS, "project"}
            <= set(table.column_names))


def _priced(backend):
    return price_spans(backend.table("llm_calls"), backend.table("call_rates"), parts=True)
