"""How predictable is cost per task: CV, quantiles, tail ratio, exceedance, expected shortfall.

Bootstrap CIs use the percentile method (the BCa method is ~80x slower at this size; see
PERFORMANCE-NOTES): quantiles are drawn exactly from order statistics, in O(resamples); the
mean, CV and expected shortfall from resampled indices in NumPy, in batches, m-out-of-n above
20,000 values in a group (see :func:`_bootstrap`).

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

from aiscale.analysis._result import ResultDisplay, check_choice, check_columns, new_axes

QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def _stats(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics along axis 1 of a (batch, n) array."""
    q = np.quantile(samples, [0.5, 0.9, 0.95, 0.99], axis=1)
    mean = samples.mean(axis=1)
    tail = np.where(samples >= q[2][:, None], samples, np.nan)
    return {"mean": mean, "cv": samples.std(axis=1, ddof=1) / mean, "p50": q[0], "p90": q[1],
            "p99": q[3], "p99/p50": q[3] / q[0], "es95": np.nanmean(tail, axis=1)}


def _moment_stats(samples: np.ndarray) -> dict[str, np.ndarray]:
    """The metrics of :func:`_stats` that are not quantiles (one partition, for the p95)."""
    p95 = np.quantile(samples, 0.95, axis=1)
    mean = samples.mean(axis=1)
    tail = np.where(samples >= p95[:, None], samples, np.nan)
    return {"mean": mean, "cv": samples.std(axis=1, ddof=1) / mean, "es95": np.nanmean(tail, axis=1)}


def quantile_draws(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Bootstrap draws of p50, p90, p99 and p99/p50 of resamples of all n values, exactly.

    A resample's order statistics are ``v[ceil(n U) - 1]`` for the order statistics U of n
    uniforms (``v`` sorted), and the joint law of a few of them comes from Gamma spacings
    (U_(k) = S_k / S_(n+1), S partial sums of exponentials). So the joint bootstrap law of the
    quantiles (linear interpolation, as ``np.quantile``) costs O(n_boot), not O(n_boot x n).

    Examples
    --------
    >>> d = quantile_draws(np.arange(1.0, 101.0), 4000, np.random.default_rng(0))
    >>> [round(float(np.std(d["p50"])), 1), bool(np.all(d["p99"] >= d["p50"]))]
    [5.0, True]
    """
    v = np.sort(np.asarray(x, dtype=float))
    n = len(v)
    low = {k: int(np.floor((n - 1) * q)) for k, q in QUANTILES.items()}  # 0-based lower rank
    ranks = np.unique([r + d for r in low.values() for d in (1, 2) if r + d <= n])  # 1-based
    shapes = np.diff(np.concatenate([[0], ranks, [n + 1]])).astype(float)
    spacing = rng.standard_gamma(shapes, size=(n_boot, len(shapes)))
    cum = np.cumsum(spacing, axis=1)
    u = cum[:, :-1] / cum[:, -1:]
    order_stats = v[np.clip(np.ceil(n * u).astype(np.int64) - 1, 0, n - 1)]
    at = {int(r): j for j, r in enumerate(ranks)}
    out = {}
    for k, q in QUANTILES.items():
        r = low[k]
        frac = (n - 1) * q - r
        below = order_stats[:, at[r + 1]]
        above = order_stats[:, at[r + 2]] if r + 2 <= n else below
        out[k] = below + frac * (above - below)
    out["p99/p50"] = out["p99"] / out["p50"]
    return out


# Above this many values per group a bootstrap resample of the mean, CV and expected
# shortfall draws this many (m-out-of-n); the quantiles are always resampled in full.
BOOTSTRAP_MAX_VALUES = 20_000


METRICS = ("mean", "cv", "p50", "p90", "p99", "p99/p50", "es95")


def _bootstrap(x: np.ndarray, n_boot: int, rng: np.random.Generator, level: float,
               max_values: int = BOOTSTRAP_MAX_VALUES,
               metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Percentile CIs: the quantiles exactly (:func:`quantile_draws`), the rest by resampling.

    Above ``max_values`` values, the mean, CV and expected shortfall are bootstrapped
    m-out-of-n: each resample draws ``m = max_values`` values and its deviation from the
    estimate of the whole sample is shrunk by ``sqrt(m / n)`` (their spread falls as
    1/sqrt(n)), so 1 M values cost what 20,000 do.
    """
    for name in metrics or ():
        check_choice("metrics", name, list(METRICS))
    est = {k: float(v[0]) for k, v in _stats(x[None, :]).items() if k in (metrics or METRICS)}
    m = min(len(x), max_values)
    shrink = np.sqrt(m / len(x))
    batch = max(1, int(5_000_000 // max(m, 1)))
    exact = quantile_draws(x, n_boot, rng)  # first: the same draws whichever metrics are asked
    draws: dict[str, list] = {k: [] for k in ("mean", "cv", "es95")}
    for start in range(0, n_boot if set(est) & set(draws) else 0, batch):
        idx = rng.integers(0, len(x), (min(batch, n_boot - start), m))
        for k, v in _moment_stats(x[idx]).items():
            draws[k].append(v)
    a = (1 - level) / 2
    rows = []
    for k, v in est.items():
        if k in exact:
            d = exact[k]
        else:
            d = np.concatenate(draws[k])
            d = v + (d - v) * shrink if m < len(x) else d
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
                   level: float = 0.95, seed: int = 0,
                   metrics: Sequence[str] | None = None) -> Predictability:
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
        Bootstrap resamples (percentile method). Quantiles (and p99/p50) are resampled in
        full, exactly and in O(n_boot) (:func:`quantile_draws`); above 20,000 values in a
        group the mean, CV and expected shortfall draw 20,000 per resample and rescale the
        deviation by sqrt(20,000 / n) (m-out-of-n bootstrap); the estimates use every value.
    level, seed
        Interval level and random seed.
    metrics : list of str, optional
        The metrics to report, from :data:`METRICS` (default all); asking only for quantiles
        and p99/p50 skips the resampling of values altogether.
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
        t = _bootstrap(x, n_boot, rng, level, metrics=metrics)
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
