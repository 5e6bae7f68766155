"""The priced LLM calls the spend analyses share: one row per LLM span, with its trace's labels.

:func:`llm_calls` reads LLM spans from a trace store (or takes a spans frame), keeps a time
window, joins the trace columns (variant, task, user, session, project) and prices every
call with :func:`aiscale.pricing.rates.price_frame`, which looks prices up once per
(provider, model, day) and joins them: no Python call per span. The 5-minute / 1-hour split
of cache writes, where a source records it in the span ``attributes``
(``cache_write_5m_tokens``, ``cache_write_1h_tokens``), is read with DuckDB's JSON functions.

Examples
--------
>>> import pandas as pd
>>> spans = pd.DataFrame({"trace_id": ["a"], "kind": ["llm"], "provider": ["openai"],
...     "model": ["gpt-4o-2024-08-06"], "start_time": pd.to_datetime(["2025-01-01"], utc=True),
...     "input_tokens": [1_000_000], "output_tokens": [0]})
>>> round(float(llm_calls(spans)["cost_usd"].iloc[0]), 2)
2.5
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from aiscale import schema
from aiscale.analysis._result import check_columns, floats
from aiscale.facts.on_duckdb import frame_of
from aiscale.facts.window import utc_timestamp

TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
          "reasoning_tokens")
ONE_HOUR_WRITE_MULTIPLIER = 2.0  # Anthropic: a 1-hour cache write costs 2x the base input price
PriceSheet = str | Path | pd.DataFrame | None


def is_store(data) -> bool:
    """True for a trace store (anything with ``spans()``, ``traces()``, ``sql()``, ``connect()``)."""
    return all(callable(getattr(data, name, None)) for name in ("spans", "traces", "sql", "connect"))


def llm_calls(data, *, prices: PriceSheet = None, since=None, until=None,
              parts: bool = False, trace_ids=None, already_priced: bool = False) -> pd.DataFrame:
    """Return the priced LLM calls of a store or spans frame in ``[since, until)``.

    Parameters
    ----------
    data : TraceStore or pandas.DataFrame
        A store, or spans (only ``kind == "llm"`` rows are kept when ``kind`` is present).
    prices : path or DataFrame, optional
        A price sheet that wins over genai-prices (the same one the facts are priced with).
    since, until : str or Timestamp, optional
        Keep calls that started in ``[since, until)``.
    parts : bool, default=False
        Also return the cost terms and rates (see :func:`aiscale.pricing.rates.price_spans`).
    trace_ids : list of str, optional
        Only the calls of these traces.
    already_priced : bool, default=False
        ``data`` is a frame this function returned (with the same ``prices``; with the cost
        terms when ``parts``): its ``cost_usd`` and ``priced`` are kept, not priced again.
        The calls are still windowed and selected; the result is the same as re-pricing.

    Returns
    -------
    pandas.DataFrame
        One row per call: span columns, ``cost_usd`` (null when unpriced), ``priced``,
        ``cache_write_1h_tokens`` / ``cache_write_5m_tokens`` (null when not recorded) and the
        trace labels present (``variant``, ``task_id``, ``user_id``, ``session_id``, ``project``).
    """
    from aiscale.pricing.rates import price_frame

    from_store = is_store(data)
    if from_store and not already_priced:
        calls = priced_frame(data.calls(prices=prices, trace_ids=trace_ids), parts=parts)
        return calls.loc[_in_window(calls["start_time"], since, until)].reset_index(drop=True)
    calls = _priced_calls(data, parts) if already_priced else _frame_calls(data)
    if trace_ids is not None:
        calls = calls.loc[calls["trace_id"].isin(list(trace_ids))]
    if since is not None or until is not None:
        calls = calls.loc[_in_window(calls["start_time"], since, until)]
    calls = calls.reset_index(drop=True)
    if already_priced:
        return calls
    priced = price_frame(calls, prices=prices, parts=parts)
    priced["cost_usd"] = priced["cost_usd"].astype(float).where(priced["priced"], np.nan)
    return priced


def priced_frame(table, *, parts: bool = False) -> pd.DataFrame:
    """A store's priced calls (:meth:`TraceStore.calls`, Arrow) as the frame :func:`llm_calls` returns.

    Without ``parts`` the cost terms and rates are left out; ``cost_usd`` is null where the
    call is unpriced.
    """
    from aiscale.pricing.rates import COST_PARTS, RATE_COLUMNS

    if not parts:
        table = table.drop_columns([c for c in (*COST_PARTS, *RATE_COLUMNS) if c in table.column_names])
    calls = frame_of(table)
    for field in table.schema:  # the dtypes a frame priced by price_frame comes back with
        values = calls[field.name]
        if pa.types.is_integer(field.type):
            missing = table.column(field.name).null_count
            if not missing and values.dtype == np.int64:
                continue  # already as price_frame gives it
            calls[field.name] = (values.astype("int64") if not missing else values.astype("float64")
                                 if missing < len(values) else
                                 pd.Series(np.full(len(values), None, dtype=object), index=calls.index))
        elif pa.types.is_string(field.type) and values.dtype == object:  # text of nulls only
            calls[field.name] = pd.Series(pd.array(pa.nulls(len(values), pa.large_string()), dtype="str"),
                                          index=calls.index)  # built by Arrow, not from None objects
    calls["priced"] = calls["priced"].astype(bool)
    calls["cost_usd"] = calls["cost_usd"].astype(float).where(calls["priced"], np.nan)
    return calls


def short_output(calls: pd.DataFrame) -> np.ndarray:
    """Which calls logged an output token count short of their content (a loader's
    ``output_lower_bound``, e.g. Claude Code's count at a streamed response's start): their output
    tokens, and so their cost, are lower bounds. All False where calls carry no such mark.

    Examples
    --------
    >>> short_output(pd.DataFrame({"output_lower_bound": [True, None, False]})).tolist()
    [True, False, False]
    """
    if "output_lower_bound" not in calls:
        return np.zeros(len(calls), dtype=bool)
    return calls["output_lower_bound"].astype("boolean").fillna(False).to_numpy(dtype=bool)


def cache_reads_billed_as_input(calls: pd.DataFrame) -> np.ndarray:
    """Which priced calls read the cache at a model with no listed cache-read price: the bill
    counts their reads at the input price, so their cost is an upper bound. All False where
    calls carry no rates (``cache_read_usd_per_token``).

    Examples
    --------
    >>> calls = pd.DataFrame({"cache_read_tokens": [10, 10, 0], "cache_read_usd_per_token": [None, 1e-7, None],
    ...                       "priced": [True, True, True]})
    >>> cache_reads_billed_as_input(calls).tolist()
    [True, False, False]
    """
    if "cache_read_usd_per_token" not in calls:
        return np.zeros(len(calls), dtype=bool)
    reads = np.nan_to_num(floats(calls["cache_read_tokens"])) > 0
    return reads & calls["cache_read_usd_per_token"].isna().to_numpy() & calls["priced"].to_numpy(dtype=bool)


def _in_window(start_time: pd.Series, since, until) -> np.ndarray:
    """Which calls started in ``[since, until)`` (a call without a start time is in no window)."""
    started = pd.to_datetime(start_time, utc=True)
    keep = np.ones(len(started), dtype=bool)
    if since is not None:
        keep &= (started >= utc_timestamp(since)).fillna(False).to_numpy(dtype=bool)
    if until is not None:
        keep &= (started < utc_timestamp(until)).fillna(False).to_numpy(dtype=bool)
    return keep


def _priced_calls(calls, parts: bool) -> pd.DataFrame:
    """Calls priced earlier by :func:`llm_calls` (``already_priced=True``), checked, LLM rows only."""
    from aiscale.pricing.rates import COST_PARTS, RATE_COLUMNS

    if not isinstance(calls, pd.DataFrame):
        raise TypeError("`already_priced=True` needs the DataFrame of calls `llm_calls` returned, "
                        f"but {type(calls).__name__} was passed.")
    needed = ["trace_id", "start_time", "model", "cost_usd", "priced", *TOKENS,
              "cache_write_1h_tokens", "cache_write_5m_tokens", *((*COST_PARTS, *RATE_COLUMNS) if parts else ())]
    check_columns(calls, needed, "calls (already_priced=True: priced by llm_calls)")
    return calls.loc[calls["kind"] == "llm"] if "kind" in calls.columns else calls


def _frame_calls(spans: pd.DataFrame) -> pd.DataFrame:
    check_columns(spans, ["trace_id", "start_time", "model"], "spans")
    from aiscale.pricing.rates import COST_PARTS, RATE_COLUMNS

    calls = spans.loc[spans["kind"] == "llm"] if "kind" in spans.columns else spans
    priced = {"cost_usd", "priced", "price_source", *COST_PARTS, *RATE_COLUMNS}
    calls = calls.drop(columns=[c for c in calls.columns if c in priced]).reset_index(drop=True)
    ttl_columns = ["cache_write_1h_tokens", "cache_write_5m_tokens"]
    if "attributes" not in calls.columns and set(ttl_columns) <= set(calls.columns):
        return _with_labels(calls)  # already read (calls of an earlier llm_calls)
    if "attributes" in calls.columns:
        con = duckdb.connect()
        con.register("calls_in", calls[["attributes"]].astype({"attributes": "string"}))
        ttl = con.execute(f"SELECT {schema.cache_write_ttl_sql('attributes')} FROM calls_in").df()
        con.close()
    else:
        ttl = pd.DataFrame({c: pd.array([pd.NA] * len(calls), dtype="Int64")
                            for c in ("cache_write_1h_tokens", "cache_write_5m_tokens")})
    keep = [c for c in calls.columns if c != "attributes" and c not in ttl.columns]
    out = pd.concat([calls[keep], ttl.reset_index(drop=True)], axis=1)
    return _with_labels(out)


def _with_labels(calls: pd.DataFrame) -> pd.DataFrame:
    """The token columns as nullable integers (the trace labels come with the store's query)."""
    for column in TOKENS:
        values = calls[column] if column in calls.columns else pd.Series(pd.NA, index=calls.index)
        calls[column] = pd.to_numeric(values).astype("Int64")
    return calls
