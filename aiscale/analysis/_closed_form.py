"""Closed-form intervals of ratios of sums over many independent units (tasks or traces).

From :data:`~aiscale.analysis._stats.CLOSED_FORM_TASKS` units on, the analyses replace their
unit bootstraps of means, totals and ratios (success rate, mean cost, successes per dollar)
with :func:`ratio_interval`: the delta method on each unit's influence value, corrected for
skewness by Hall's (1992) transformation, O(units) and no resampling. Below the threshold
the bootstraps run as before, so small samples are unchanged.

Examples
--------
>>> lo, hi = ratio_interval(np.arange(1.0, 2001.0), np.ones(2000))
>>> round(float(lo), 1), round(float(hi), 1)
(975.2, 1025.8)
"""

from __future__ import annotations

import numpy as np

from aiscale.analysis._dists import t_ppf


def ratio_interval(num, den, *, level: float = 0.95,
                   bounds: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Skew-corrected delta-method interval of ``sum(num) / sum(den)`` over independent units.

    Each unit i (a task with all its trials, or a trace) contributes ``num[i]`` and ``den[i]``;
    its influence value is ``z_i = (num_i - r den_i) / mean(den)``, so the ratio r is, to first
    order, the sample mean of r + z_i, with SE ``sqrt(sum z_i^2 / (m (m - 1)))`` (the
    task-clustered SE of :func:`~aiscale.analysis._stats.clustered_se`). Cost is skewed, and
    a symmetric ``r ± t se`` misses on the high side; Hall's (1992) cubic transformation
    ``g(T) = T + a T^2 + a^2 T^3 / 3 + b`` with ``a = γ / (3 √m)``, ``b = γ / (6 √m)`` (γ the
    skewness of the z_i) takes the studentised ratio T to a normal one to second order, the
    accuracy of a bootstrap-t, and is monotone, so the interval
    ``[r - se g⁻¹(t), r - se g⁻¹(-t)]`` always holds r.

    ``num`` and ``den`` are (m,) or (m, k) arrays; each column is one statistic (e.g. one cap
    of a loop budget). Returns lower and upper bounds (NaN with fewer than two units or no
    denominator), clipped to ``bounds`` when given.

    Examples
    --------
    300 successes in 2,000 one-trial tasks (Wilson: 0.1350-0.1663), and twice that per task:

    >>> s = np.r_[np.ones(300), np.zeros(1700)]
    >>> lo, hi = ratio_interval(np.column_stack([s, 2 * s]), np.ones(2000), bounds=(0, 1))
    >>> np.round(lo, 4).tolist(), np.round(hi, 4).tolist()
    ([0.1348, 0.2696], [0.1662, 0.3324])
    """
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    vector = num.ndim == 1 and den.ndim == 1
    num, den = num.reshape(len(num), -1), den.reshape(len(den), -1)
    m = len(num)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = den.sum(axis=0)
        r = num.sum(axis=0) / total
        z = (num - r * den) / (total / m)
        m2 = np.einsum("ij,ij->j", z, z) / m
        se = np.sqrt(m2 / (m - 1)) if m > 1 else np.full(r.shape, np.nan)
        gamma = np.where(m2 > 0, np.einsum("ij,ij,ij->j", z, z, z) / m / m2**1.5, 0.0)
        a, b = gamma / (3 * np.sqrt(m)), gamma / (6 * np.sqrt(m))
        t = float(t_ppf(0.5 + level / 2, max(m - 1, 1)))
        lo, hi = r - se * _g_inverse(t, a, b), r - se * _g_inverse(-t, a, b)
    if bounds is not None:
        lo, hi = np.clip(lo, *bounds), np.clip(hi, *bounds)
    lo, hi = np.where(np.isfinite(r), lo, np.nan), np.where(np.isfinite(r), hi, np.nan)
    return (lo[0], hi[0]) if vector else (lo, hi)


def _g_inverse(y: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inverse of Hall's ``g(x) = ((1 + a x)^3 - 1) / (3 a) + b`` (``x = y - b`` when a = 0)."""
    safe = np.where(a == 0, 1.0, a)
    return np.where(a == 0, y - b, (np.cbrt(1 + 3 * safe * (y - b)) - 1) / safe)
