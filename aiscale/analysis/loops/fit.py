"""How many iterations agents take: count-distribution fits ranked by AIC, with censoring.

The other loop analyses live beside this module and are re-exported here:
:mod:`aiscale.analysis.hazard` (when runs finish), :mod:`aiscale.analysis.cost_growth`
(cost of the k-th call), :mod:`aiscale.analysis.stuck` (stuck loops, wasted spend),
:mod:`aiscale.analysis.loop_budget` (what a cap on iterations would save or lose) and
:mod:`aiscale.analysis.outcome_length` (are failed runs longer?).

Examples
--------
>>> import numpy as np, pandas as pd
>>> y = np.random.default_rng(0).negative_binomial(2, 0.2, 400) + 1
>>> fit = fit_iterations(pd.DataFrame({"iterations": y}), families=["poisson", "nb2"])
>>> fit.best
'nb2'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis._dists import chi2_sf, norm_ppf, t_sf
from aiscale.analysis._result import ResultDisplay, check_choice, check_columns, new_axes
from aiscale.analysis._stats import distinct_rows
from aiscale.analysis.loops.calls import censor_mask, coerce_floats, design_matrix
from aiscale.analysis.loops.count_families import (
    FAMILIES,
    FamilyFit,
    applicable,
    fit_family,
    pmf_matrix,
)

DEFAULT_FAMILIES = tuple(FAMILIES)


@dataclass(frozen=True, repr=False)
class IterationFit(ResultDisplay):
    """Count families fitted to iterations per trace, ranked by AIC.

    Attributes
    ----------
    ranking : DataFrame
        family, n_params, loglik, aic, bic, delta_aic, converged, method (best first).
    params : DataFrame
        family, term, estimate, se, ci_low, ci_high. ``const`` and covariate terms are on the
        log-mean scale; with no covariates exp(const) is reported as ``mean`` (plain
        families), ``count_mean`` (shifted: the mean of iterations - 1, with
        ``mean_iterations`` = 1 + it) or ``base_mean`` (zero-truncated and hurdle: the
        untruncated base law's mean, not the mean of iterations); ``alpha`` is
        the NB dispersion; ``zero:*`` terms are the hurdle's logit of P(count = 0).
    dispersion : DataFrame
        Over-dispersion tests against the Poisson: Pearson statistic, Cameron-Trivedi
        (NB2 and NB1 alternatives) and the likelihood-ratio test Poisson vs NB2.
    rootogram : DataFrame
        family, k, observed, expected (k = -1 is the censored tail, "more than observed").
    """

    column: str
    n: int
    n_censored: int
    best: str
    ranking: pd.DataFrame
    params: pd.DataFrame
    dispersion: pd.DataFrame
    rootogram: pd.DataFrame
    skipped: tuple[tuple[str, str], ...]
    level: float

    def __repr__(self) -> str:
        aic = float(self.ranking["aic"].iloc[0])
        return (f"<IterationFit: {self.column} of {self.n} traces ({self.n_censored} censored), "
                f"best {self.best} (AIC {aic:.1f}) of {len(self.ranking)} families>")

    def summary(self) -> pd.DataFrame:
        """The AIC ranking of the fitted families."""
        return self.ranking.copy()

    def frame(self) -> pd.DataFrame:
        """Observed and expected frequencies per count, per family (the rootogram data)."""
        return self.rootogram.copy()

    def plot(self, ax=None, *, family: str | None = None, **kwargs):
        """Hanging rootogram: sqrt(expected) as a line, bars of sqrt(observed) hanging from it."""
        family = family or self.best
        check_choice("family", family, list(self.ranking["family"]))
        ax = new_axes(ax)
        data = self.rootogram.query("family == @family and k >= 0")
        top = np.sqrt(data["expected"].to_numpy())
        height = np.sqrt(data["observed"].to_numpy())
        ax.bar(data["k"], height, bottom=top - height, width=0.9, alpha=0.6,
               label="observed (hanging)", **kwargs)
        ax.plot(data["k"], top, color="C3", marker=".", label=f"expected ({family})")
        ax.axhline(0, color="black", lw=0.8)
        ax.set(xlabel=self.column, ylabel="sqrt(frequency)", title=f"Rootogram: {family}")
        ax.legend()
        return ax


def fit_iterations(facts: pd.DataFrame, *, column: str = "iterations",
                   families: Sequence[str] = DEFAULT_FAMILIES,
                   covariates: Sequence[str] | None = None, censored=None,
                   step_cap: int | None = None, level: float = 0.95) -> IterationFit:
    """Fit count distributions to iterations per trace and rank them by AIC.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts (one row per trace).
    column : str, default="iterations"
        The count column.
    families : sequence of str, default=all
        Names from :data:`aiscale.analysis.count_families.FAMILIES`: poisson, nb1, nb2,
        geometric, shifted_poisson, shifted_nb2, shifted_geometric (one plus the law),
        zt_poisson, zt_nb2, hurdle_poisson, hurdle_nb2. Families that cannot apply
        (zero-truncated or shifted with zeros present, hurdle without zeros) are skipped.
    covariates : sequence of str, optional
        Columns entering the log-mean (strings become dummies, numbers enter as they are).
    censored : array-like of bool or str, optional
        Traces cut off before finishing (their true count is larger than observed).
    step_cap : int, optional
        Alternatively, the agent's step cap: a trace reaching it without success is censored.
    level : float, default=0.95
        Confidence level of the parameter intervals (Wald, from the observed information).

    Returns
    -------
    IterationFit

    Examples
    --------
    >>> import pandas as pd
    >>> facts = pd.DataFrame({"iterations": [3, 5, 4, 10, 10, 2, 7]})
    >>> fit_iterations(facts, families=["poisson"], step_cap=10).n_censored
    2
    """
    check_columns(facts, [column] + list(covariates or []), "facts")
    for name in families:
        check_choice("families", name, list(FAMILIES))
    cens_all = censor_mask(facts, censored, step_cap)
    X_all, names = design_matrix(facts, covariates)
    y_all = coerce_floats(facts[column])
    keep = np.isfinite(y_all) & np.all(np.isfinite(X_all), axis=1)
    y, X, cens = y_all[keep], X_all[keep], cens_all[keep]
    if len(y) < 2:
        raise ValueError(f"`facts` has {len(y)} usable rows in {column!r}; at least 2 are needed.")
    if not cens.any() and np.all(y == y[0]):  # no spread: the likelihoods have no maximum
        raise ValueError(f"All {len(y)} traces take exactly {y[0]:g} {column}: that is a point mass, "
                         "with no spread for a count law to fit.")
    cells = distinct_rows(np.column_stack([y, cens, X]))  # shared by every fit and table below
    fits, skipped = _fit_all(families, y, X, cens, cells)
    if not fits:
        raise ValueError(f"No family could be fitted: {skipped}.")
    ranking = _ranking(fits)
    best = str(ranking["family"].iloc[0])
    params = pd.concat([_param_table(f, names, level) for f in fits.values()], ignore_index=True)
    return IterationFit(column, len(y), int(cens.sum()), best, ranking, params,
                        dispersion_tests(y[~cens], X[~cens], fits, cells=_uncensored(cells)),
                        _rootogram(fits, y, X, cens, cells),
                        tuple(skipped), level)


def _uncensored(cells: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (count, covariates) rows of the uncensored traces, from the distinct
    (count, censored, covariates) rows: the same rows, order and numbers as computed afresh."""
    rows, weight = cells
    keep = rows[:, 1] == 0
    return np.delete(rows[keep], 1, axis=1), weight[keep]


def _fit_all(families, y, X, cens, cells) -> tuple[dict[str, FamilyFit], list[tuple[str, str]]]:
    fits, skipped = {}, []
    for name in families:
        reason = applicable(name, y)
        if reason is None:
            try:
                fit = fit_family(name, y, X, cens, cells=cells)
                if np.isfinite(fit.loglik):
                    fits[name] = fit
                    continue
                reason = "the likelihood was not finite"
            except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
                reason = f"fit failed: {exc}"
        skipped.append((name, reason))
    return fits, skipped


def _ranking(fits: dict[str, FamilyFit]) -> pd.DataFrame:
    rows = [{"family": n, "n_params": f.n_params, "loglik": f.loglik, "aic": f.aic, "bic": f.bic,
             "converged": f.converged, "method": f.method} for n, f in fits.items()]
    table = pd.DataFrame(rows).sort_values("aic", kind="stable", ignore_index=True)
    table.insert(5, "delta_aic", table["aic"] - table["aic"].iloc[0])
    return table


# The intercept-only mean term: the mean of the law fitted, which for a shifted family is the
# count part (iterations - 1) and for zero-truncated and hurdle families the untruncated base.
_MEAN_TERM = {"": "mean", "shifted": "count_mean", "zt": "base_mean", "hurdle": "base_mean"}


def _param_table(fit: FamilyFit, names: list[str], level: float) -> pd.DataFrame:
    k = len(names)
    se = np.sqrt(np.clip(np.diag(fit.cov), 0, None))
    z = norm_ppf(0.5 + level / 2)
    terms = list(names)
    if fit.family.has_alpha:
        terms.append("alpha")
    if fit.family.modifier == "hurdle":
        terms += [f"zero:{n}" for n in names]
    est, lo, hi = fit.params.copy(), fit.params - z * se, fit.params + z * se
    se = se.copy()
    natural = [k] if fit.family.has_alpha else []
    if k == 1:  # intercept only: also report the base law's mean, named for what it is
        terms.append(_MEAN_TERM[fit.family.modifier])
        est, lo, hi, se = (np.append(a, a[0]) for a in (est, lo, hi, se))
        natural.append(len(terms) - 1)
    for i in natural:  # log scale -> natural scale (delta-method se, transformed interval)
        est[i], lo[i], hi[i], se[i] = np.exp(est[i]), np.exp(lo[i]), np.exp(hi[i]), se[i] * np.exp(est[i])
    if k == 1 and fit.family.modifier == "shifted":  # iterations = 1 + count
        terms.append("mean_iterations")
        est, lo, hi, se = np.append(est, 1 + est[-1]), np.append(lo, 1 + lo[-1]), \
            np.append(hi, 1 + hi[-1]), np.append(se, se[-1])
    return pd.DataFrame({"family": fit.family.name, "term": terms, "estimate": est, "se": se,
                         "ci_low": lo, "ci_high": hi})


def dispersion_tests(y: np.ndarray, X: np.ndarray, fits: dict[str, FamilyFit], *,
                     cells: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """Over-dispersion tests of a Poisson fit of ``y`` on ``X`` (uncensored rows).

    ``cells`` are the distinct (count, covariates) rows and their numbers when known.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.random.default_rng(1).negative_binomial(2, 0.1, 300).astype(float)
    >>> t = dispersion_tests(y, np.ones((300, 1)), {})
    >>> bool(t.set_index("test").loc["cameron_trivedi_nb2", "p_value"] < 0.01)
    True
    """
    # over the distinct (count, covariates) rows, each weighted by its number: the same sums
    rows, w = cells if cells is not None else distinct_rows(np.column_stack([y, X]))
    y, X, w = rows[:, 0], rows[:, 1:], w.astype(float)
    mu = poisson_means(y, X, w)
    n = w.sum()
    dof = max(n - X.shape[1], 1)
    pearson = float(np.sum(w * (y - mu) ** 2 / mu))
    aux = ((y - mu) ** 2 - y) / mu
    rows = [("pearson_dispersion", pearson / dof, float(chi2_sf(pearson, dof)),
             "Pearson chi2 / dof; > 1 is over-dispersion")]
    for name, regressor in (("cameron_trivedi_nb2", mu), ("cameron_trivedi_nb1", np.ones_like(mu))):
        # OLS of aux on the regressor without intercept, its slope's t (frequency-weighted rows)
        sxx = np.sum(w * regressor**2)
        slope = np.sum(w * regressor * aux) / sxx
        s2 = np.sum(w * (aux - slope * regressor) ** 2) / max(n - 1, 1)
        t = float(slope / np.sqrt(s2 / sxx))
        rows.append((name, t, float(t_sf(t, max(n - 1, 1))), "t of alpha; one-sided"))
    if "poisson" in fits and "nb2" in fits:
        lr = 2 * (fits["nb2"].loglik - fits["poisson"].loglik)
        rows.append(("lr_poisson_vs_nb2", lr, float(0.5 * chi2_sf(max(lr, 0), 1)),
                     "boundary-corrected LR (all rows)"))
    return pd.DataFrame(rows, columns=["test", "statistic", "p_value", "note"])


def poisson_means(y: np.ndarray, X: np.ndarray, w: np.ndarray, *, tol: float = 1e-13,
                  maxiter: int = 100) -> np.ndarray:
    """Fitted means of the Poisson GLM (log link) of ``y`` on ``X`` with frequency weights ``w``.

    Iteratively reweighted least squares started as statsmodels' GLM starts it, iterated
    until the coefficients move by less than ``tol`` (statsmodels' GLM stops at a relative
    deviance change of 1e-8): the same fit without importing statsmodels (~0.25 CPU-s).

    Examples
    --------
    >>> y = np.array([1.0, 3.0, 2.0, 6.0])
    >>> X = np.column_stack([np.ones(4), [0.0, 0.0, 1.0, 1.0]])
    >>> np.round(poisson_means(y, X, np.array([2.0, 1.0, 1.0, 1.0])), 6).tolist()
    [1.666667, 1.666667, 4.0, 4.0]
    """
    mu = (y + np.average(y, weights=w)) / 2
    eta, beta = np.log(mu), None
    for _ in range(maxiter):
        z = eta + (y - mu) / mu
        wx = X * (w * mu)[:, None]
        new = np.linalg.lstsq(X.T @ wx, wx.T @ z, rcond=None)[0]
        done = beta is not None and np.max(np.abs(new - beta)) <= tol * max(1.0, np.max(np.abs(new)))
        beta, eta = new, X @ new
        mu = np.exp(eta)
        if done:
            break
    return mu


def _rootogram(fits: dict[str, FamilyFit], y, X, cens, cells) -> pd.DataFrame:
    rows, numbers = cells  # distinct (count, censored, covariates), sorted
    done = rows[:, 1] == 0
    kmax = int(np.max(rows[done, 0] if done.any() else rows[:, 0]))
    grid = np.arange(kmax + 1)
    observed = np.bincount(rows[done, 0].astype(int), weights=numbers[done], minlength=kmax + 1)
    cells, at = np.unique(rows[:, 2:], axis=0, return_inverse=True)  # distinct covariate rows
    weight = np.bincount(at.reshape(-1), weights=numbers)
    if len(cells) > 200:  # many distinct covariate rows: sum over a sample of rows
        cells = X[np.random.default_rng(0).choice(len(X), 200, replace=False)]
        weight = np.full(200, len(X) / 200)
    expected = [weight @ pmf_matrix(fit, cells, grid) for fit in fits.values()]
    # per family: k = 0..kmax, then k = -1, the censored tail (one frame, not two per family)
    return pd.DataFrame({
        "family": [name for name in fits for _ in range(grid.size + 1)],
        "k": np.tile(np.append(grid, -1), len(fits)),
        "observed": np.tile(np.append(observed, float(cens.sum())), len(fits)),
        "expected": np.concatenate([np.append(e, max(len(y) - e.sum(), 0.0)) for e in expected])})
