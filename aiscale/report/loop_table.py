"""The per-trace loop table: what the loop and latency sections read from spans, read once and kept.

Stuck loops need each trace's longest run of identical tool calls, and the latency shares the
time LLM and tool calls were in flight; both come from 1.6 M tool and LLM spans of a 100 k-trace
store, which a report would otherwise read, sort and factorise every time. :func:`loop_table`
computes one row per trace with spans (the library's own :func:`~aiscale.analysis.loops.stuck.tool_runs`
and :func:`~aiscale.analysis.tradeoffs.latency.busy_by_kind` over a DuckDB read of only those
columns) and keeps it as ``STORE/cache/loops-<key>.parquet`` under the key and rules of the
kept priced calls (:mod:`aiscale.store.facts_cache`): a load, another or edited price sheet,
another window (its days' span parts, as the facts and calls read them) or other code is
another key, and a damaged or incomplete file is computed again, never trusted.

Examples
--------
>>> import duckdb
>>> from aiscale import schema
>>> con = duckdb.connect()
>>> _ = con.register("spans", schema.schema_of("spans").empty_table())
>>> compute_loop_table(con).column_names
['trace_id', 'tool_repeats', 't_since', 'llm_busy_s', 'tool_busy_s']
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.analysis.loops.calls import already_ordered
from aiscale.analysis.loops.stuck import tool_runs
from aiscale.analysis.tradeoffs.latency import busy_by_kind
from aiscale.facts.on_duckdb import frame_of
from aiscale.facts.window import window_days
from aiscale.report.context import Context, kept_for, memoised
from aiscale.store import facts_cache
from aiscale.store.build_lock import built_once

KIND = "loops"
SCHEMA = pa.schema([("trace_id", pa.string()), ("tool_repeats", pa.float64()), ("t_since", pa.float64()),
                    ("llm_busy_s", pa.float64()), ("tool_busy_s", pa.float64())])
"""One row per trace with spans: tool runs (consecutive, as the report counts them) and busy time."""


def loop_table(store, *, prices=None, since=None, until=None) -> pa.Table:
    """The store's per-trace loop table (of the window's span parts), kept in ``STORE/cache/``.

    Read from the cache when the manifest, the sheet's rows, the days and the code are those the
    kept file was computed under; else computed with :func:`compute_loop_table` and kept, once
    however many threads and processes ask at once (:func:`~aiscale.store.build_lock.built_once`).
    """
    days = window_days(since, until)[2]

    def build() -> tuple[pa.Table, Callable[[], None]]:
        manifest = facts_cache.manifest_bytes(store.root)
        with store.connect(days=days) as con:
            table = compute_loop_table(con)
        key = facts_cache.facts_key(manifest, prices, days, kind=KIND)
        return table, partial(facts_cache.write_cached, store.root, key, table, manifest, kind=KIND)

    # built once when a report reads ahead (aiscale.report.prefetch), or another process asks too
    return built_once(store.root, KIND, lambda: _kept(store, prices, days), build, store.reading(KIND))


def _kept(store, prices, days) -> pa.Table | None:
    """The kept loop table of the store's state, the sheet and the days; None when none is."""
    key = facts_cache.facts_key(facts_cache.manifest_bytes(store.root), prices, days, kind=KIND)
    table = facts_cache.read_cached(store.root, key, kind=KIND)
    return table if table is not None and table.schema.equals(SCHEMA) else None


def compute_loop_table(con) -> pa.Table:
    """The loop table of the ``spans`` view of ``con``: every trace with a span, its tool runs
    (:func:`~aiscale.analysis.loops.stuck.tool_runs`) and LLM / tool busy seconds (NaN: none).

    Each trace id is looked up once (Arrow hashing) and the analyses run on its integer code.
    Tool spans come sorted by trace and :data:`RUN_ORDER` from DuckDB, the order the runs are
    found in (ties in start broken as on spans sorted by trace, start and span id, a report's
    spans), so each call is keyed by comparing it with the one before (:func:`_run_keys`).
    """
    ids = con.sql("SELECT DISTINCT trace_id FROM spans ORDER BY trace_id").to_arrow_table()["trace_id"].combine_chunks()
    tools = con.sql(f"SELECT trace_id, start_time, tool_name, tool_arguments FROM spans WHERE kind = 'tool' "
                    f"ORDER BY trace_id, {RUN_ORDER}").to_arrow_table().combine_chunks()
    tools = _coded(tools, ids)
    keys = _run_keys(tools)
    tools = pa.table({"trace_id": tools["trace_id"], "start_time": tools["start_time"]})
    timed = con.sql("SELECT trace_id, kind, start_time, end_time FROM spans "
                    "WHERE kind IN ('llm', 'tool')").to_arrow_table()
    runs = tool_runs(frame_of(tools).assign(kind="tool"), keys=keys)
    busy = busy_by_kind(frame_of(_coded(timed, ids)), ("llm", "tool"))
    columns = {"trace_id": ids}
    for name, part, column in (("tool_repeats", runs, "tool_repeats"), ("t_since", runs, "t_since"),
                               ("llm_busy_s", busy, "llm"), ("tool_busy_s", busy, "tool")):
        values = np.full(len(ids), np.nan)
        values[part.index.to_numpy(dtype=np.int64)] = part[column].to_numpy(dtype=float)
        columns[name] = pa.array(values, pa.float64())
    return pa.table(columns, schema=SCHEMA)


RUN_ORDER = "coalesce(epoch_us(start_time), 0), span_id NULLS LAST, tool_name, tool_arguments"
"""Within a trace, the order :func:`~aiscale.analysis.loops.stuck.tool_runs` puts tool calls in:
by start (an unknown start as the epoch, as it reads them), ties by span id (as on a report's
spans, sorted by trace, start and span id), then name and arguments."""


def _run_keys(tools: pa.Table) -> np.ndarray:
    """One integer per tool span of ``tools`` (coded trace ids, in :data:`RUN_ORDER` within each
    trace), equal for consecutive calls of one trace with the same tool name and arguments text
    (null as ""), -1 where the name is unknown: what :func:`~aiscale.analysis.loops.stuck.tool_runs`
    needs to find runs, found by comparing each call with the one before (no hashing of every
    arguments text). Calls of unknown name are left out before comparing, as the runs leave them out.

    When the rows are not in that order after all (codes not ascending), the keys are those of
    equal name and arguments anywhere (:func:`_tool_keys`), which give the same runs in any order.
    """
    codes = tools["trace_id"].fill_null(-1).to_numpy()
    start = pc.fill_null(pc.cast(tools["start_time"], pa.int64()), 0).to_numpy()
    if len(codes) and not already_ordered(codes, start):
        return _tool_keys(tools)
    named = pc.is_valid(tools["tool_name"]).to_numpy(zero_copy_only=False)
    kept = tools.filter(pa.array(named))
    keys = np.full(tools.num_rows, -1, dtype=np.int64)
    if kept.num_rows:
        trace, name, args = kept["trace_id"], kept["tool_name"], pc.fill_null(kept["tool_arguments"], "")
        same = pc.and_(pc.and_(pc.equal(trace[1:], trace[:-1]), pc.equal(name[1:], name[:-1])),
                       pc.equal(args[1:], args[:-1]))
        keys[named] = np.cumsum(np.r_[True, ~same.to_numpy(zero_copy_only=False)])
    return keys


def _tool_keys(tools: pa.Table) -> np.ndarray:
    """One integer per tool span, equal where tool name and arguments text (null as "") are; -1
    where the name is unknown (as :func:`~aiscale.analysis.loops.stuck.tool_runs` keys them)."""
    if not tools.num_rows:
        return np.zeros(0, dtype=np.int64)
    names = pc.dictionary_encode(tools["tool_name"]).combine_chunks()
    args = pc.dictionary_encode(pc.fill_null(tools["tool_arguments"], "")).combine_chunks()
    name = names.indices.fill_null(-1).to_numpy().astype(np.int64)
    arg = args.indices.to_numpy().astype(np.int64)
    return np.where(name >= 0, name * (len(args.dictionary) + 1) + arg, -1)


def _coded(table: pa.Table, ids: pa.Array) -> pa.Table:
    """``table`` with each trace id replaced by its position in ``ids``."""
    return table.set_column(0, "trace_id", pc.index_in(table["trace_id"], value_set=ids).cast(pa.int64()))


def busy_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The busy seconds of a loop table as :func:`~aiscale.analysis.tradeoffs.latency.busy_by_kind`
    gives them: columns ``llm`` and ``tool``, indexed by trace id, traces with either."""
    busy = table.set_index("trace_id")[["llm_busy_s", "tool_busy_s"]]
    busy.columns = ["llm", "tool"]
    return busy.loc[busy.notna().any(axis=1)]


def loops_of(ctx: Context) -> pd.DataFrame | None:
    """The loop table's rows of the context's traces (read once per context); None when the
    context has no store to keep it in (its sections then read ``ctx.spans``).

    An empty frame means the context's traces have no spans (as ``ctx.spans`` is then None).
    A context opened without spans (``with_spans=False``) reads none of this either.
    """
    if not kept_for(ctx) or "trace_id" not in ctx.facts:
        return None

    def read() -> pd.DataFrame:
        table = loop_table(ctx.store, prices=ctx.prices, since=ctx.since, until=ctx.until)
        ids = pa.array(ctx.facts["trace_id"].astype("string"), pa.string(), from_pandas=True)
        return table.filter(pc.is_in(table["trace_id"], value_set=ids)).to_pandas()

    return memoised(ctx, "loop table", read)
