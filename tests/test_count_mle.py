"""The count families' Newton fit (every finite difference of a step in one call) against
statsmodels' generic MLE it replaces: same maximum, same covariance, on simulated loops with
known laws and on the real SWE-bench leaderboard's per-instance API calls."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import pytest
from swebench_runs import bash_only_runs

from aiscale.analysis._stats import distinct_rows
from aiscale.analysis.loops.count_families import (
    FAMILIES,
    FamilyFit,
    _fit_censored,
    _generic_mle,
    _moment_start,
    applicable,
    pmf_matrix,
)
from aiscale.analysis.loops.count_mle import newton_mle, stencil
from aiscale.analysis.loops.fit import fit_iterations
from aiscale.sim.laws import DEFAULT_VARIANTS
from aiscale.sim.simulate import simulate

STRONG = DEFAULT_VARIANTS[1]  # T = 1 + NB(r=3, p=0.3)
TRUE_MEAN, TRUE_ALPHA = 7.0, 1 / 3  # of T - 1; NB2 dispersion 1/r


def _both(name: str, y: np.ndarray, cens: np.ndarray):
    """The new fit and statsmodels' generic MLE of the same distinct rows from the same start."""
    X = np.ones((len(y), 1))
    family = FAMILIES[name]
    start = _moment_start(family, y, X)
    new = _fit_censored(family, y, X, cens, start.copy())
    rows, weight = distinct_rows(np.column_stack([y, cens, X]))
    start = np.where(np.isfinite(start), start, 0.0)
    if family.has_alpha:
        start[1] = max(start[1], np.log(0.05))
    old = _generic_mle(family, rows[:, 0], rows[:, 2:], rows[:, 1].astype(bool), weight, start)
    return new, old


def _same(new, old, what: str) -> None:
    params, cov, loglik, ok = old
    assert ok and new.converged, what
    assert new.loglik == pytest.approx(loglik, rel=1e-9), what
    assert np.allclose(new.params, params, rtol=1e-6, atol=1e-8), (what, new.params, params)
    # both covariances are the inverse of approx_hess3's stencil, at optima 1e-8 apart: equal to
    # 1e-4 of each entry's scale (an off-diagonal near 0 is rounding noise in both)
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.all(np.abs(new.cov - cov) <= 1e-4 * scale), (what, new.cov, cov)


@pytest.mark.parametrize("cap", [8, 50])
def test_newton_finds_statsmodels_maximum_on_simulated_loops_and_the_truth(cap):
    variant = dataclasses.replace(STRONG, stuck_share=0.0, cap=cap)
    traces = simulate(20_000, seed=3, variants=(variant,), n_trials=1).truth.traces
    y, cens = traces["iterations"].to_numpy(float), traces["censored"].to_numpy(bool)
    assert cens.mean() > 0.25 if cap == 8 else not cens.any()  # uncensored: binned MLE alone
    for name in [n for n in FAMILIES if applicable(n, y) is None]:
        new, old = _both(name, y, cens)
        _same(new, old, (cap, name))
        if name == "shifted_nb2":  # the simulated law: 1 + NB2(mean 7, alpha 1/3)
            se = np.sqrt(np.diag(new.cov))
            assert abs(np.exp(new.params[0]) - TRUE_MEAN) < 4 * se[0] * TRUE_MEAN
            assert abs(np.exp(new.params[1]) - TRUE_ALPHA) < 4 * se[1] * TRUE_ALPHA


def test_newton_finds_statsmodels_maximum_on_real_swebench_api_calls():
    runs = bash_only_runs()
    assert len(runs) == 17
    for run in runs:
        calls = pd.DataFrame(run["per_instance_details"]).T["api_calls"].astype(float).to_numpy()
        y = calls[calls >= 1]
        cens = y >= np.quantile(y, 0.9)  # as if capped at the run's 90th percentile
        for name in ("shifted_nb2", "zt_poisson"):
            new, old = _both(name, y, cens)
            _same(new, old, (run["name"], name))


def test_iteration_fit_of_many_binned_traces_is_quick_and_recovers_the_law():
    variant = dataclasses.replace(STRONG, stuck_share=0.0, cap=8)
    traces = simulate(20_000, seed=4, variants=(variant,), n_trials=1).truth.traces
    started = time.process_time()
    fit = fit_iterations(traces, censored=traces["censored"])
    cpu = time.process_time() - started
    row = fit.params.query("family == 'shifted_nb2' and term == 'count_mean'").iloc[0]
    assert row["ci_low"] - 0.1 < TRUE_MEAN < row["ci_high"] + 0.1
    assert fit.ranking["converged"].all()
    assert cpu < 3.0, cpu  # ~0.3 CPU-s; statsmodels' generic MLE took several seconds here


def test_stencil_derivatives_and_newton_from_a_non_concave_start():
    points, derive = stencil(np.array([0.3, -1.2]))
    f = lambda P: np.sin(P[:, 0]) * np.exp(P[:, 1])  # noqa: E731
    _, grad, hess = derive(f(points))
    x, y = 0.3, -1.2
    assert np.allclose(grad, [np.cos(x) * np.exp(y), np.sin(x) * np.exp(y)], rtol=1e-8)
    assert np.allclose(hess, [[-np.sin(x) * np.exp(y), np.cos(x) * np.exp(y)],
                              [np.cos(x) * np.exp(y), np.sin(x) * np.exp(y)]], rtol=1e-5)
    # log-likelihood of a logistic location: convex far out, Newton there would step away
    data = np.array([-1.0, 0.5, 2.0, 3.5])
    loglik = lambda P: -2 * np.log1p(np.exp(-(data[None, :] - P[:, :1]))).sum(1) - (data[None, :] - P[:, :1]).sum(1)  # noqa: E731,E501
    fit = newton_mle(loglik, np.array([40.0]))
    assert fit.converged
    grid = np.linspace(-5, 8, 130_001)[:, None]
    assert fit.params[0] == pytest.approx(grid[np.argmax(loglik(grid)), 0], abs=1e-3)


def test_poisson_means_equal_statsmodels_glm_with_frequency_weights(rng):
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM

    from aiscale.analysis.loops.fit import poisson_means

    X = np.column_stack([np.ones(300), rng.integers(0, 2, 300), rng.normal(size=300)])
    y = rng.poisson(np.exp(0.5 + 0.7 * X[:, 1] - 0.3 * X[:, 2])).astype(float)
    w = rng.integers(1, 50, 300).astype(float)
    reference = GLM(y, X, family=families.Poisson(), freq_weights=w).fit().fittedvalues
    assert np.allclose(poisson_means(y, X, w), reference, rtol=1e-9, atol=0)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_puts_its_whole_mass_on_its_support(name):
    """The probabilities the rootogram draws sum to one, with none where the family has no support."""
    from scipy import stats

    family = FAMILIES[name]
    params = np.array([np.log(3.0)] + [np.log(0.5)] * family.has_alpha + [0.3] * (family.modifier == "hurdle"))
    fit = FamilyFit(family, params, np.eye(params.size), 0.0, 1, True, "test")
    grid = np.arange(0, 400)
    p = pmf_matrix(fit, np.ones((1, 1)), grid)[0]
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    if family.modifier in ("zt", "shifted"):
        assert p[0] == 0.0
    if name == "zt_poisson":  # scipy's Poisson(3) conditioned on Y > 0
        truth = stats.poisson.pmf(grid, 3.0) / stats.poisson.sf(0, 3.0)
        np.testing.assert_allclose(p[1:40], truth[1:40], rtol=1e-10)
