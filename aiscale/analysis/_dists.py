"""Closed forms of the few ``scipy.stats`` functions the analyses call, through ``scipy.special``.

``scipy.stats`` costs ~1.2 CPU-s to import; ``scipy.special`` a fraction of it. Each function
here is the formula SciPy's own method evaluates (``norm.ppf`` is ``ndtri``, ``t.ppf`` is
``stdtrit``, the Mann-Whitney U z statistic is SciPy's, tie term and continuity correction
included), with SciPy's handling of the ends of the support, so the values are SciPy's to
the last bit (``tests/test_dists.py`` compares them on random and edge-case arguments).
``scipy.stats`` is then imported only where an analysis needs more of it (an exact Fisher
test, a frozen distribution a user asks for).

Examples
--------
>>> round(float(norm_ppf(0.975)), 6), round(float(t_ppf(0.975, 10)), 6)
(1.959964, 2.228139)
>>> bh_adjust([0.01, 0.04, 0.03]).round(3).tolist()
[0.03, 0.04, 0.04]
"""

from __future__ import annotations

import numpy as np
from scipy import special


def norm_ppf(q):
    """``scipy.stats.norm.ppf(q)``."""
    return special.ndtri(q)


def norm_cdf(x):
    """``scipy.stats.norm.cdf(x)``."""
    return special.ndtr(x)


def norm_sf(x):
    """``scipy.stats.norm.sf(x)``."""
    return special.ndtr(-np.asarray(x, dtype=float))


def t_ppf(q, df):
    """``scipy.stats.t.ppf(q, df)``: NaN where ``df <= 0`` or ``q`` is outside [0, 1]."""
    q, df = np.asarray(q, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        out = special.stdtrit(df, q)
        out = np.where(q == 0, -np.inf, np.where(q == 1, np.inf, out))
        out = np.where((df > 0) & (q >= 0) & (q <= 1), out, np.nan)
    return out[()]


def t_sf(x, df):
    """``scipy.stats.t.sf(x, df)``: NaN where ``df <= 0``."""
    x, df = np.asarray(x, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.where(df > 0, special.stdtr(df, -x), np.nan)
    return out[()]


def chi2_sf(x, df):
    """``scipy.stats.chi2.sf(x, df)``: 1 below the support, NaN where ``df <= 0``."""
    x, df = np.asarray(x, dtype=float), np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore"):
        out = np.where(x < 0, 1.0, special.chdtrc(df, np.maximum(x, 0)))
        out = np.where((df > 0) & ~np.isnan(x), out, np.nan)
    return out[()]


def genpareto_ppf(q, c, scale):
    """``scipy.stats.genpareto.ppf(q, c, scale=scale)`` (0 at q = 0; the upper end at q = 1)."""
    q = np.asarray(q, dtype=float)
    upper = np.inf if c >= 0 else -1.0 / c
    with np.errstate(all="ignore"):
        out = -special.boxcox1p(-q, -c) * scale
    out = np.where(q == 0, 0.0, np.where(q == 1, upper * scale, out))
    return np.where((q >= 0) & (q <= 1) & (scale > 0), out, np.nan)[()]


def bh_adjust(ps) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values: ``scipy.stats.false_discovery_control(ps)``."""
    ps = np.asarray(ps)
    if not ((ps.dtype.kind in "iuf") and np.all(ps == np.clip(ps, 0.0, 1.0))):
        raise ValueError("`ps` must include only numbers between 0 and 1.")
    ps = ps.ravel()
    if ps.size <= 1:
        return ps
    m = ps.size
    order = np.argsort(ps)
    adjusted = ps[order] * (m / np.arange(1, m + 1, dtype=ps.dtype))
    np.minimum.accumulate(adjusted[::-1], out=adjusted[::-1])
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return np.clip(out, 0.0, 1.0)


def rank_average(x) -> np.ndarray:
    """Average ranks (1 = smallest, ties share their mean rank): ``scipy.stats.rankdata(x)``."""
    return _ranks(np.asarray(x))[0]


def _ranks(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks of ``x`` in its order, and the size of each group of ties (sorted order)."""
    n = len(x)
    order = np.argsort(x)  # any sort: tied values share one (average) rank, whatever their order
    y = x[order]
    first = np.concatenate([[True], y[:-1] != y[1:]])
    starts = np.flatnonzero(first)
    counts = np.diff(starts, append=n)
    ranks = np.empty(n, dtype=float)
    ranks[order] = np.repeat(np.arange(1, n + 1, dtype=float)[first] + (counts.astype(float) - 1) / 2,
                             counts)
    return ranks, counts.astype(float)


def mannwhitneyu_p(x, y) -> float:
    """Two-sided asymptotic Mann–Whitney U p-value, tie-corrected, with continuity correction:
    ``scipy.stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").pvalue``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n1, n2 = len(x), len(y)
    ranks, ties = _ranks(np.concatenate([x, y]))
    u1 = np.sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    u = np.maximum(u1, n1 * n2 - u1)
    n = n1 + n2
    s = np.sqrt(n1 * n2 / 12 * ((n + 1) - np.sum(ties**3 - ties) / (n * (n - 1))))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (u - n1 * n2 / 2 - 0.5) / s
    return float(np.clip(special.ndtr(-z) * 2, 0.0, 1.0))
