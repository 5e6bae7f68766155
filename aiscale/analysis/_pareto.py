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


def task_keys(facts: pd.DataFrame) -> np.ndarray:
    """Task of each trace as text: ``task_id``, else ``trace_id``, else the row position."""
    key = pd.Series(np.arange(len(facts)).astype(str), index=facts.index, dtype=object)
    for col in ("trace_id", "task_id"):
        if col in facts.columns:
            key = facts[col].astype(object).where(facts[col].notna(), key)
    return key.astype(str).to_numpy()


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


def weighted_quantiles(values: np.ndarray, codes: np.ndarray, task_weights: np.ndarray,
                       qs) -> np.ndarray:
    """Quantiles (inverse ECDF) of ``values`` under each resample of task weights.

    ``codes[i]`` is the task of value i; ``task_weights`` is (resamples, tasks), e.g. counts
    from a task bootstrap. Returns (resamples, len(qs)); NaN where a resample has no weight.
    Works in chunks of resamples to bound memory.

    Examples
    --------
    >>> weighted_quantiles(np.array([3.0, 1.0, 2.0]), np.array([0, 1, 2]),
    ...                    np.array([[1, 1, 1], [0, 0, 2]]), [0.5])
    array([[2.],
           [2.]])
    """
    order = np.argsort(values, kind="stable")
    v, c = values[order], np.asarray(codes)[order]
    tw = np.asarray(task_weights, dtype=float)
    out = np.full((len(tw), len(qs)), np.nan)
    if len(v) == 0:
        return out
    total = tw @ np.bincount(c, minlength=tw.shape[1])
    for j, q in enumerate(np.asarray(qs, dtype=float)):
        out[:, j] = _crossing(v, c, tw, (q - 1e-12) * total)
    out[total <= 0] = np.nan
    return out


def _crossing(v, c, tw, target) -> np.ndarray:
    """v at the first position where the cumulative weight reaches ``target``, per resample.

    Only a window of sorted values around the estimate is summed position by position; the
    weight below the window is one matrix-vector product. Resamples whose crossing falls outside
    the window (rare, heavily clustered data) are redone over all values.
    """
    n, t = len(v), tw.shape[1]
    share = np.median(target / np.maximum(tw @ np.bincount(c, minlength=t), 1e-300))
    k = int(np.clip(share * n, 0, n - 1))
    m = 50 + int(8 * np.sqrt(n * share * (1 - share)))
    lo, hi = max(0, k - m), min(n, k + m)
    below = tw @ np.bincount(c[:lo], minlength=t)
    cum = below[:, None] + np.cumsum(np.take(tw, c[lo:hi], axis=1), axis=1)
    idx = lo + (cum < target[:, None]).sum(axis=1)
    redo = np.flatnonzero((below >= target) & (lo > 0) | (cum[:, -1] < target) & (hi < n))
    for start in range(0, len(redo), max(1, _CELLS // n)):
        rows = redo[start:start + max(1, _CELLS // n)]
        full = np.cumsum(np.take(tw[rows], c, axis=1), axis=1)
        idx[rows] = (full < target[rows, None]).sum(axis=1)
    return v[np.minimum(idx, n - 1)]


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
