"""Count-distribution families for loop iterations: one registry, statsmodels fits, censoring.

A family is a base law of the count (Poisson, NB1, NB2, geometric) with an optional modifier
(``zt``: zero-truncated; ``shifted``: one plus the base law, natural for agent loops, which
always make at least one call; ``hurdle``: a logit for zero vs positive, then a zero-truncated
count). Every family is parametrised the same way: ``beta`` (log-mean coefficients of the
base law), ``log_alpha`` (dispersion, NB only: NB2 variance ``mu + alpha mu^2``, NB1
``mu (1 + alpha)``), and ``gamma`` (logit of P(count = 0), hurdle only).

Uncensored data are fitted with statsmodels' own count models (``Poisson``,
``NegativeBinomialP``, ``TruncatedLFPoisson``, ``TruncatedLFNegativeBinomialP``, ``Logit``,
and a GLM for the geometric). Right-censored counts (a trace stopped by the step cap: the
true count is larger than the one observed) have no statsmodels model; they are fitted by
maximum likelihood here, each censored row contributing ``log P(Y > y)``.

Examples
--------
>>> import numpy as np
>>> y = np.random.default_rng(0).poisson(4.0, 500)
>>> fit = fit_family("poisson", y, np.ones((500, 1)), np.zeros(500, dtype=bool))
>>> bool(abs(np.exp(fit.params[0]) - 4.0) < 0.3)
True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import special

from aiscale.analysis._stats import distinct_rows
from aiscale.analysis.loops.count_mle import newton_mle


@dataclass(frozen=True)
class Family:
    """One registry entry: a base law, a modifier and whether it needs zeros or positives."""

    name: str
    base: str
    modifier: str = ""

    @property
    def has_alpha(self) -> bool:
        return self.base in ("nb1", "nb2")


FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("poisson", "poisson"),
    Family("nb1", "nb1"),
    Family("nb2", "nb2"),
    Family("geometric", "geometric"),
    Family("shifted_poisson", "poisson", "shifted"),
    Family("shifted_nb2", "nb2", "shifted"),
    Family("shifted_geometric", "geometric", "shifted"),
    Family("zt_poisson", "poisson", "zt"),
    Family("zt_nb2", "nb2", "zt"),
    Family("hurdle_poisson", "poisson", "hurdle"),
    Family("hurdle_nb2", "nb2", "hurdle"),
]}


@dataclass(frozen=True)
class FamilyFit:
    """A fitted family: parameters in the shared parametrisation and their covariance."""

    family: Family
    params: np.ndarray
    cov: np.ndarray
    loglik: float
    n_obs: int
    converged: bool
    method: str

    @property
    def n_params(self) -> int:
        return len(self.params)

    @property
    def aic(self) -> float:
        return 2 * self.n_params - 2 * self.loglik

    @property
    def bic(self) -> float:
        return np.log(self.n_obs) * self.n_params - 2 * self.loglik


# -- base laws --------------------------------------------------------------------------------
def _nb_args(base: str, mu: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    if base == "nb2":
        size = np.full_like(mu, 1.0 / alpha)
        return size, size / (size + mu)
    if base == "nb1":
        return mu / alpha, np.full_like(mu, 1.0 / (1.0 + alpha))
    return np.ones_like(mu), 1.0 / (1.0 + mu)


def base_logpmf(base: str, y: np.ndarray, mu: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Log P(Y = y) of a base law with mean ``mu`` (special functions, no scipy.stats overhead)."""
    y = np.asarray(y, dtype=float)
    yy = np.maximum(y, 0.0)
    if base == "poisson":
        out = special.xlogy(yy, mu) - mu - special.gammaln(yy + 1)
    else:
        size, p = _nb_args(base, mu, alpha)
        out = (special.gammaln(yy + size) - special.gammaln(size) - special.gammaln(yy + 1)
               + size * np.log(p) + special.xlog1py(yy, -p))
    return np.where(y < 0, -np.inf, out)


def base_logsf(base: str, y: np.ndarray, mu: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Log P(Y > y) of a base law with mean ``mu``."""
    y = np.asarray(y, dtype=float)
    yy = np.maximum(y, 0.0)
    if base == "poisson":
        sf = special.gammainc(yy + 1, mu)
    else:
        size, p = _nb_args(base, mu, alpha)
        sf = special.betainc(yy + 1, size, 1 - p)
    with np.errstate(divide="ignore"):
        return np.where(y < 0, 0.0, np.log(sf))


def _split(family: Family, params: np.ndarray, k: int):
    """beta, alpha, gamma of a parameter vector, or of points (columns of a matrix)."""
    beta = params[:k]
    rest = params[k:]
    alpha = np.exp(np.clip(rest[0], -25.0, 10.0)) if family.has_alpha else 1.0
    gamma = rest[1 if family.has_alpha else 0:] if family.modifier == "hurdle" else None
    return beta, alpha, gamma


def loglike_obs(family: Family, params: np.ndarray, y: np.ndarray, X: np.ndarray,
                censored: np.ndarray) -> np.ndarray:
    """Per-row log-likelihood; censored rows contribute log P(Y > y).

    ``params`` is one parameter vector, or a matrix of parameter points (one per row): then
    the result has one column per point (every point in one vectorised pass).
    """
    params = np.asarray(params, dtype=float)
    points = params.ndim == 2
    beta, alpha, gamma = _split(family, params.T if points else params[:, None], X.shape[1])
    mu = np.exp(np.clip(X @ beta, -30, 30))  # rows x points
    y = np.asarray(y, dtype=float)[:, None] - (family.modifier == "shifted")
    obs = base_logpmf(family.base, y, mu, alpha)
    if censored.any():
        obs[censored] = base_logsf(family.base, y[censored], mu[censored], alpha)
    if family.modifier in ("", "shifted"):
        return obs if points else obs[:, 0]
    positive = obs - base_logsf(family.base, np.zeros_like(y), mu, alpha)
    if family.modifier == "zt":  # no mass at zero: P(Y = 0 | Y > 0) = 0
        positive = np.where((y == 0) & ~censored[:, None], -np.inf, positive)
        return positive if points else positive[:, 0]
    eta = X @ gamma
    log_p0, log_p1 = -np.logaddexp(0, -eta), -np.logaddexp(0, eta)
    out = np.where((y == 0) & ~censored[:, None], log_p0, log_p1 + positive)
    return out if points else out[:, 0]


def pmf_matrix(fit: FamilyFit, X: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """P(Y = k) for each row of ``X`` (rows) and each k of ``grid`` (columns)."""
    family = fit.family
    y = np.broadcast_to(grid[None, :], (X.shape[0], grid.size)).astype(float)
    logp = loglike_obs(family, fit.params, y.ravel(), np.repeat(X, grid.size, axis=0),
                       np.zeros(y.size, dtype=bool)).reshape(y.shape)
    return np.exp(logp)


# -- fitting ----------------------------------------------------------------------------------
# Above this many rows, statsmodels only starts the fit (on START_ROWS rows spread evenly
# over the data); the likelihood of all rows is then maximised on distinct rows with weights.
LARGE_ROWS = 50_000
# From this many rows, counts that repeat (at most one distinct row in BINNED_RATIO) are
# fitted binned the same way: (value, censored, covariates) once, with its multiplicity.
BINNED_ROWS = 5_000
BINNED_RATIO = 10
START_ROWS = 5_000


def fit_family(name: str, y: np.ndarray, X: np.ndarray, censored: np.ndarray, *,
               cells: tuple[np.ndarray, np.ndarray] | None = None) -> FamilyFit:
    """Fit one family by maximum likelihood (statsmodels when nothing is censored).

    Above :data:`LARGE_ROWS` rows, or from :data:`BINNED_ROWS` rows when counts repeat, the
    fit is still the MLE of every row, not of a sample: identical rows are collapsed and
    weighted (the binned likelihood is the same function of the parameters), started from a
    statsmodels fit of :data:`START_ROWS` evenly spaced rows. ``cells`` are the distinct
    (count, censored, covariates) rows and their counts, when the caller fits several families.
    """
    family = FAMILIES[name]
    y = np.asarray(y, dtype=float)
    if (binned := binned_pays(y, X, censored, cells)) or len(y) > LARGE_ROWS:
        return _fit_large(family, y, X, censored, binned, cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            params, cov, llf, ok = _fit_statsmodels(family, y, X, censored)
        except (ValueError, np.linalg.LinAlgError):  # e.g. NB on under-dispersed data
            params, ok = _plain_start(family, y, X), False
        if ok and not censored.any():
            return FamilyFit(family, params, cov, llf, len(y), ok, "statsmodels")
        return _fit_censored(family, y, X, censored, params, cells)  # the naive fit only starts it


def binned_pays(y: np.ndarray, X: np.ndarray, censored: np.ndarray, cells=None) -> bool:
    """Whether ``y`` has :data:`BINNED_ROWS` rows or more in few distinct (count, censored, X) rows.

    Examples
    --------
    >>> y = np.arange(6_000) % 40.0
    >>> binned_pays(y, np.ones((6_000, 1)), np.zeros(6_000, bool))
    True
    """
    if len(y) < BINNED_ROWS:
        return False
    rows, _ = cells or distinct_rows(np.column_stack([y, censored, X]))
    return len(rows) * BINNED_RATIO <= len(y)


def _fit_large(family: Family, y: np.ndarray, X: np.ndarray, censored: np.ndarray,
               binned: bool, cells=None) -> FamilyFit:
    """The binned MLE, started from moments when rows repeat (a statsmodels model costs more
    than the whole binned fit), else from statsmodels on :data:`START_ROWS` spread rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if binned:
            return _fit_censored(family, y, X, censored, _moment_start(family, y, X), cells)
        pick = np.linspace(0, len(y) - 1, min(START_ROWS, len(y))).astype(np.int64)
        try:
            start = _fit_statsmodels(family, y[pick], X[pick], censored[pick])[0]
        except (ValueError, np.linalg.LinAlgError):
            start = _plain_start(family, y, X)
        return _fit_censored(family, y, X, censored, start, cells)


def _moment_start(family: Family, y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """:func:`_plain_start` with the dispersion from the moments of the counts the law models."""
    start = _plain_start(family, y, X)
    if family.has_alpha:
        body = y[y > 0] if family.modifier in ("zt", "hurdle") else y - (family.modifier == "shifted")
        mean, var = max(float(np.mean(body)), 1e-3), float(np.var(body))
        alpha = (var - mean) / mean**2 if family.base == "nb2" else var / mean - 1
        start[X.shape[1]] = np.log(max(alpha, 0.05))
    return start


def _plain_start(family: Family, y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Starting values when the naive statsmodels fit fails: log mean, alpha 1, empirical P(0)."""
    shift = 1.0 if family.modifier == "shifted" else 0.0
    beta = np.zeros(X.shape[1])
    beta[0] = np.log(max(np.mean(y) - shift, 0.1))
    extra = [0.0] if family.has_alpha else []
    if family.modifier == "hurdle":
        p0 = np.clip(np.mean(y == 0), 0.01, 0.99)
        extra += [np.log(p0 / (1 - p0))] + [0.0] * (X.shape[1] - 1)
    return np.concatenate([beta, extra])


def _fit_statsmodels(family: Family, y, X, censored):
    """Fit the uncensored model with statsmodels (censored rows taken at face value)."""
    if family.modifier == "hurdle":
        from statsmodels.discrete.discrete_model import Logit

        zero = Logit((y == 0).astype(float), X).fit(disp=0)
        pos = y > 0
        count = _fit_statsmodels(FAMILIES[f"zt_{family.base}"], y[pos], X[pos], censored[pos])
        params = np.concatenate([count[0], zero.params])
        cov = _block(count[1], np.asarray(zero.cov_params()))
        return params, cov, count[2] + zero.llf, bool(count[3] and zero.mle_retvals["converged"])
    if family.modifier == "shifted":
        return _fit_statsmodels(FAMILIES[family.base], y - 1, X, censored)
    res = _statsmodels_model(family, y, X).fit(disp=0, maxiter=300)
    params = np.asarray(res.params, dtype=float).copy()
    cov = np.asarray(res.cov_params(), dtype=float).copy()
    if family.has_alpha:  # statsmodels reports alpha; the shared parametrisation is log(alpha)
        alpha = max(params[-1], 1e-8)
        params[-1] = np.log(alpha)
        cov[-1, :] /= alpha
        cov[:, -1] /= alpha
    converged = bool(getattr(res, "converged", res.mle_retvals.get("converged", True))
                     if hasattr(res, "mle_retvals") else res.converged)
    return params, cov, float(res.llf), converged


def _statsmodels_model(family: Family, y, X):
    from statsmodels.discrete import discrete_model as dm
    from statsmodels.discrete import truncated_model as tm

    if family.base == "geometric" and family.modifier == "":
        from statsmodels.genmod import families  # not statsmodels.api: it imports everything
        from statsmodels.genmod.generalized_linear_model import GLM

        return GLM(y, X, family=families.NegativeBinomial(alpha=1.0))
    models = {
        ("poisson", ""): lambda: dm.Poisson(y, X),
        ("nb2", ""): lambda: dm.NegativeBinomialP(y, X, p=2),
        ("nb1", ""): lambda: dm.NegativeBinomialP(y, X, p=1),
        ("poisson", "zt"): lambda: tm.TruncatedLFPoisson(y, X, truncation=0),
        ("nb2", "zt"): lambda: tm.TruncatedLFNegativeBinomialP(y, X, truncation=0, p=2),
    }
    return models[(family.base, family.modifier)]()


def _block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0] + b.shape[0],) * 2)
    out[:a.shape[0], :a.shape[0]] = a
    out[a.shape[0]:, a.shape[0]:] = b
    return out


def _fit_censored(family: Family, y, X, censored, start, cells=None) -> FamilyFit:
    """Maximise the censored likelihood on the distinct rows: :func:`newton_mle` (a Newton
    step in two vectorised calls), statsmodels' generic MLE where that does not converge."""
    n_obs = len(y)
    # identical (count, censored, covariates) rows enter once, weighted by their number
    rows, weight = cells or distinct_rows(np.column_stack([y, censored, X]))
    y, cens, X = rows[:, 0], rows[:, 1].astype(bool), rows[:, 2:]
    start = np.where(np.isfinite(start), start, 0.0)
    if family.has_alpha:  # a naive fit of capped counts drives alpha to 0, where Newton stalls
        start[X.shape[1]] = max(start[X.shape[1]], np.log(0.05))
    method = "censored MLE" if censored.any() else "MLE"
    with np.errstate(all="ignore"):
        fit = newton_mle(lambda points: weight @ loglike_obs(family, points, y, X, cens), start)
    if fit.converged and np.isfinite(fit.loglik):
        return FamilyFit(family, fit.params, fit.cov, fit.loglik, n_obs, True, method)
    params, cov, llf, ok = _generic_mle(family, y, X, cens, weight, start)
    return FamilyFit(family, params, cov, llf, n_obs, ok, method)


def _generic_mle(family: Family, y, X, cens, weight, start):
    """statsmodels' generic MLE of the weighted rows (Newton with numerical derivatives, then
    Nelder-Mead and BFGS): ~200 likelihood calls a family, kept for fits Newton cannot make."""
    from statsmodels.base.model import GenericLikelihoodModel

    class _Censored(GenericLikelihoodModel):
        def loglikeobs(self, params):
            return weight * loglike_obs(family, params, self.endog, self.exog, cens)

    model = _Censored(y, X, extra_params_names=[f"p{i}" for i in range(len(start) - X.shape[1])])
    try:
        res = model.fit(start_params=start, method="newton", maxiter=100, disp=0)
        done = bool(res.mle_retvals.get("converged")) and np.isfinite(res.llf)
    except np.linalg.LinAlgError:
        done = False
    if not done:
        res = model.fit(start_params=start, method="nm", maxiter=5000, disp=0)
        res = model.fit(start_params=res.params, method="bfgs", maxiter=1000, disp=0)
    cov = np.asarray(res.cov_params(), dtype=float)
    ok = bool(res.mle_retvals.get("converged", True)) and bool(np.all(np.isfinite(cov)))
    return np.asarray(res.params, dtype=float), cov, float(res.llf), ok


def applicable(name: str, y: np.ndarray) -> str | None:
    """Why a family cannot be fitted to ``y`` (None when it can)."""
    family = FAMILIES[name]
    if family.modifier in ("zt", "shifted") and np.any(y < 1):
        return f"{family.modifier} families need counts >= 1"
    if family.modifier == "hurdle" and not (np.any(y == 0) and np.any(y > 0)):
        return "hurdle families need both zeros and positive counts"
    if name == "nb1" and len(y) > 1 and np.var(y, ddof=1) <= np.mean(y):
        # its likelihood peaks at alpha -> 0 (the Poisson fit), where statsmodels' Newton steps
        # through ever slower polygamma terms and does not return
        return "no overdispersion (variance <= mean): NB1 reduces to the Poisson fit"
    return None

