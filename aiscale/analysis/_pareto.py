"""Shared pieces of the tradeoff analyses: Pareto masks, costs with their source, weighted quantiles.

Pareto masks are vectorised over bootstrap resamples: points come as arrays of shape
(resamples, variants) per objective, and the mask says which variants no other variant beats.

Examples
--------
>>> import numpy as np
>>> pareto_mask(np.array([[1.0, 2.0, 3.0]]), np.array([[0.5, 0.4, 0.9]])).tolist()
[[True, False, True]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiscale.analysis import _intervals as iv
from aiscale.analysis._outcomes import check_columns

_CELLS = 4_000_000  # resamples x traces held at once


def pareto_mask(cost: np.ndarray, success: np.ndarray, latency: np.ndarray | None = None,
                ) -> np.ndarray:
    """Non-dominated mask over the last axis (lower cost and latency, higher success are better).

    Variants with a NaN objective are never on the front and never dominate.
    """
    objs = [np.atleast_2d(cost), -np.atleast_2d(success)]
    if latency is not None:
        objs.append(np.atleast_2d(latency))
    ok = np.logical_and.reduce([np.isfinite(o) for o in objs])
    # le[b, u, v]: u at least as good as v on every objective; lt: strictly better on one
    le = np.logical_and.reduce([o[:, :, None] <= o[:, None, :] for o in objs])
    lt = np.logical_or.reduce([o[:, :, None] < o[:, None, :] for o in objs])
    dominated = (le & lt & ok[:, :, None]).any(axis=1)
    return ok & ~dominated


def dominators(cost, success, names, latency=None) -> list[str]:
    """For each point, the names of the points that dominate it ('' when none), by estimates."""
    c, s = np.asarray(cost, float), np.asarray(success, float)
    lat = None if latency is None else np.asarray(latency, float)
    out = []
    for v in range(len(c)):
        better = (c <= c[v]) & (s >= s[v]) & ((c < c[v]) | (s > s[v]))
        if lat is not None:
            better = (c <= c[v]) & (s >= s[v]) & (lat <= lat[v]) & (
                (c < c[v]) | (s > s[v]) | (lat < lat[v]))
        out.append(", ".join(str(names[u]) for u in np.flatnonzero(better)))
    return out


def floats(series: pd.Series) -> np.ndarray:
    """Any numeric or boolean (nullable, Arrow) column as float64 with NaN for null."""
    if series.dtype == object:
        series = pd.Series(pd.array(series, dtype="Float64"), index=series.index)
    return pd.to_numeric(series, errors="raise").astype("Float64").to_numpy(
        dtype=float, na_value=np.nan)


def trace_cost(facts: pd.DataFrame, cost: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Cost per trace and where it came from.

    ``cost="auto"`` takes ``cost_usd`` (aiscale's price) and falls back to
    ``reported_cost_usd`` trace by trace; any other value names one column. Returns the costs
    (NaN = unpriced) and an array of source column names ('' where unpriced).

    Examples
    --------
    >>> f = pd.DataFrame({"cost_usd": [1.0, None], "reported_cost_usd": [2.0, 3.0]})
    >>> c, src = trace_cost(f)
    >>> c.tolist(), src.tolist()
    ([1.0, 3.0], ['cost_usd', 'reported_cost_usd'])
    """
    n = len(facts)
    if cost != "auto":
        check_columns(facts, [cost])
        values = floats(facts[cost])
        return values, np.where(np.isnan(values), "", cost).astype(object)
    cols = [c for c in ("cost_usd", "reported_cost_usd") if c in facts.columns]
    if not cols:
        check_columns(facts, ["cost_usd"])
    values, source = np.full(n, np.nan), np.full(n, "", dtype=object)
    for col in cols:
        v = floats(facts[col])
        fill = np.isnan(values) & ~np.isnan(v)
        values[fill], source[fill] = v[fill], col
    return values, source


def source_label(sources: np.ndarray) -> str:
    """'cost_usd', 'reported_cost_usd', 'cost_usd + reported_cost_usd' or 'unpriced'."""
    used = [s for s in ("cost_usd", "reported_cost_usd") if (sources == s).any()]
    other = sorted({s for s in sources if s and s not in used})
    return " + ".join(used + other) or "unpriced"


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs) -> np.ndarray:
    """Quantiles (inverse ECDF) of ``values`` under each row of ``weights`` -> (rows, len(qs)).

    Rows whose weights sum to zero give NaN. Works in chunks of rows to bound memory.

    Examples
    --------
    >>> weighted_quantiles(np.array([3.0, 1.0, 2.0]), np.array([[1, 1, 1], [0, 0, 2]]), [0.5])
    array([[2.],
           [2.]])
    """
    order = np.argsort(values, kind="stable")
    v, w = values[order], np.asarray(weights, dtype=float)[:, order]
    qs = np.asarray(qs, dtype=float)
    out = np.full((len(w), len(qs)), np.nan)
    step = max(1, _CELLS // max(len(v), 1))
    for start in range(0, len(w), step):
        cum = np.cumsum(w[start:start + step], axis=1)
        total = cum[:, -1:] if len(v) else np.zeros((len(cum), 1))
        for j, q in enumerate(qs):
            idx = (cum < q * total - 1e-12 * total).sum(axis=1)
            good = total[:, 0] > 0
            out[start:start + step, j] = np.where(good, v[np.minimum(idx, len(v) - 1)], np.nan)
    return out


def rate_ci(n_i, s_i, level: float) -> tuple[float, float]:
    """Interval of a success rate from per-task trials ``n_i`` and successes ``s_i``.

    Wilson with one 0/1 trial per task (or when every trial agrees), else task-clustered t.
    """
    n_i, s_i = n_i[n_i > 0], s_i[n_i > 0]
    if len(n_i) == 0:
        return np.nan, np.nan
    if (n_i == 1).all() and np.isin(s_i, (0.0, 1.0)).all():
        return tuple(float(x) for x in iv.wilson(s_i.sum(), len(n_i), level=level))
    mean, se = iv.clustered_se(n_i, s_i)
    if mean in (0.0, 1.0) or se == 0:
        return tuple(float(x) for x in iv.wilson(mean * len(n_i), len(n_i), level=level))
    return iv.t_interval(mean, se, len(n_i) - 1, level=level, bounds=(0.0, 1.0))


def mean_ci(n_i, s_i, level: float) -> tuple[float, float]:
    """Task-clustered t interval of a mean from per-task counts ``n_i`` and sums ``s_i``."""
    n_i, s_i = n_i[n_i > 0], s_i[n_i > 0]
    mean, se = iv.clustered_se(n_i, s_i)
    return iv.t_interval(mean, se, len(n_i) - 1, level=level, bounds=(0.0, np.inf))
