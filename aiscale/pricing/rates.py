"""Prices for LLM spans: a rate table per (provider, model, day), joined, never called per span.

:func:`rate_table` looks each distinct (provider, model, day) up once, in a user price sheet
first (:mod:`aiscale.price_sheet`) and then in genai-prices' bundled data
(:mod:`aiscale.pricing_genai`). :func:`price_spans` joins the rates to the spans as one
engine-agnostic Ibis expression (DuckDB locally, Spark on a cluster). Prices tiered by
input size (e.g. above 200k tokens) are rows over input-size intervals, joined on the
span's input tokens. A span whose model has no price is *unpriced*: null cost, never $0.

Examples
--------
>>> import datetime as dt, pandas as pd
>>> keys = pd.DataFrame({"provider": ["openai"], "model": ["gpt-4o-2024-08-06"],
...                      "day": [dt.date(2025, 1, 1)]})
>>> rates = rate_table(keys)
>>> (rates[["input_usd_per_token", "output_usd_per_token"]] * 1e6).round(2).iloc[0].tolist()
[2.5, 10.0]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from aiscale.pricing import sheet as price_sheet
from aiscale.pricing.genai import RATE_COLUMNS, RATE_TABLE_COLUMNS, TIER_COLUMNS, genai_rates

if TYPE_CHECKING:  # Ibis is imported where an expression is built: rate tables need none
    import ibis

PriceSheet = str | Path | pd.DataFrame


def rate_table(keys: pd.DataFrame, *, prices: PriceSheet | None = None) -> pd.DataFrame:
    """Return the rates in force for each distinct (provider, model, day) in ``keys``.

    Parameters
    ----------
    keys : pandas.DataFrame
        Columns provider, model, day (a date); optionally ``n_calls`` (LLM calls of that
        key), used to spread a self-hosted model's GPU-hours over its calls.
    prices : path or DataFrame, optional
        A price sheet (see :mod:`aiscale.price_sheet`) that wins over genai-prices.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RATE_TABLE_COLUMNS`: rates in USD per token (``call_usd`` per call),
        null where the model is not priced in that unit (cache and reasoning then cost as
        input and output). Keys with no price are absent; a key priced in input-size tiers
        has one row per tier (``min_input_tokens`` < input_tokens <= ``max_input_tokens``).
    """
    missing = [c for c in ("provider", "model", "day") if c not in keys.columns]
    if missing:
        raise ValueError(f"`keys` lacks columns {missing}; it has {list(keys.columns)}.")
    sheet = None if prices is None else price_sheet.read_price_sheet(prices)
    work = keys[keys["model"].notna()].copy()
    work["_date"] = pd.to_datetime(work["day"]).dt.date
    if "n_calls" not in work.columns:
        work["n_calls"] = float("nan")
    work = work.drop_duplicates(["provider", "model", "_date"])
    rows: list[dict] = []
    for (provider, model), group in work.groupby(["provider", "model"], dropna=False, sort=False):
        provider = None if pd.isna(provider) else str(provider)
        calls = dict(zip(group["_date"], group["n_calls"], strict=True))
        for row in _rates_for_model(provider, str(model), calls, sheet):
            rows.append({"provider": provider, "model": model, **row})
    found = pd.DataFrame(rows, columns=["provider", "model", "day", *TIER_COLUMNS, *RATE_COLUMNS,
                                        "matched_model", "price_source"])
    found = found.rename(columns={"day": "_date"})
    out = work[["provider", "model", "day", "_date"]].merge(
        found, on=["provider", "model", "_date"], how="inner")
    return _typed(out.drop(columns="_date"))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reindex(columns=list(RATE_TABLE_COLUMNS)).reset_index(drop=True)
    for column in RATE_COLUMNS:
        frame[column] = pd.to_numeric(frame[column]).astype("float64")
    for column in TIER_COLUMNS:
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    return frame


def _rates_for_model(provider: str | None, model: str, calls: dict, sheet) -> list[dict]:
    """Rate rows for one (provider, model) on the given days: sheet first, then genai-prices."""
    matches = None if sheet is None else price_sheet.match_rows(sheet, provider, model)
    rows, plain_days = [], []
    for day, n_calls in calls.items():
        row = None if matches is None or matches.empty else price_sheet.row_for_day(matches, day)
        if row is None:
            plain_days.append(day)
        else:
            rows += _sheet_rates(row, provider, model, day, n_calls)
    return rows + genai_rates(provider, model, plain_days)


def _sheet_rates(row: pd.Series, provider: str | None, model: str, day, n_calls) -> list[dict]:
    source = f"price sheet row {row.name}"
    if price_sheet.has_own_prices(row):
        found = [{"day": day, **price_sheet.own_rates(row), "matched_model": model}]
    elif pd.notna(row["gpu_hour_usd"]):
        call = price_sheet.gpu_call_usd(row, n_calls)
        found = [] if call is None else [{"day": day, "call_usd": call, "matched_model": model}]
        source += " (GPU-hours spread over calls)"
    else:
        found = genai_rates(provider, row["price_as"] or model, [day])
        source += f" on {found[0]['price_source']}" if found else ""
    keep = 1.0 - row["discount"]
    for rate in found:
        for column in RATE_COLUMNS:
            if rate.get(column) is not None:
                rate[column] = rate[column] * keep
        rate["price_source"] = source + (f", {row['discount']:.0%} discount" if row["discount"] else "")
    return found


def price_spans(llm_spans: ibis.Table, rates: ibis.Table, *, parts: bool = False) -> ibis.Table:
    """Add ``cost_usd`` (null when unpriced), ``priced`` and ``price_source`` to LLM spans.

    Parameters
    ----------
    llm_spans : ibis.Table
        Provider, model, day and the five token columns. As in the canonical schema, cache
        reads and writes are part of input_tokens and reasoning is part of output_tokens.
    rates : ibis.Table
        The output of :func:`rate_table` (as an Ibis table on the same backend).
    parts : bool, default=False
        Also add the terms that sum to ``cost_usd`` (:data:`COST_PARTS`, USD, null when
        unpriced) and the rates behind them (:data:`RATE_COLUMNS`, null when not priced in
        that unit), for analyses that split cost by token kind (cache savings).

    Returns
    -------
    ibis.Table
        ``llm_spans`` with ``cost_usd`` (float64), ``priced`` (bool) and ``price_source``.
        A span is priced when its key has a rate and the tokens that rate needs are known.
        Rates without the tier columns are treated as untiered.
    """
    import ibis

    def column(name: str, dtype: str) -> ibis.Value:
        present = name in rates.columns
        return rates[name].cast(dtype) if present else ibis.null(dtype)

    r = rates.select(
        _rp=rates.provider.cast("string").fill_null(""), _rm=rates.model.cast("string"),
        _rd=rates.day, _lo=column("min_input_tokens", "int64"),
        _hi=column("max_input_tokens", "int64"), price_source=column("price_source", "string"),
        **{f"_{c}": column(c, "float64") for c in RATE_COLUMNS},
    )
    s = llm_spans.mutate(_sp=llm_spans.provider.cast("string").fill_null(""))
    joined = s.left_join(r, [
        s._sp == r._rp, s.model == r._rm, s.day == r._rd,
        r._lo.isnull() | (s.input_tokens > r._lo), r._hi.isnull() | (s.input_tokens <= r._hi),
    ])
    terms, priced = _cost_terms(joined)
    cost = sum(terms.values(), ibis.literal(0.0, "float64"))
    unknown = ibis.null("float64")
    extra = {}
    if parts:
        extra = {name: priced.ifelse(term, unknown) for name, term in terms.items()}
        extra |= {c: joined[f"_{c}"] for c in RATE_COLUMNS}
    out = joined.mutate(cost_usd=priced.ifelse(cost, unknown), priced=priced, **extra)
    out = bill_failed_attempts(out, terms=[name for name in terms if name in extra])
    return out.select(*llm_spans.columns, "cost_usd", "priced", "price_source", *extra)


def bill_failed_attempts(calls: ibis.Table, *, terms: list[str] | None = None) -> ibis.Table:
    """A failed attempt that reports no usage at all is billed nothing: cost 0, priced.

    The one place this rule lives: the facts, the priced spans and the spend analyses all
    price calls through :func:`price_spans`. Tables without ``status`` are left as they are;
    the cost ``terms`` named are set to 0 with the cost, so they still sum to it.
    """
    if "status" not in calls.columns:
        return calls
    no_usage = ((calls.status == "error").fill_null(False) & calls.input_tokens.isnull()
                & calls.output_tokens.isnull())
    zeroed = {name: no_usage.ifelse(0.0, calls[name]) for name in (terms or [])}
    return calls.mutate(cost_usd=no_usage.ifelse(0.0, calls.cost_usd), priced=calls.priced | no_usage,
                        **zeroed)


COST_PARTS = ("uncached_input_usd", "cache_read_usd", "cache_write_usd", "output_usd",
              "reasoning_usd", "call_usd_part")


def _cost_terms(t: ibis.Table) -> tuple[dict[str, ibis.Value], ibis.Value]:
    """The terms of a span's cost (they sum to ``cost_usd``) and whether it is priced."""
    import ibis

    zero = ibis.literal(0, "int64")
    cache_read = t.cache_read_tokens.fill_null(zero)
    cache_write = t.cache_write_tokens.fill_null(zero)
    reasoning = t.reasoning_tokens.fill_null(zero)
    inp, out = t._input_usd_per_token, t._output_usd_per_token
    uncached = ibis.greatest(t.input_tokens.fill_null(zero) - cache_read - cache_write, zero)
    visible = ibis.greatest(t.output_tokens.fill_null(zero) - reasoning, zero)
    terms = dict(zip(COST_PARTS, (
        uncached * inp.fill_null(0.0),
        cache_read * t._cache_read_usd_per_token.fill_null(inp).fill_null(0.0),
        cache_write * t._cache_write_usd_per_token.fill_null(inp).fill_null(0.0),
        visible * out.fill_null(0.0),
        reasoning * t._reasoning_usd_per_token.fill_null(out).fill_null(0.0),
        t._call_usd.fill_null(0.0),
    ), strict=True))
    per_token = inp.notnull() | out.notnull()
    tokens_known = t.input_tokens.notnull() & t.output_tokens.notnull()
    priced = (per_token & tokens_known) | (~per_token & t._call_usd.notnull())
    return terms, priced.fill_null(False)


def price_frame(spans: pd.DataFrame, *, prices: PriceSheet | None = None,
                parts: bool = False) -> pd.DataFrame:
    """Price a pandas frame of LLM spans (in DuckDB): adds cost_usd, priced, price_source.

    Parameters
    ----------
    spans : pandas.DataFrame
        LLM spans with start_time, provider, model and the token columns (missing token
        columns count as unknown).
    prices : path or DataFrame, optional
        A price sheet that wins over genai-prices.
    parts : bool, default=False
        Also add the cost terms and rates (see :func:`price_spans`).

    Examples
    --------
    >>> import pandas as pd
    >>> spans = pd.DataFrame({"start_time": pd.to_datetime(["2025-11-19"], utc=True),
    ...     "provider": ["openrouter"], "model": ["google/gemini-3-pro-preview"],
    ...     "input_tokens": [1820], "output_tokens": [565], "reasoning_tokens": [496]})
    >>> round(float(price_frame(spans).loc[0, "cost_usd"]), 5)
    0.01042
    """
    frame = spans.copy()
    for column in ("provider", "model"):
        frame[column] = frame[column].astype("string") if column in frame else pd.NA
    for column in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                   "reasoning_tokens"):
        frame[column] = pd.to_numeric(frame[column]).astype("Int64") if column in frame else pd.NA
        frame[column] = frame[column].astype("Int64")
    day = pd.to_datetime(frame["start_time"], utc=True).dt.floor("D").dt.tz_localize(None).astype("datetime64[us]")
    keys = pd.DataFrame({"provider": frame["provider"], "model": frame["model"], "day": day})
    keys = keys.groupby(["provider", "model", "day"], dropna=False).size().rename("n_calls").reset_index()
    rates = rate_table(keys.assign(day=keys["day"].dt.date), prices=prices)
    columns = [c for c in frame.columns if c != "day"]
    kept = [c for c in columns if c not in _PRICED_FROM and _kept_as_is(frame[c])]
    import ibis

    con = ibis.duckdb.connect()
    table = ibis.memtable(_arrow(frame.drop(columns=kept).assign(day=day, _row=np.arange(len(frame)))))
    rate_t = ibis.memtable(_arrow(rates.assign(day=_naive_days(rates["day"]))))
    priced = price_spans(table.mutate(day=table.day.cast("date")),
                         rate_t.mutate(day=rate_t.day.cast("date")), parts=parts)
    out = con.to_pandas(priced.order_by("_row"))  # the rows in the order given
    for column in kept:  # not sent through DuckDB: as the round trip gives them back
        values = frame[column]
        out[column] = (values.astype("str") if isinstance(values.dtype, pd.StringDtype) else values).array
    added = [c for c in out.columns if c not in frame.columns and c not in ("day", "_row")]
    return out[[*columns, *added]]


_PRICED_FROM = ("provider", "model", "status", "input_tokens", "output_tokens", "cache_read_tokens",
                "cache_write_tokens", "reasoning_tokens")


def _kept_as_is(values: pd.Series) -> bool:
    """Columns pricing does not read whose DuckDB round trip changes nothing but text's dtype.

    Text with a value (it comes back as ``str``), floats and UTC times; other columns (nullable
    integers, objects, text of nulls only) take the round trip, as their dtype may change.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return bool(values.notna().any())
    return dtype == np.float64 or str(dtype).startswith("datetime64[") and str(dtype).endswith(", UTC]")


def _arrow(frame: pd.DataFrame):
    """Arrow table with NaN as null (DuckDB keeps a pandas NaN as a NaN, not a null)."""
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def _naive_days(days: pd.Series) -> pd.Series:
    return pd.to_datetime(days).astype("datetime64[us]")
