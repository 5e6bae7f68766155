"""How predictable is cost per task: CV, quantiles, tail ratio, exceedance, expected shortfall.

Bootstrap CIs use the percentile method on resampled indices in NumPy, in batches (the
BCa method is ~80x slower at this size; see PERFORMANCE-NOTES); above 20,000 values a group
is bootstrapped m-out-of-n (see :func:`_bootstrap`).

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> facts = pd.DataFrame({"variant": ["a"] * 500, "cost_usd": rng.lognormal(0, 1, 500)})
>>> p = predictability(facts, n_boot=200)
>>> p.summary().set_index("metric").loc["p50", "estimate"].round(1)
np.float64(1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_columns, new_axes


def _stats(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics along axis 1 of a (batch, n) array."""
    q = np.quantile(samples, [0.5, 0.9, 0.95, 0.99], axis=1)
    mean = samples.mean(axis=1)
    tail = np.where(samples >= q[2][:, None], samples, np.nan)
    return {"mean": mean, "cv": samples.std(axis=1, ddof=1) / mean, "p50": q[0], "p90": q[1],
            "p99": q[3], "p99/p50": q[3] / q[0], "es95": np.nanmean(tail, axis=1)}


# Above this many values per group a bootstrap resample draws this many (m-out-of-n).
BOOTSTRAP_MAX_VALUES = 20_000


def _bootstrap(x: np.ndarray, n_boot: int, rng: np.random.Generator, level: float,
               max_values: int = BOOTSTRAP_MAX_VALUES) -> pd.DataFrame:
    """Percentile CIs; above ``max_values`` values, m-out-of-n with sqrt(m/n) rescaling.

    Each resample then draws ``m = max_values`` values and its deviation from the estimate
    of the whole sample is shrunk by ``sqrt(m / n)`` (the spread of these metrics falls as
    1/sqrt(n)), so 1 M values cost what 20,000 do.
    """
    est = {k: float(v[0]) for k, v in _stats(x[None, :]).items()}
    m = min(len(x), max_values)
    shrink = np.sqrt(m / len(x))
    batch = max(1, int(5_000_000 // max(m, 1)))
    draws: dict[str, list] = {k: [] for k in est}
    for start in range(0, n_boot, batch):
        idx = rng.integers(0, len(x), (min(batch, n_boot - start), m))
        for k, v in _stats(x[idx]).items():
            draws[k].append(v)
    a = (1 - level) / 2
    rows = []
    for k, v in est.items():
        d = np.concatenate(draws[k])
        if m < len(x):
            d = v + (d - v) * shrink
        rows.append({"metric": k, "estimate": v, "ci_low": np.quantile(d, a),
                     "ci_high": np.quantile(d, 1 - a)})
    return pd.DataFrame(rows)


@dataclass(frozen=True, repr=False)
class Predictability(ResultDisplay):
    """Per-group spread of cost: metrics with bootstrap CIs and exceedance probabilities."""

    column: str
    by: str | None
    table: pd.DataFrame = field(compare=False)
    exceedance: pd.DataFrame = field(compare=False)
    values: dict = field(compare=False)
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (f"<aiscale.Predictability of {self.column}: {len(self.values)} groups, "
                f"{sum(len(v) for v in self.values.values())} known values>")

    def summary(self) -> pd.DataFrame:
        return self.table

    def frame(self) -> pd.DataFrame:
        """P(value > x) per group at the requested thresholds."""
        return self.exceedance

    def plot(self, ax=None, **kwargs):
        """Empirical survival P(cost > x) per group on log axes."""
        ax = new_axes(ax)
        for name, x in self.values.items():
            xs = np.sort(x)
            ax.step(xs, 1 - np.arange(1, len(xs) + 1) / (len(xs) + 1), where="post",
                    label=str(name), **kwargs)
        ax.set(xscale="log", yscale="log", xlabel=self.column, ylabel="P(X > x)")
        ax.legend(fontsize="small")
        return ax


def predictability(facts: pd.DataFrame, *, column: str = "cost_usd", by: str | None = "variant",
                   thresholds: Sequence[float] | None = None, n_boot: int = 1000,
                   level: float = 0.95, seed: int = 0) -> Predictability:
    """CV, p50/p90/p99, p99/p50 and expected shortfall above p95, with bootstrap CIs.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts (or any frame with ``column``).
    column : str, default="cost_usd"
        The quantity; missing values are unknown and counted, not treated as zero.
    by : str or None, default="variant"
        Group column (None: one group).
    thresholds : list of float, optional
        Values x for P(value > x) (with Wilson-free binomial SE); default the overall p90, p99.
    n_boot : int, default=1000
        Bootstrap resamples (percentile method). Above 20,000 values in a group each
        resample draws 20,000 and its deviation is rescaled by sqrt(20,000 / n)
        (m-out-of-n bootstrap); the estimates themselves use every value.
    """
    check_columns(facts, [column] + ([by] if by else []))
    groups = facts.groupby(by, dropna=False) if by else [("all", facts)]
    rng = np.random.default_rng(seed)
    values = {name: g[column].to_numpy(dtype=float, na_value=np.nan) for name, g in groups}
    known = {k: v[np.isfinite(v)] for k, v in values.items()}
    notes = [f"{k}: {column} unknown for {len(values[k]) - len(v)} of {len(values[k])} rows."
             for k, v in known.items() if len(v) < len(values[k])]
    allx = np.concatenate([v for v in known.values()]) if known else np.array([])
    if thresholds is None and len(allx):
        thresholds = list(np.quantile(allx, [0.9, 0.99]))
    tables, exceed = [], []
    for name, x in known.items():
        if len(x) < 2:
            notes.append(f"{name}: fewer than 2 known values; no metrics.")
            continue
        t = _bootstrap(x, n_boot, rng, level)
        t.insert(0, "group", name)
        t["n"] = len(x)
        tables.append(t)
        for thr in thresholds or []:
            p = float(np.mean(x > thr))
            exceed.append({"group": name, "threshold": thr, "p_exceed": p,
                           "se": np.sqrt(p * (1 - p) / len(x))})
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
        columns=["group", "metric", "estimate", "ci_low", "ci_high", "n"])
    return Predictability(column, by, table, pd.DataFrame(exceed), known, tuple(notes))
