"""Maximum likelihood with right-censoring, Wald/delta CIs and a parametric-bootstrap KS test.

Examples
--------
>>> import numpy as np
>>> from aiscale.analysis.tokens.families import FAMILIES
>>> x = np.random.default_rng(0).lognormal(3, 0.5, 500)
>>> fit = mle(FAMILIES["lognormal"], x, np.zeros(500, bool))
>>> fit.natural.round(1).tolist()
[3.0, 0.5]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize

from aiscale.analysis.tokens.families import Family


@dataclass(frozen=True)
class MLE:
    """One family fitted: theta (unconstrained), its covariance, log-likelihood, aux values."""

    family: Family
    theta: np.ndarray
    cov: np.ndarray
    loglik: float
    aux: dict
    n: int
    converged: bool = True

    @property
    def natural(self) -> np.ndarray:
        return self.family.natural(self.theta)

    @property
    def aic(self) -> float:
        return 2 * self.family.k - 2 * self.loglik

    @property
    def bic(self) -> float:
        return self.family.k * np.log(self.n) - 2 * self.loglik


def loglik(family: Family, theta, x, censored, aux, weights=None) -> float:
    """Log-likelihood: log density of exact values plus log survival at censored ones.

    ``weights`` counts how many times each value occurs (see :func:`compress`).
    """
    total = 0.0
    for part, fn in ((~censored, family.logpdf), (censored, family.logsf)):
        if part.any():
            values = fn(x[part], theta, aux)
            total += float(np.sum(values) if weights is None else values @ weights[part])
    return total if np.isfinite(total) else -np.inf


def compress(x: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (value, censored) cells with their counts, exactly (no rounding).

    ``x`` must be sorted (ties of one value may mix censored and exact). The cells carry the
    whole sample: a likelihood or KS distance over them with their counts as weights equals
    the one over every value. Token counts are integers: 1 M of them make a few thousand cells.
    """
    change = (np.diff(x) != 0) | (np.diff(censored.astype(np.int8)) != 0)
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    counts = np.diff(np.append(starts, len(x))).astype(float)
    return x[starts], censored[starts], counts


# Above this many distinct exact values, the fits run over values rounded to a log grid.
MAX_CELLS = 2_000
LOG_GRID = 1e-3  # the finest grid step (relative rounding of at most 0.05%)


def coarsen(values: np.ndarray, censored: np.ndarray, counts: np.ndarray,
            max_cells: int = MAX_CELLS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells of :func:`compress` with the exact values rounded to a log grid of <= ``max_cells``.

    Only when there are more than ``max_cells`` distinct exact values (continuous costs, or
    token counts spread over many values); censored values are kept as they are. The step is
    ``max(LOG_GRID, log range / max_cells)``, e.g. 0.005 for values over five decades: the
    rounding moves a log-value by at most half a step, which adds ``step**2 / 12`` (2e-6) to a
    log-variance and moves no estimate by more than a thousandth of its standard error even at
    10 M values. The maximum-likelihood fit then costs O(cells), not O(n); its log-likelihood is
    re-evaluated over the exact cells (:func:`exact_loglik`).
    """
    exact = ~censored
    if int(exact.sum()) <= max_cells:
        return values, censored, counts
    logs = np.log(values[exact])
    step = max(LOG_GRID, float(logs.max() - logs.min()) / max_cells)
    grid, where = np.unique(np.round(logs / step), return_inverse=True)
    weights = np.bincount(where.ravel(), weights=counts[exact], minlength=len(grid))
    out_v = np.concatenate([np.exp(grid * step), values[censored]])
    out_c = np.concatenate([np.zeros(len(grid), bool), np.ones(int(censored.sum()), bool)])
    order = np.argsort(out_v, kind="stable")
    return out_v[order], out_c[order], np.concatenate([weights, counts[censored]])[order]


def exact_loglik(fit: MLE, values: np.ndarray, censored: np.ndarray, counts: np.ndarray) -> MLE:
    """``fit`` with its log-likelihood evaluated over the exact cells (see :func:`coarsen`)."""
    value = loglik(fit.family, fit.theta, values, censored, fit.aux, counts)
    return replace(fit, loglik=value, converged=fit.converged and bool(np.isfinite(value)))


def mle(family: Family, x: np.ndarray, censored: np.ndarray, start=None, aux=None,
        with_cov: bool = True, weights: np.ndarray | None = None) -> MLE:
    """Fit one family by maximum likelihood (Nelder–Mead polish of BFGS), with covariance.

    ``weights`` (counts of each value, from :func:`compress`) make the fit cost O(distinct
    values); ``aux`` and ``start`` should then come from the full data.
    """
    aux = family.aux(x, censored) if aux is None else aux
    theta0 = family.start(x[~censored], aux) if start is None else np.asarray(start, float)

    def nll(theta):
        value = -loglik(family, theta, x, censored, aux, weights)
        return value if np.isfinite(value) else 1e300

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = optimize.minimize(nll, theta0, method="BFGS", options={"gtol": 1e-5})
        if not np.isfinite(res.fun) or np.max(np.abs(res.jac)) > 1e-2 * max(1.0, abs(res.fun)) ** 0.5:
            res = optimize.minimize(nll, res.x, method="Nelder-Mead",
                                    options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
        cov = _inverse(hessian(nll, res.x)) if with_cov else np.full((len(res.x),) * 2, np.nan)
    converged = bool(np.isfinite(res.fun) and res.fun < 1e299 and not family.at_bound(res.x)
                     and (not with_cov or np.all(np.isfinite(cov))))
    n = len(x) if weights is None else int(weights.sum())
    return MLE(family, res.x, cov, -float(res.fun), aux, n, converged)


def hessian(f, x: np.ndarray, rel: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of ``f`` at ``x``."""
    x = np.asarray(x, float)
    h = rel * np.maximum(np.abs(x), 1.0)
    k = len(x)
    out = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h[i]
        out[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h[j]
            out[i, j] = out[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                     + f(x - ei - ej)) / (4 * h[i] * h[j])
    return out


def _inverse(h: np.ndarray) -> np.ndarray:
    try:
        cov = np.linalg.inv(h)
    except np.linalg.LinAlgError:
        return np.full_like(h, np.nan)
    return cov if np.all(np.diag(cov) > 0) else np.full_like(h, np.nan)


def delta_se(fn, theta: np.ndarray, cov: np.ndarray, rel: float = 1e-5) -> np.ndarray:
    """Standard errors of the vector function ``fn(theta)`` by the delta method."""
    base = np.atleast_1d(fn(theta))
    grad = np.empty((len(base), len(theta)))
    for i in range(len(theta)):
        step = rel * max(abs(theta[i]), 1.0)
        e = np.zeros(len(theta))
        e[i] = step
        grad[:, i] = (np.atleast_1d(fn(theta + e)) - np.atleast_1d(fn(theta - e))) / (2 * step)
    return np.sqrt(np.einsum("ij,jk,ik->i", grad, cov, grad))


def ks_distance(fit: MLE, x: np.ndarray, censored: np.ndarray,
                weights: np.ndarray | None = None) -> float:
    """KS distance between the ECDF and the fitted CDF over the uncensored range.

    With ``weights`` the values are sorted cells from :func:`compress` and each counts as
    many values as its weight (O(cells), not O(n)).
    """
    if weights is None:
        order = np.argsort(x, kind="stable")
        x, censored, weights = x[order], censored[order], np.ones(len(x))
    n = weights.sum()
    upto = np.cumsum(weights)
    cdf = fit.family.cdf(x[~censored], fit.theta, fit.aux)
    above = upto[~censored] / n - cdf
    below = cdf - (upto - weights)[~censored] / n
    return float(max(np.max(above, initial=0), np.max(below, initial=0)))


# Above this many values each bootstrap resample draws this many (m-out-of-n, see below).
BOOTSTRAP_MAX_VALUES = 5_000


def bootstrap_ks(fit: MLE, x: np.ndarray, censored: np.ndarray, cap: float | None,
                 n_boot: int, rng: np.random.Generator,
                 max_values: int = BOOTSTRAP_MAX_VALUES) -> tuple[float, float]:
    """KS distance and its parametric-bootstrap p-value (parameters re-estimated each time).

    With more than ``max_values`` values, each resample draws ``m = max_values`` values
    (refitting on all n would cost n_boot full fits) and the p-value compares
    ``sqrt(m) * D_m`` with ``sqrt(n) * D_n``: the scaled distance has the same limiting law,
    so this is an m-out-of-n parametric bootstrap. The KS distance itself uses every value.
    """
    observed = ks_distance(fit, x, censored)
    m = min(len(x), max_values)
    scale = np.sqrt(len(x) / m)
    exceed = 0
    for _ in range(n_boot):
        sim = fit.family.rvs(m, fit.theta, fit.aux, rng)
        sim_c = np.zeros(len(sim), bool) if cap is None else sim >= cap
        if cap is not None:
            sim = np.minimum(sim, cap)
        refit = mle(fit.family, sim, sim_c, start=fit.theta, with_cov=False)
        exceed += ks_distance(refit, sim, sim_c) >= observed * scale
    return observed, (1 + exceed) / (1 + n_boot)
