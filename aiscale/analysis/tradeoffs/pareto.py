"""Pareto masks of the tradeoff analyses: which variants no other variant beats.

Masks are vectorised over bootstrap resamples: points come as arrays of shape
(resamples, variants) per objective, and the mask says which variants no other variant beats.

Examples
--------
>>> import numpy as np
>>> pareto_mask(np.array([[1.0, 2.0, 3.0]]), np.array([[0.5, 0.4, 0.9]])).tolist()
[[True, False, True]]
"""

from __future__ import annotations

import numpy as np


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
