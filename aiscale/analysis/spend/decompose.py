"""Why spend changed between two windows: volume, mix, work per trace and price, in dollars.

The cost of a window is an exact product over groups ``g`` (variants, or each trace's main
model)::

    C = N * sum_g s_g * k_g * u_g * P_g

with ``N`` traces, ``s_g`` the share of traces in group g (**mix**), ``k_g`` LLM calls per
trace (**calls per trace**), ``u_g`` the cost of a call at fixed reference prices (**work per
call**: tokens and cache use; each model priced on the first day it is seen in the data given)
and ``P_g`` actual cost over the reference cost (**price**: per-token rates alone). The
change ``C_b - C_a`` is split over the five factors by their Shapley values (the average,
over every order of switching the factors from window a to window b, of each factor's
marginal change), so the terms are in dollars and **sum exactly to the change**, with no
residual. A group present in one window only moves through mix. Intervals come from a
bootstrap of traces within each (window, group): the traffic (N and mix) is taken as
observed, the per-trace work and prices as a sample.

Examples
--------
>>> import pandas as pd
>>> t = pd.to_datetime(["2025-01-01", "2025-01-01", "2025-01-08", "2025-01-08", "2025-01-08"], utc=True)
>>> spans = pd.DataFrame({"trace_id": list("abcde"), "variant": "v", "provider": "openai",
...     "model": "gpt-4o-2024-08-06", "start_time": t,
...     "input_tokens": 1_000_000, "output_tokens": 0})
>>> r = spend_change(spans, at="2025-01-08", period="7D", n_boot=50)
>>> r.summary()[["term", "usd"]]
              term  usd
0           volume  2.5
1              mix  0.0
2  calls per trace  0.0
3   work per call  0.0
4            price  0.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from math import factorial

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_columns, fmt_usd, new_axes
from aiscale.analysis._stats import _expanded_alpha, bootstrap_weights
from aiscale.analysis.spend.calls import PriceSheet, llm_calls

__all__ = ["SpendChange", "spend_change", "shapley_terms"]

TERMS = ("volume", "mix", "calls per trace", "work per call", "price")


@dataclass(frozen=True, eq=False, repr=False)
class SpendChange(ResultDisplay):
    """The change in spend between two windows, split into terms that sum to it."""

    table: pd.DataFrame = field(repr=False)
    factors: pd.DataFrame = field(repr=False)
    per_group: pd.DataFrame = field(repr=False)
    windows: tuple
    cost_a: float
    cost_b: float
    notes: tuple[str, ...] = ()

    @property
    def change(self) -> float:
        return self.cost_b - self.cost_a

    def __repr__(self) -> str:
        return (f"<aiscale.SpendChange: {fmt_usd(self.cost_a)} -> {fmt_usd(self.cost_b)} "
                f"({self.change:+,.2f} USD) in {len(self.table)} terms>")

    def summary(self) -> pd.DataFrame:
        """One row per term: usd, interval, share of the change."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """The factors per window and group (traces, share, calls per trace, work, price)."""
        return self.factors.copy()

    def sentence(self) -> str:
        """A one-line finding: the change and its largest terms."""
        t = self.table.reindex(self.table["usd"].abs().sort_values(ascending=False).index)
        parts = [f"{r.term} {r.usd:+,.2f} (95% CI {r.lower:+,.2f} to {r.upper:+,.2f})"
                 for r in t.head(3).itertuples()]
        return (f"Spend went from {fmt_usd(self.cost_a)} to {fmt_usd(self.cost_b)} "
                f"({self.change:+,.2f} USD); largest terms: " + ", ".join(parts) + ".")

    def plot(self, ax=None, **kwargs):
        """Waterfall from the first window's cost to the second's, one bar per term."""
        ax = new_axes(ax)
        t = self.table
        starts = self.cost_a + np.concatenate([[0.0], np.cumsum(t["usd"].to_numpy())[:-1]])
        colors = np.where(t["usd"] >= 0, "C3", "C2")
        ax.bar(["window a"], [self.cost_a], color="C7")
        ax.bar(t["term"], t["usd"], bottom=starts, color=colors, **kwargs)
        ax.errorbar(t["term"], starts + t["usd"], yerr=np.abs(np.vstack(
            [t["usd"] - t["lower"], t["upper"] - t["usd"]])), fmt="none", ecolor="k", capsize=3)
        ax.bar(["window b"], [self.cost_b], color="C7")
        ax.set(ylabel="cost (USD)")
        ax.tick_params(axis="x", rotation=25)
        return ax


def spend_change(data, *, traces: pd.DataFrame | None = None, at=None, period: str = "7D",
                 windows=None, by: str = "variant", prices: PriceSheet = None,
                 n_boot: int = 1000, level: float = 0.95, seed: int | None = 0) -> SpendChange:
    """Decompose the change in spend between two windows into volume, mix, work and price.

    Parameters
    ----------
    data : TraceStore or spans DataFrame
        LLM calls (spans); a frame needs the ``by`` column or ``traces`` to join it from.
    traces : pandas.DataFrame, optional
        Trace rows (trace_id and ``by``) joined to a spans frame.
    at : str or Timestamp, optional
        Start of the second window; default the end of the last day with a trace minus ``period``.
    period : str, default="7D"
        Length of each window (any pandas Timedelta string).
    windows : ((start_a, end_a), (start_b, end_b)), optional
        Explicit windows instead of ``at`` and ``period``.
    by : str, default="variant"
        The mix groups: "variant" or any trace label; "model" uses each trace's main model
        (the one most of its calls used).
    prices : path or DataFrame, optional
        A price sheet that wins over genai-prices (it may change prices from a date).
    n_boot, level, seed
        Bootstrap resamples, interval level and seed.

    Returns
    -------
    SpendChange
        ``summary()`` the terms in USD with intervals (they sum to ``change``);
        ``frame()`` the factors; ``per_group`` the same decomposition within each group.
    """
    calls = llm_calls(data, prices=prices)
    if traces is not None:
        labels = traces[["trace_id", by]].drop_duplicates("trace_id")
        calls = calls.drop(columns=[by], errors="ignore").merge(labels, on="trace_id", how="left")
    per_trace, notes = _per_trace(calls, by, prices)
    (a0, a1), (b0, b1) = _windows(per_trace["started"], at, period, windows)
    per_trace["window"] = np.select([(per_trace["started"] >= a0) & (per_trace["started"] < a1),
                                     (per_trace["started"] >= b0) & (per_trace["started"] < b1)],
                                    ["a", "b"], "")
    per_trace = per_trace.loc[per_trace["window"] != ""]
    if not {"a", "b"} <= set(per_trace["window"]):
        raise ValueError(f"Both windows need priced traces: window a [{a0}, {a1}) has "
                         f"{int((per_trace['window'] == 'a').sum())}, window b [{b0}, {b1}) has "
                         f"{int((per_trace['window'] == 'b').sum())}.")
    table, factors, cost_a, cost_b = _decompose(per_trace, n_boot, level, seed)
    rows = []
    for group, part in per_trace.groupby("group", dropna=False):
        if set(part["window"]) == {"a", "b"}:
            t, _, ca, cb = _decompose(part, n_boot, level, seed)
            rows.append(t.assign(group=group, cost_a=ca, cost_b=cb))
    per_group = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return SpendChange(table, factors, per_group, ((a0, a1), (b0, b1)), cost_a, cost_b, tuple(notes))


def _per_trace(calls: pd.DataFrame, by: str, prices) -> tuple[pd.DataFrame, list[str]]:
    """Per trace: group, start, priced calls, actual cost and cost at reference prices."""
    from aiscale.pricing.rates import price_frame

    notes = []
    unpriced = int((~calls["priced"]).sum())
    if unpriced:
        notes.append(f"{unpriced:,} calls without a price are left out of both windows.")
    started = calls.groupby("trace_id")["start_time"].transform("min")
    calls = calls.assign(_started=pd.to_datetime(started, utc=True)).loc[calls["priced"]]
    if by == "model":
        main = calls.groupby(["trace_id", "model"]).size().rename("n").reset_index()
        main = main.sort_values(["trace_id", "n"], ascending=[True, False]).drop_duplicates("trace_id")
        calls = calls.merge(main[["trace_id", "model"]].rename(columns={"model": "_group"}), on="trace_id")
    else:
        check_columns(calls, [by], "calls")
        calls = calls.assign(_group=calls[by].astype("string").fillna("unknown"))
    first = calls.groupby(["provider", "model"], dropna=False)["start_time"].transform("min")
    ref = price_frame(calls.assign(start_time=first)[["trace_id", "start_time", "provider", "model",
                      "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                      "reasoning_tokens"]], prices=prices)
    calls = calls.assign(_ref=ref["cost_usd"].astype(float).fillna(0.0).to_numpy())
    g = calls.groupby("trace_id")
    out = pd.DataFrame({"group": g["_group"].first(), "started": g["_started"].first(),
                        "calls": g.size().astype(float), "cost": g["cost_usd"].sum(),
                        "ref": g["_ref"].sum()}).reset_index()
    return out, notes


def _windows(started: pd.Series, at, period: str, windows):
    if windows is not None:
        (a0, a1), (b0, b1) = windows
        return tuple((_utc(x), _utc(y)) for x, y in ((a0, a1), (b0, b1)))
    span = pd.Timedelta(period)
    b0 = _utc(at) if at is not None else started.max().floor("D") + pd.Timedelta(days=1) - span
    return (b0 - span, b0), (b0, b0 + span)


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _decompose(per_trace: pd.DataFrame, n_boot: int, level: float, seed):
    groups = sorted(per_trace["group"].astype(str).unique())
    sums, counts = {}, {}
    for w in ("a", "b"):
        part = per_trace.loc[per_trace["window"] == w]
        counts[w] = part.groupby("group")["calls"].size().reindex(groups, fill_value=0).to_numpy(float)
        sums[w] = part.groupby("group")[["calls", "ref", "cost"]].sum().reindex(groups).to_numpy(float)
    point = shapley_terms(*_factors(counts, {w: s[None] for w, s in sums.items()}))[0]
    draws = shapley_terms(*_factors(counts, _boot_sums(per_trace, groups, n_boot, seed)))
    alpha = float(_expanded_alpha(level, np.array([len(per_trace)]))[0])
    lo, hi = np.nanquantile(draws, [alpha, 1 - alpha], axis=0)
    cost_a, cost_b = float(np.nansum(sums["a"][:, 2])), float(np.nansum(sums["b"][:, 2]))
    change = cost_b - cost_a
    table = pd.DataFrame({"term": TERMS, "usd": point, "lower": lo, "upper": hi,
                          "share_of_change": point / change if change else np.nan})
    factors = _factor_table(groups, counts, sums)
    return table, factors, cost_a, cost_b


def _factors(counts: dict, sums: dict):
    """Factors (N, s, k, u, P) per window; k, u, P are (resamples, groups)."""
    out = {}
    for w in ("a", "b"):
        s = sums[w]
        n_g = counts[w]
        with np.errstate(invalid="ignore", divide="ignore"):
            k = s[..., 0] / n_g
            u = s[..., 1] / s[..., 0]
            p = np.where(s[..., 1] > 0, s[..., 2] / s[..., 1], 1.0)
        out[w] = (n_g.sum(), n_g / n_g.sum(), k, u, p)
    for j in (2, 3, 4):  # a group absent from a window takes the other window's values
        xa, xb = out["a"][j], out["b"][j]
        out["a"] = (*out["a"][:j], np.where(np.isnan(xa), xb, xa), *out["a"][j + 1:])
        out["b"] = (*out["b"][:j], np.where(np.isnan(out["b"][j]), out["a"][j], out["b"][j]),
                    *out["b"][j + 1:])
    return out["a"], out["b"]


def shapley_terms(a: tuple, b: tuple) -> np.ndarray:
    """Shapley split of ``V(b) - V(a)`` with ``V = N * sum_g s_g k_g u_g P_g`` over its 5 factors.

    ``a`` and ``b`` are (N, s, k, u, P); k, u, P may carry a leading resample axis. Returns
    (resamples, 5) terms summing to the change.

    Examples
    --------
    >>> a = (10, np.array([1.0]), np.array([[2.0]]), np.array([[1.0]]), np.array([[1.0]]))
    >>> b = (20, np.array([1.0]), np.array([[2.0]]), np.array([[1.0]]), np.array([[1.0]]))
    >>> shapley_terms(a, b).tolist()
    [[20.0, 0.0, 0.0, 0.0, 0.0]]
    """
    n = len(TERMS)

    def value(subset: tuple[int, ...]) -> np.ndarray:
        f = [b[i] if i in subset else a[i] for i in range(n)]
        return f[0] * np.nansum(np.asarray(f[1]) * f[2] * f[3] * f[4], axis=-1)

    values = {s: value(s) for r in range(n + 1) for s in combinations(range(n), r)}
    terms = []
    for i in range(n):
        total = 0.0
        for s, v in values.items():
            if i in s:
                continue
            weight = factorial(len(s)) * factorial(n - len(s) - 1) / factorial(n)
            total = total + weight * (values[tuple(sorted((*s, i)))] - v)
        terms.append(total)
    return np.atleast_2d(np.column_stack(terms))


def _boot_sums(per_trace: pd.DataFrame, groups: list[str], n_boot: int, seed) -> dict:
    """Resampled sums of (calls, ref, cost) per window and group: (n_boot, groups, 3)."""
    rng = np.random.default_rng(seed)
    out = {}
    for w in ("a", "b"):
        arr = np.full((n_boot, len(groups), 3), np.nan)
        part = per_trace.loc[per_trace["window"] == w]
        for j, g in enumerate(groups):  # one stratum per group: a handful, not per trace
            x = part.loc[part["group"].astype(str) == g, ["calls", "ref", "cost"]].to_numpy(float)
            if len(x):
                arr[:, j, :] = np.vstack([wt @ x for wt in bootstrap_weights(len(x), n_boot, rng)])
        out[w] = arr
    return out


def _factor_table(groups, counts, sums) -> pd.DataFrame:
    rows = []
    for w in ("a", "b"):
        for j, g in enumerate(groups):
            n_g, (calls, ref, cost) = counts[w][j], sums[w][j]
            rows.append({"window": w, "group": g, "traces": int(n_g),
                         "share": n_g / counts[w].sum(), "calls_per_trace": calls / n_g if n_g else np.nan,
                         "work_per_call_usd": ref / calls if calls else np.nan,
                         "price_index": cost / ref if ref else np.nan, "cost_usd": cost if n_g else 0.0})
    return pd.DataFrame(rows)
