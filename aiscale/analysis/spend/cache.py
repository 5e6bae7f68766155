"""How much prompt caching saves: hit rate, dollars saved, what writes cost, wasted writes.

Per call, from the cost terms of :func:`aiscale.pricing.rates.price_spans` (no second cost
formula): ``no_cache_usd`` is the same call with its cache reads and writes billed as plain
input; ``read_savings_usd`` what the reads saved; ``write_premium_usd`` what writing cost
above plain input; ``net_savings_usd`` = no cache minus with cache. Where a source records
the split (Claude Code's ``cache_creation.ephemeral_5m/1h_input_tokens``, kept in span
attributes), 1-hour writes are billed at
:data:`~aiscale.analysis.spend.calls.ONE_HOUR_WRITE_MULTIPLIER` x the input price and 5-minute
writes at the listed cache-write price; elsewhere every write is billed at the listed price
(the 5-minute one for Anthropic). A write is *wasted* when no later call of the same trace and
model reads the cache within the write's lifetime (5 minutes, or 1 hour for 1-hour writes):
caches shared across traces are not seen, so this is an upper bound.

A saving is unknown (null), never $0, where the rate it needs is unknown: cache reads of a model
with no listed cache-read price (the bill counts them at the input price, an upper bound, so what
they saved is unknown), 5-minute writes of a model with no listed cache-write price, and any
cache tokens of a call priced per call (no input price). ``unknown_rate_calls`` counts those
calls; ``summary()`` leaves a group's sum null when any call in it is unknown (``known_only=True``
sums the known calls instead, a lower bound on reads saved).

Examples
--------
>>> import pandas as pd
>>> calls = pd.DataFrame({"trace_id": ["a", "a"], "kind": "llm", "provider": "anthropic",
...     "model": "claude-sonnet-4-20250514",
...     "start_time": pd.to_datetime(["2025-09-01 10:00", "2025-09-01 10:01"], utc=True),
...     "input_tokens": [100_000, 100_000], "output_tokens": [0, 0],
...     "cache_read_tokens": [0, 100_000], "cache_write_tokens": [100_000, 0]})
>>> s = cache_savings(calls).summary()
>>> s[["hit_rate", "read_savings_usd", "write_premium_usd", "net_savings_usd"]].round(4)
   hit_rate  read_savings_usd  write_premium_usd  net_savings_usd
0       0.5              0.27              0.075            0.195
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_choice, floats, fmt_usd, new_axes
from aiscale.analysis.loops.calls import stable_order
from aiscale.analysis.spend.calls import ONE_HOUR_WRITE_MULTIPLIER, PriceSheet, llm_calls

__all__ = ["CacheSavings", "cache_savings"]

_SUMS = ("calls", "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
         "no_cache_usd", "cost_usd", "read_savings_usd", "write_5m_usd", "write_1h_usd",
         "write_premium_usd", "net_savings_usd", "wasted_writes", "wasted_write_usd",
         "unpriced_calls", "unknown_rate_calls")
# money columns that are null where a rate is unknown: a group's sum is unknown then too
_UNKNOWN_WHERE_RATE_IS = ("no_cache_usd", "read_savings_usd", "write_5m_usd", "write_1h_usd",
                          "write_premium_usd", "net_savings_usd", "wasted_write_usd")


@dataclass(frozen=True, eq=False, repr=False)
class CacheSavings(ResultDisplay):
    """Cache hit rate, savings and write costs per group (model, day, ...); ``frame()`` per call."""

    calls: pd.DataFrame = field(repr=False)
    by: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        t = self.summary(by=())
        r = t.iloc[0] if len(t) else None
        return (f"<aiscale.CacheSavings: {len(self.calls)} calls, hit rate "
                f"{r['hit_rate']:.0%}, net savings {fmt_usd(r['net_savings_usd'])}>" if r is not None
                else "<aiscale.CacheSavings: no calls>")

    def frame(self) -> pd.DataFrame:
        """One row per priced call with its savings, write costs and wasted-write flag."""
        return self.calls.copy()

    def summary(self, by: tuple[str, ...] | list[str] | None = None, *,
                known_only: bool = False) -> pd.DataFrame:
        """One row per group: sums, ``hit_rate`` (cache reads / input) and ``savings_share``.

        A group's saving is null when any of its calls needs a rate that is unknown
        (``unknown_rate_calls``); with ``known_only`` it sums the calls whose rates are known.
        """
        keys = list(self.by if by is None else by)
        sums = [s for s in _SUMS if s in self.calls.columns or s == "calls"]
        c = self.calls[[*keys, *(s for s in sums if s != "calls")]].assign(calls=1)  # only what is summed
        if keys:
            out = c.groupby(keys, dropna=False)[sums].sum(min_count=1).reset_index()
        else:
            out = c[sums].sum(min_count=1).to_frame().T
        if not known_only and "unknown_rate_calls" in out:  # only those calls' savings are null
            strict = [s for s in _UNKNOWN_WHERE_RATE_IS if s in out]
            out[strict] = out[strict].astype("float64").mask(out["unknown_rate_calls"] > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["hit_rate"] = out["cache_read_tokens"].astype(float) / out["input_tokens"].astype(float)
            out["savings_share"] = out["net_savings_usd"].astype(float) / out["no_cache_usd"].astype(float)
        return out

    def plot(self, ax=None, **kwargs):
        """Per day: dollars saved by reads (up) and paid for writes (down), net line."""
        ax = new_axes(ax)
        if "day" not in self.calls.columns or self.calls.empty:
            return ax
        daily = self.summary(by=("day",), known_only=True).sort_values("day")
        net = daily["net_savings_usd"].astype("float64").mask(daily["unknown_rate_calls"] > 0)  # unknown
        ax.bar(daily["day"], daily["read_savings_usd"], color="C2", label="saved by cache reads", **kwargs)
        ax.bar(daily["day"], -daily["write_premium_usd"], color="C3", label="paid for cache writes")
        ax.plot(daily["day"], net.to_numpy(), color="k", marker="o", label="net savings")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(ylabel="USD per day")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize="small")
        unknown = int(daily["unknown_rate_calls"].sum())
        if unknown:
            ax.set_title(f"{unknown:,} calls with an unknown cache rate not shown", fontsize="small")
        return ax


def cache_savings(data, *, by: str | list[str] = ("model", "day"), prices: PriceSheet = None,
                  since=None, until=None, already_priced: bool = False) -> CacheSavings:
    """What prompt caching saved per model and day, what writes cost, which writes were wasted.

    Parameters
    ----------
    data : TraceStore or spans DataFrame
        LLM calls with cache read / write token counts.
    by : str or list of str, default=("model", "day")
        Groups of ``summary()``: any call column or trace label, and ``day``.
    prices : path or DataFrame, optional
        A price sheet that wins over genai-prices.
    since, until : optional
        The window ``[since, until)``.
    already_priced : bool, default=False
        ``data`` holds calls :func:`~aiscale.analysis.spend.calls.llm_calls` already priced
        with the same ``prices``, with their cost terms (``parts=True``): they are not priced again (same result, faster).

    Returns
    -------
    CacheSavings
        ``summary()`` per group; ``frame()`` per call; ``plot()`` savings per day.
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    calls = llm_calls(data, prices=prices, since=since, until=until, parts=True,
                      already_priced=already_priced)
    calls["day"] = pd.to_datetime(calls["start_time"], utc=True).dt.tz_localize(None).dt.floor("D")
    for key in by:
        check_choice("by", key, list(calls.columns))
    unpriced = int((~calls["priced"]).sum())
    priced = calls if not unpriced else calls.loc[calls["priced"]].reset_index(drop=True)
    out = _savings(priced)
    out["wasted_writes"] = _wasted(out)
    out["wasted_write_usd"] = np.where(out["wasted_writes"], out["write_5m_usd"] + out["write_1h_usd"], 0.0)
    notes = []
    if unpriced:
        notes.append(f"{unpriced:,} calls have no price and are left out (their savings are unknown).")
    extra = (out["cost_usd"] - out["listed_cost_usd"]).sum()
    if extra:
        notes.append(f"1-hour cache writes are billed here at {ONE_HOUR_WRITE_MULTIPLIER:g}x the input "
                     f"price; trace facts bill every write at the listed price ({fmt_usd(extra)} less).")
    unknown = int(out["unknown_rate_calls"].sum())
    if unknown:
        notes.append(f"{unknown:,} calls read or wrote the cache at a model with no listed cache "
                     "price: what their cache saved is unknown (the bill counts those tokens at the "
                     "input price).")
    if out["cache_write_1h_tokens"].isna().all() and (_tokens(out["cache_write_tokens"]) > 0).any():
        notes.append("No source recorded the 5-minute / 1-hour split: every write is billed at the "
                     "listed cache-write price.")
    return CacheSavings(out, by, tuple(notes))


def _savings(c: pd.DataFrame) -> pd.DataFrame:
    """Add the savings columns to priced calls (vectorised); null where a rate is unknown."""
    inp = floats(c["input_usd_per_token"])  # NaN: priced per call
    reads, writes, one_hour = (_tokens(c[k]) for k in ("cache_read_tokens", "cache_write_tokens",
                                                        "cache_write_1h_tokens"))
    one_hour = np.minimum(one_hour, writes)
    five_minute = writes - one_hour
    read_rate_unknown = (reads > 0) & (np.isnan(floats(c["cache_read_usd_per_token"])) | np.isnan(inp))
    write_rate_unknown = (((five_minute > 0) & np.isnan(floats(c["cache_write_usd_per_token"])))
                          | ((writes > 0) & np.isnan(inp)))
    listed_write = floats(c["cache_write_usd"])
    with np.errstate(invalid="ignore", divide="ignore"):
        write_rate = np.where(writes > 0, listed_write / writes, 0.0)
    known_inp = np.nan_to_num(inp)  # zero tokens at an unknown rate cost nothing
    listed_cost = floats(c["cost_usd"])
    write_5m = np.where(write_rate_unknown, np.nan, five_minute * write_rate)
    write_1h = np.where(write_rate_unknown, np.nan, one_hour * ONE_HOUR_WRITE_MULTIPLIER * known_inp)
    write_cost = write_5m + write_1h
    no_cache = listed_cost - floats(c["cache_read_usd"]) - listed_write + (reads + writes) * known_inp
    c = c.copy(deep=False)  # new columns only: the caller's frame is not changed (copy on write)
    c["unknown_rate_calls"] = (read_rate_unknown | write_rate_unknown).astype(np.int64)
    c["write_5m_usd"] = write_5m
    c["write_1h_usd"] = write_1h
    c["no_cache_usd"] = np.where(((reads + writes) > 0) & np.isnan(inp), np.nan, no_cache)
    c["read_savings_usd"] = np.where(read_rate_unknown, np.nan,
                                     reads * known_inp - floats(c["cache_read_usd"]))
    c["write_premium_usd"] = write_cost - writes * known_inp
    c["listed_cost_usd"] = c["cost_usd"]
    # the cost with 1-hour writes billed as such; where the write rate is unknown, the bill's
    c["cost_usd"] = np.where(write_rate_unknown, listed_cost, listed_cost - listed_write + write_cost)
    c["net_savings_usd"] = np.where(read_rate_unknown | write_rate_unknown, np.nan,
                                    c["no_cache_usd"] - c["cost_usd"])
    return c


def _wasted(c: pd.DataFrame) -> np.ndarray:
    """A write no later read of the same trace and model uses within the write's lifetime.

    Vectorised over integer codes: the calls of each (trace, model) in time order, and for each
    call the first later call of its group that read the cache (a running minimum from the end).
    """
    n = len(c)
    if not n:
        return np.zeros(0, dtype=bool)
    group = _codes(c)
    start = pd.to_datetime(c["start_time"], utc=True)
    end = pd.to_datetime(c["end_time"], utc=True).fillna(start) if "end_time" in c else start
    ns = start.to_numpy(dtype="datetime64[ns]").view("int64").copy()
    ns[start.isna().to_numpy()] = np.iinfo(np.int64).max  # no start time: last of its group
    order = stable_order(group, ns)  # stable: ties keep the calls' order
    g = group[order]
    reads = np.flatnonzero(_tokens(c["cache_read_tokens"])[order] > 0)
    first_read = np.full(n + 1, n)
    first_read[reads] = reads
    first_read = np.minimum.accumulate(first_read[::-1])[::-1]  # first read at or after each position
    after = first_read[1:]  # the first read strictly after each position
    group_end = np.r_[np.flatnonzero(np.diff(g)) + 1, n][np.cumsum(np.r_[0, np.diff(g) != 0])]
    known = (after < group_end) & c["model"].notna().to_numpy()[order]  # an unknown model: no later read
    start_s = start.to_numpy(dtype="datetime64[ns]")[order]
    end_s = end.to_numpy(dtype="datetime64[ns]")[order]
    gap_s = np.full(n, np.nan)
    gap_s[known] = (start_s[after[known]] - end_s[known]) / np.timedelta64(1, "s")
    life_s = np.where(_tokens(c["cache_write_1h_tokens"])[order] > 0, 3600.0, 300.0)
    writes = _tokens(c["cache_write_tokens"])[order] > 0
    flags = np.zeros(n, dtype=bool)
    flags[order] = writes & (np.isnan(gap_s) | (gap_s > life_s))
    return flags


def _tokens(values: pd.Series) -> np.ndarray:
    """Token counts as float64, 0 where unknown."""
    numbers = floats(values)  # a new array
    numbers[np.isnan(numbers)] = 0.0
    return numbers


def _codes(c: pd.DataFrame) -> np.ndarray:
    """One integer per (trace, model) pair."""
    trace = pd.factorize(c["trace_id"].astype(str))[0].astype(np.int64)
    model = pd.factorize(c["model"], use_na_sentinel=False)[0].astype(np.int64)
    return trace * (int(model.max()) + 1) + model
