"""Latency per LLM call: time to first token and output tokens per second, per model.

Time to first token (TTFT) is read where a source records it in the span attributes
(:data:`aiscale.schema.TTFT_KEYS`, seconds; ``*_ms`` keys in milliseconds; or a ``ttft_s``
column read from them before). Output tokens per second is the
decode speed ``output_tokens / (duration - TTFT)`` where TTFT is known, else the end-to-end
rate ``output_tokens / duration`` (the ``rate`` column says which). Percentiles are inverse
empirical CDFs; intervals come from a bootstrap that resamples traces (the calls of one trace
together), vectorised with the shared statistics kit; from
:data:`~aiscale.analysis._stats.CLOSED_FORM_TASKS` traces of a group on, from trace-clustered
Woodruff intervals (:func:`~aiscale.analysis._stats.woodruff_quantiles`, no resampling).

Examples
--------
>>> import pandas as pd
>>> t = pd.Timestamp("2025-01-01", tz="UTC")
>>> spans = pd.DataFrame({"trace_id": ["a", "b"], "kind": "llm", "model": "m",
...     "start_time": t, "end_time": [t + pd.Timedelta(seconds=2), t + pd.Timedelta(seconds=3)],
...     "output_tokens": [100, 100], "attributes": ['{"ttft_ms": 1000}', '{"ttft_ms": 2000}']})
>>> call_latency(spans, n_boot=50).summary()[["model", "calls", "ttft_p50", "tokens_per_s_p50"]]
  model  calls  ttft_p50  tokens_per_s_p50
0     m      2       1.0             100.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.analysis._result import ResultDisplay, check_columns, new_axes
from aiscale.analysis._stats import (
    CLOSED_FORM_TASKS,
    bootstrap_weights,
    weighted_quantiles,
    woodruff_quantiles,
)
from aiscale.schema import ttft_sql

__all__ = ["CallLatency", "call_latency"]

QUANTILES = (0.5, 0.95)
PLOTTED_CALLS = 5_000  # calls of a group drawn in the scatter (more only blot a report's figure)


@dataclass(frozen=True, eq=False, repr=False)
class CallLatency(ResultDisplay):
    """TTFT and output tokens per second per group, percentiles with intervals."""

    table: pd.DataFrame = field(repr=False)
    calls: pd.DataFrame = field(repr=False)
    by: str
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<aiscale.CallLatency: {len(self.calls)} calls, {len(self.table)} {self.by}(s)>"

    def summary(self) -> pd.DataFrame:
        """One row per group: calls, calls with TTFT, percentiles and their intervals."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """One row per call: group, duration_s, ttft_s, tokens_per_s, rate."""
        return self.calls.copy()

    def plot(self, ax=None, *, max_points: int = PLOTTED_CALLS, **kwargs):
        """Output tokens per second against TTFT per call, one colour per group (at most
        ``max_points`` calls of a group drawn, a seeded random sample: more only blot)."""
        ax = new_axes(ax)
        c = self.calls[["ttft_s", "duration_s", "tokens_per_s"]]  # grouped by the labels: no text taken
        for name, g in c.groupby(self.calls[self.by], dropna=False):
            g = g.loc[g["tokens_per_s"].notna().to_numpy()]
            if g.empty:  # no call of the group has a rate
                continue
            if len(g) > max_points:
                g = g.iloc[np.sort(np.random.default_rng(0).choice(len(g), max_points, replace=False))]
            x = g["ttft_s"] if g["ttft_s"].notna().any() else g["duration_s"]
            ax.scatter(x, g["tokens_per_s"], s=6, alpha=0.5, label=str(name), **kwargs)
        known = self.calls["ttft_s"].notna().any()
        ax.set(xscale="log", yscale="log", ylabel="output tokens per second",
               xlabel="time to first token (s)" if known else "call duration (s)")
        ax.legend(fontsize="x-small")
        return ax


def call_latency(spans: pd.DataFrame, *, by: str = "model", level: float = 0.95,
                 n_boot: int = 1000, seed: int | None = 0) -> CallLatency:
    """Time to first token and output tokens per second per model, with trace-bootstrap CIs.

    Parameters
    ----------
    spans : pandas.DataFrame
        Spans with start_time, end_time, output_tokens and attributes or ``ttft_s`` (LLM rows
        are used).
    by : str, default="model"
    level, n_boot, seed
        Interval level, bootstrap resamples, seed.

    Returns
    -------
    CallLatency
        ``summary()`` with ``ttft_p50``, ``ttft_p95``, ``tokens_per_s_p50``,
        ``tokens_per_s_p95`` and ``_lower`` / ``_upper`` for each; ``rate`` says whether
        tokens per second is the decode rate (after the first token) or end to end.
    """
    check_columns(spans, ["trace_id", "start_time", "end_time", "output_tokens", by], "spans")
    calls = spans.loc[spans["kind"] == "llm"] if "kind" in spans.columns else spans
    calls = calls.reset_index(drop=True)
    duration = (pd.to_datetime(calls["end_time"], utc=True)
                - pd.to_datetime(calls["start_time"], utc=True)).dt.total_seconds()
    duration = duration.to_numpy(dtype=float, na_value=np.nan)
    ttft = _ttft(calls)
    ttft = np.where((ttft >= 0) & (ttft <= duration), ttft, np.nan)
    out = pd.to_numeric(calls["output_tokens"]).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    decode = duration - np.nan_to_num(ttft)
    with np.errstate(invalid="ignore", divide="ignore"):
        speed = np.where((out > 0) & (decode > 0), out / decode, np.nan)
    frame = pd.DataFrame({"trace_id": _text(calls["trace_id"]), by: _text(calls[by]),
                          "duration_s": duration, "ttft_s": ttft, "tokens_per_s": speed,
                          "rate": _rates(np.isnan(ttft))})
    # the groups read numbers and each call's trace as an integer (one hash pass of the ids):
    # no text is taken per group
    numbers = pd.DataFrame({"trace_id": pd.factorize(frame["trace_id"])[0], "ttft_s": ttft,
                            "tokens_per_s": speed})
    rows = [_row(name, g, by, level, n_boot, seed) for name, g in numbers.groupby(frame[by], dropna=False)]
    notes = () if np.isfinite(ttft).any() else (
        "No call records a time to first token: tokens per second is end to end (includes it).",)
    return CallLatency(pd.DataFrame(rows), frame, by, notes)


def _rates(end_to_end: np.ndarray) -> pd.Series:
    """Each call's rate label as text, built by Arrow (no NumPy string array converted)."""
    labels = pc.if_else(pa.array(end_to_end, pa.bool_()), "end to end", "after first token")
    return pd.Series(labels, dtype="str")


def _text(values: pd.Series):
    """Text columns as they are (no round trip through Python objects), others as NumPy values."""
    return values.array if values.dtype == "str" else values.to_numpy()


def _ttft(calls: pd.DataFrame) -> np.ndarray:
    """Time to first token per call (s): read from ``attributes``, else a ``ttft_s`` column
    read from them before (a store's priced calls), else unknown."""
    if "attributes" not in calls.columns:
        if "ttft_s" in calls.columns:
            return pd.to_numeric(calls["ttft_s"]).to_numpy(dtype=float, na_value=np.nan)
        return np.full(len(calls), np.nan)
    con = duckdb.connect()
    con.register("attrs", pd.DataFrame({"a": calls["attributes"].astype("string")}))
    got = con.execute(f"SELECT {ttft_sql('a')} AS t FROM attrs").df()["t"]
    con.close()
    return got.to_numpy(dtype=float, na_value=np.nan)


def _row(name, g: pd.DataFrame, by: str, level: float, n_boot: int, seed) -> dict:
    row = {by: name, "calls": len(g), "calls_with_ttft": int(g["ttft_s"].notna().sum()),
           "rate": "after first token" if g["ttft_s"].notna().all() else "end to end"}
    codes, uniq = pd.factorize(g["trace_id"])
    closed = bool(n_boot) and len(uniq) >= CLOSED_FORM_TASKS
    rng = np.random.default_rng(seed)
    weights = (list(bootstrap_weights(len(uniq), n_boot, rng)) if n_boot and len(uniq) > 1 and not closed
               else [])
    a = (1 - level) / 2
    for column, label in (("ttft_s", "ttft"), ("tokens_per_s", "tokens_per_s")):
        x = g[column].to_numpy(float)
        ok = ~np.isnan(x)
        if closed:  # many traces: trace-clustered Woodruff intervals, one sort, no resampling
            est, lo, hi = woodruff_quantiles(x[ok], codes[ok], QUANTILES, level=level)
            for j, q in enumerate(QUANTILES):
                key = f"{label}_p{q * 100:g}"
                row[key], row[f"{key}_lower"], row[f"{key}_upper"] = (float(v) for v in (est[j], lo[j], hi[j]))
            continue
        for q in QUANTILES:
            key = f"{label}_p{q * 100:g}"
            row[key] = float(np.quantile(x[ok], q, method="inverted_cdf")) if ok.any() else np.nan
        draws = (np.vstack([weighted_quantiles(x[ok], codes[ok], w, QUANTILES) for w in weights])
                 if weights and ok.any() else np.full((1, len(QUANTILES)), np.nan))
        for j, q in enumerate(QUANTILES):
            key = f"{label}_p{q * 100:g}"
            finite = draws[:, j][np.isfinite(draws[:, j])]
            lo, hi = np.quantile(finite, [a, 1 - a]) if len(finite) else (np.nan, np.nan)
            row[f"{key}_lower"], row[f"{key}_upper"] = float(lo), float(hi)
    return row
