"""Reconcile the cost a source reported with aiscale's own price, per model.

Platforms report costs (OpenRouter per call, tau2 per message, Langfuse/LangSmith totals)
that are often wrong: stale prices, cache reads billed as input, reasoning tokens missed.
:func:`reconcile` prices every LLM call from its tokens (:func:`aiscale.pricing.price_frame`)
and sets it beside the reported figure.

Examples
--------
>>> import pandas as pd
>>> spans = pd.DataFrame({"kind": ["llm", "llm"], "trace_id": ["a", "b"],
...     "start_time": pd.to_datetime(["2025-11-19", "2025-11-19"], utc=True),
...     "provider": ["openrouter"] * 2, "model": ["google/gemini-3-pro-preview"] * 2,
...     "input_tokens": [1000, 2000], "output_tokens": [100, 100],
...     "reported_cost_usd": [0.0032, 0.01]})
>>> r = reconcile(spans)
>>> r.summary()[["model", "calls", "reported_usd", "aiscale_usd", "gap_usd"]].round(4)
                         model  calls  reported_usd  aiscale_usd  gap_usd
0  google/gemini-3-pro-preview      2        0.0132       0.0084   0.0048
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_columns, new_axes


@dataclass(frozen=True, repr=False)
class Reconciliation(ResultDisplay):
    """Reported versus aiscale cost, per call (``frame``) and per group (``summary``)."""

    by: str
    calls: pd.DataFrame = field(compare=False)
    unit: str = "call"
    tolerance: float = 0.01

    def __repr__(self) -> str:
        s = self.calls
        both = s["reported_cost_usd"].notna() & s["cost_usd"].notna()
        gap = s.loc[both, "reported_cost_usd"].sum() - s.loc[both, "cost_usd"].sum()
        return (f"<aiscale.Reconciliation: {len(s)} {self.unit}s, {int(both.sum())} with both "
                f"costs, reported minus aiscale ${gap:,.4f}>")

    def frame(self) -> pd.DataFrame:
        """Per-call (or per-trace) rows: the group, reported_cost_usd, cost_usd, gap_usd."""
        out = self.calls[[self.by, "reported_cost_usd", "cost_usd"]].copy()
        out["gap_usd"] = out["reported_cost_usd"] - out["cost_usd"]
        return out

    def summary(self) -> pd.DataFrame:
        """One row per group: counts, sums over rows with both costs, the gap and its share."""
        f = self.frame()
        f["both"] = f["reported_cost_usd"].notna() & f["cost_usd"].notna()
        f["rel"] = (f["gap_usd"] / f["cost_usd"]).where(f["both"] & (f["cost_usd"] > 0))
        f["within"] = f["rel"].abs() <= self.tolerance
        f["rep_both"] = f["reported_cost_usd"].where(f["both"])
        f["ais_both"] = f["cost_usd"].where(f["both"])
        g = f.groupby(self.by, dropna=False)
        out = pd.DataFrame({
            f"{self.unit}s": g.size(),
            "reported": g["reported_cost_usd"].count(),
            "priced": g["cost_usd"].count(),
            "both": g["both"].sum(),
            "reported_usd": g["rep_both"].sum(min_count=1),
            "aiscale_usd": g["ais_both"].sum(min_count=1),
        })
        out["gap_usd"] = out["reported_usd"] - out["aiscale_usd"]
        out["gap_pct"] = 100 * out["gap_usd"] / out["aiscale_usd"]
        out["median_gap_pct"] = 100 * g["rel"].median()
        out[f"share_within_{self.tolerance:.0%}"] = g["within"].sum() / out["both"].where(out["both"] > 0)
        out["unpriced_reported_usd"] = g.apply(
            lambda d: d["reported_cost_usd"].where(d["cost_usd"].isna()).sum(min_count=1),
            include_groups=False)
        return out.reset_index()

    def plot(self, ax=None, **kwargs):
        """Reported against aiscale cost per row on log axes, with the line of agreement."""
        ax = new_axes(ax)
        f = self.frame().dropna(subset=["reported_cost_usd", "cost_usd"])
        f = f[(f["reported_cost_usd"] > 0) & (f["cost_usd"] > 0)]
        for name, group in f.groupby(self.by, dropna=False):
            ax.scatter(group["cost_usd"], group["reported_cost_usd"], s=8, label=str(name), **kwargs)
        if len(f):
            lo = min(f["cost_usd"].min(), f["reported_cost_usd"].min())
            hi = max(f["cost_usd"].max(), f["reported_cost_usd"].max())
            ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--", label="agreement")
        ax.set(xscale="log", yscale="log", xlabel=f"aiscale cost per {self.unit} (USD)",
               ylabel=f"reported cost per {self.unit} (USD)")
        ax.legend(fontsize="small")
        return ax


def reconcile(data, *, by: str | None = None, prices: str | Path | pd.DataFrame | None = None,
              tolerance: float = 0.01, already_priced: bool = False) -> Reconciliation:
    """Compare reported costs with aiscale's prices, per model (or per variant for facts).

    Parameters
    ----------
    data : TraceStore, spans DataFrame or facts DataFrame
        A store or a frame of spans (priced here, LLM spans only, grouped by model); or a
        facts frame (one row per trace with cost_usd and reported_cost_usd, grouped by variant).
    by : str, optional
        Group column; default "model" for spans, "variant" for facts.
    prices : path or DataFrame, optional
        A price sheet that overrides genai-prices (spans only).
    tolerance : float, default=0.01
        Relative gap under which a call counts as agreeing.
    already_priced : bool, default=False
        ``data`` holds calls :func:`~aiscale.analysis.spend.calls.llm_calls` already priced
        with the same ``prices``: their ``cost_usd`` is used, not priced again (same result).

    Returns
    -------
    Reconciliation
        ``summary()`` per group: counts, reported and aiscale USD over rows with both,
        the gap (reported minus aiscale) in USD and percent; ``plot()`` a log-log scatter.
    """
    if hasattr(data, "spans") and callable(data.spans):
        data = data.spans(priced=False)  # priced below, with `prices`
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"`data` must be a TraceStore or a DataFrame, but {type(data).__name__} "
                        "was passed.")
    if "model" in data.columns:
        check_columns(data, ["start_time", "model", "reported_cost_usd"])
        calls = data[data["kind"] == "llm"] if "kind" in data.columns else data
        calls = _priced(calls, prices, already_priced)
        return Reconciliation(by=by or "model", calls=calls, unit="call", tolerance=tolerance)
    check_columns(data, ["cost_usd", "reported_cost_usd"], "data")
    group = by or "variant"
    check_columns(data, [group], "data")
    calls = data.assign(cost_usd=data["cost_usd"].astype(float),
                        reported_cost_usd=data["reported_cost_usd"].astype(float))
    return Reconciliation(by=group, calls=calls, unit="trace", tolerance=tolerance)


def _priced(calls: pd.DataFrame, prices, already_priced: bool = False) -> pd.DataFrame:
    from aiscale.pricing.rates import price_frame

    if already_priced:
        check_columns(calls, ["cost_usd", "priced"], "calls (already_priced=True: priced by llm_calls)")
        out = calls.reset_index(drop=True)
    else:
        out = price_frame(calls.drop(columns=[c for c in ("cost_usd", "priced", "price_source")
                                              if c in calls.columns]), prices=prices)
    out["reported_cost_usd"] = pd.to_numeric(out["reported_cost_usd"]).astype(float)
    out["cost_usd"] = out["cost_usd"].astype(float).where(out["priced"], np.nan)
    return out
