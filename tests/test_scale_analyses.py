"""Analyses on large fact tables: the large-n rules give the answers known from theory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import aiscale
from aiscale.analysis._stats import distinct_rows
from aiscale.analysis.loops import count_families


def test_m_out_of_n_predictability_intervals_match_theory():
    n = 400_000  # above the 20,000 cap: resamples draw 20,000 and are rescaled
    x = np.random.default_rng(5).normal(10.0, 2.0, n)
    table = aiscale.predictability(pd.DataFrame({"cost_usd": x}), by=None, n_boot=400).summary()
    rows = table.set_index("metric")
    half_mean = (rows.loc["mean", "ci_high"] - rows.loc["mean", "ci_low"]) / 2
    assert half_mean == pytest.approx(1.96 * 2.0 / np.sqrt(n), rel=0.15)
    # the median's standard error is sqrt(p(1-p)/n) / f(q) = sqrt(pi/2) sigma / sqrt(n)
    half_p50 = (rows.loc["p50", "ci_high"] - rows.loc["p50", "ci_low"]) / 2
    assert half_p50 == pytest.approx(1.96 * np.sqrt(np.pi / 2) * 2.0 / np.sqrt(n), rel=0.2)
    assert rows.loc["mean", "ci_low"] < 10.0 < rows.loc["mean", "ci_high"]


def test_large_sample_gof_bootstrap_keeps_the_true_family_and_rejects_a_wrong_one():
    rng = np.random.default_rng(3)
    lognormal = rng.lognormal(2.0, 0.7, 60_000)
    kept = aiscale.fit_distribution(lognormal, families=["lognormal"], gof_bootstrap=19, seed=1)
    assert kept.best.ks_pvalue > 0.05
    weibull = stats.weibull_min.rvs(1.5, scale=5.0, size=60_000, random_state=rng)
    rejected = aiscale.fit_distribution(weibull, families=["lognormal"], gof_bootstrap=19, seed=1)
    assert rejected.best.ks_pvalue == pytest.approx(1 / 20)


def test_large_count_fits_equal_the_statsmodels_fits_and_the_truth(monkeypatch):
    rng = np.random.default_rng(11)
    n = 120_000  # above LARGE_ROWS: distinct rows weighted
    y = (1 + rng.negative_binomial(2.0, 2.0 / (2.0 + 6.0), n)).astype(float)  # 1 + NB2(mean 6, alpha 0.5)
    facts = pd.DataFrame({"iterations": y})
    large = aiscale.fit_iterations(facts, families=["shifted_nb2", "poisson"])
    monkeypatch.setattr(count_families, "LARGE_ROWS", 10**9)
    monkeypatch.setattr(count_families, "BINNED_ROWS", 10**9)
    small = aiscale.fit_iterations(facts, families=["shifted_nb2", "poisson"])
    a, b = large.ranking.set_index("family"), small.ranking.set_index("family")
    assert set(large.ranking["method"]) == {"MLE"} and set(small.ranking["method"]) == {"statsmodels"}
    np.testing.assert_allclose(a.loc[["shifted_nb2", "poisson"], "loglik"],
                               b.loc[["shifted_nb2", "poisson"], "loglik"], rtol=1e-9)
    params = large.params.set_index(["family", "term"])["estimate"]
    assert params[("shifted_nb2", "count_mean")] == pytest.approx(6.0, rel=0.02)
    assert params[("shifted_nb2", "mean_iterations")] == pytest.approx(7.0, rel=0.02)
    assert params[("shifted_nb2", "alpha")] == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("shape", [(5_000, 3), (3_000, 40), (2_000, 1)])
def test_distinct_rows_is_numpy_unique(shape):
    """Also with 40 columns of 7 values (7^40 key combinations: the key is kept dense) and NaN."""
    rng = np.random.default_rng(0)
    for m in (rng.integers(0, 7, shape).astype(float),
              np.where(rng.random(shape) < 0.01, np.nan, rng.integers(0, 2, shape))):
        rows, counts = distinct_rows(m)
        want_rows, want_counts = np.unique(m, axis=0, return_counts=True)
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(counts, want_counts)


@pytest.mark.parametrize("censor_at", [None, 14])
def test_binned_count_fits_equal_the_row_by_row_fits(monkeypatch, censor_at):
    """From BINNED_ROWS repeated rows the counts are fitted as (value, censored) with their
    multiplicity: the same likelihood, so the same maximum, estimates and standard errors
    as the fit over every row, for every family."""
    rng = np.random.default_rng(23)
    n = 6_000
    y = (1 + rng.negative_binomial(2.0, 2.0 / (2.0 + 5.0), n)).astype(float)  # 1 + NB2(mean 5, alpha 0.5)
    censored = np.zeros(n, bool) if censor_at is None else y >= censor_at
    facts = pd.DataFrame({"iterations": np.minimum(y, censor_at or np.inf)})
    assert count_families.binned_pays(facts["iterations"].to_numpy(), np.ones((n, 1)), censored)
    binned = aiscale.fit_iterations(facts, censored=censored)
    monkeypatch.setattr(count_families, "BINNED_ROWS", 10**9)
    rows = aiscale.fit_iterations(facts, censored=censored)
    assert len(binned.ranking) == len(rows.ranking) >= 8
    if censor_at is None:  # row by row, statsmodels fits the uncensored laws itself
        assert set(rows.ranking["method"]) == {"statsmodels"} and set(binned.ranking["method"]) == {"MLE"}
    a = binned.ranking.set_index("family")
    b = rows.ranking.set_index("family").loc[a.index]
    np.testing.assert_allclose(a["loglik"], b["loglik"], rtol=1e-8)
    p = binned.params.set_index(["family", "term"])
    q = rows.params.set_index(["family", "term"]).loc[p.index]
    np.testing.assert_allclose(p["estimate"], q["estimate"], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(p["se"], q["se"], rtol=2e-2)
    assert p.loc[("shifted_nb2", "mean_iterations"), "estimate"] == pytest.approx(6.0, rel=0.05)
