"""Newton-Raphson for the count families, every finite difference of a step in one call.

The count likelihoods are cheap to evaluate on the distinct (count, censored, covariates)
rows but were maximised through statsmodels' generic model: one Python call of the
likelihood per finite difference, ~200 calls per family. Here the objective takes a matrix
of parameter points and returns the log-likelihood of each, so a Newton step (central
gradient, the Hessian of ``statsmodels.tools.numdiff.approx_hess3`` with its step sizes)
is one call, and its step-halving line search another. The covariance is the inverse of
the negative Hessian at the optimum, by the same stencil statsmodels uses: the same
fit, to within the optimiser's tolerance.

Examples
--------
>>> import numpy as np
>>> f = lambda P: -((P[:, 0] - 1.0) ** 2) - 2.0 * (P[:, 1] + 3.0) ** 2
>>> fit = newton_mle(f, np.zeros(2))
>>> np.round(fit.params, 6).tolist(), fit.converged
([1.0, -3.0], True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

EPS = np.finfo(float).eps
HALVINGS = 0.5 ** np.arange(40)  # the step lengths one line-search call tries
MAX_STEP = 10.0  # no parameter moves further in one step (log-scale parameters: a factor e^10)


@dataclass(frozen=True)
class NewtonFit:
    """The maximum found: parameters, log-likelihood, covariance, convergence, iterations."""

    params: np.ndarray
    loglik: float
    cov: np.ndarray
    converged: bool
    iterations: int


def stencil(x: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], tuple]]:
    """The points at which a central gradient and ``approx_hess3``'s Hessian read the function.

    Returns the points (one per row) and a function turning their values into
    ``(value at x, gradient, Hessian)``.

    Examples
    --------
    >>> points, derive = stencil(np.array([0.5]))
    >>> f0, g, H = derive(-(points[:, 0] ** 2))
    >>> round(float(g[0]), 6), round(float(H[0, 0]), 6)
    (-1.0, -2.0)
    """
    p = len(x)
    scale = np.maximum(np.abs(x), 0.1)
    h3 = EPS ** (1 / 3) * scale / 2  # approx_fprime(centered=True)
    h4 = EPS ** (1 / 4) * scale  # approx_hess3
    i, j = np.triu_indices(p)
    a, b = np.diag(h4)[i], np.diag(h4)[j]
    points = np.vstack([x, x + np.diag(h3), x - np.diag(h3), x + a + b, x + a - b, x - a + b, x - a - b])

    def derive(values: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        up, down = values[1:1 + p], values[1 + p:1 + 2 * p]
        pp, pm, mp, mm = values[1 + 2 * p:].reshape(4, -1)
        grad = (up - down) / (2 * h3)
        hess = np.zeros((p, p))
        hess[i, j] = (pp - pm - (mp - mm)) / (4 * h4[i] * h4[j])
        hess[j, i] = hess[i, j]
        return float(values[0]), grad, hess

    return points, derive


def _ascent(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """The Newton step, with a ridge where the Hessian is not negative definite."""
    neg = -hess
    low = np.linalg.eigvalsh(neg).min() if np.all(np.isfinite(neg)) else -np.inf
    if not np.isfinite(low):
        return grad / max(np.abs(grad).max(), 1.0)
    size = max(np.abs(neg).max(), 1.0)
    ridge = 0.0 if low > 1e-12 * size else abs(low) + 1e-6 * size
    step = np.linalg.solve(neg + ridge * np.eye(len(grad)), grad)
    return step * min(1.0, MAX_STEP / max(np.abs(step).max(), 1e-300))


def newton_mle(loglik: Callable[[np.ndarray], np.ndarray], start: np.ndarray, *,
               maxiter: int = 100, tol: float = 1e-9) -> NewtonFit:
    """Maximise ``loglik`` (a function of a matrix of points, one per row) from ``start``.

    Each iteration evaluates the stencil of :func:`stencil` in one call and the step
    lengths 1, 1/2, ..., 1/2**39 along the Newton direction in another, taking the longest
    that does not lower the log-likelihood. Converged when a step moves no parameter by
    more than ``tol`` and the Hessian there is negative definite.
    """
    x = np.asarray(start, dtype=float).copy()
    converged, it = False, 0
    while it < maxiter:
        it += 1
        points, derive = stencil(x)
        f0, grad, hess = derive(loglik(points))
        if not (np.isfinite(f0) and np.all(np.isfinite(grad))):
            break
        step = _ascent(grad, hess)
        trial = loglik(x + HALVINGS[:, None] * step)
        slack = 1e-12 * max(abs(f0), 1.0)  # rounding of the sum near the maximum
        up = np.flatnonzero(np.isfinite(trial) & (trial >= f0 - slack))
        if len(up) == 0:
            converged = bool(np.abs(step).max() <= tol)
            break
        move = HALVINGS[up[0]] * step
        x = x + move
        if np.abs(move).max() <= tol:
            converged = True
            break
    points, derive = stencil(x)
    f0, _, hess = derive(loglik(points))
    neg = -hess
    cov = np.full_like(neg, np.nan)
    if np.all(np.isfinite(neg)):
        values, vectors = np.linalg.eigh(neg)
        if values.min() > 0:  # as statsmodels inverts it
            cov = vectors @ np.diag(1.0 / values) @ vectors.T
            cov = (cov + cov.T) / 2
    return NewtonFit(x, f0, cov, converged and bool(np.all(np.isfinite(cov))), it)
