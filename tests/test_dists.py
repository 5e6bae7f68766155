"""The closed forms of aiscale.analysis._dists against scipy.stats, on random and edge-case arguments."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from aiscale.analysis import _dists


def _same(a, b):
    np.testing.assert_array_equal(np.asarray(a, float), np.asarray(b, float))


def test_normal_t_and_chi2_equal_scipy_to_the_bit():
    rng = np.random.default_rng(1)
    q = np.concatenate([rng.uniform(size=500), [0.0, 1.0, 1e-300, 1 - 1e-16, 0.5, -0.1, 1.1, np.nan]])
    df = np.concatenate([rng.uniform(0.05, 500, size=500), [1.0, 2.0, 3.0, 1e6, 0.0, -1.0, 5.0, 5.0]])
    x = np.concatenate([rng.standard_normal(500) * 10, [0.0, -np.inf, np.inf, 40.0, -40.0, 1e-8, 3.0, np.nan]])
    _same(_dists.norm_ppf(q), stats.norm.ppf(q))
    _same(_dists.norm_cdf(x), stats.norm.cdf(x))
    _same(_dists.norm_sf(x), stats.norm.sf(x))
    _same(_dists.t_ppf(q, df), stats.t.ppf(q, df))
    _same(_dists.t_sf(x, df), stats.t.sf(x, df))
    _same(_dists.chi2_sf(np.abs(x) * 3 - 5, df), stats.chi2.sf(np.abs(x) * 3 - 5, df))
    for level, dof in ((0.95, 1), (0.9, 7), (0.99, 120)):  # scalars, as the analyses pass them
        assert float(_dists.t_ppf(0.5 + level / 2, dof)) == float(stats.t.ppf(0.5 + level / 2, dof))
        assert float(_dists.norm_ppf(0.5 + level / 2)) == float(stats.norm.ppf(0.5 + level / 2))


@pytest.mark.parametrize("c", [-0.45, -0.1, 0.0, 1e-12, 0.3, 0.99])
def test_genpareto_quantiles_equal_scipy(c):
    q = np.concatenate([np.random.default_rng(2).uniform(size=300), [0.0, 1.0, 1e-12, 1 - 1e-12]])
    _same(_dists.genpareto_ppf(q, c, 2.5), stats.genpareto.ppf(q, c, scale=2.5))


def test_benjamini_hochberg_equals_scipy_with_ties_zeros_and_ones():
    rng = np.random.default_rng(3)
    for ps in (rng.uniform(size=50), np.r_[rng.uniform(size=20) ** 4, 0.0, 1.0, 0.5, 0.5, 0.5],
               np.array([0.2]), np.array([0.01, 0.04, 0.03])):
        _same(_dists.bh_adjust(ps), stats.false_discovery_control(ps))
    with pytest.raises(ValueError, match="between 0 and 1"):
        _dists.bh_adjust([0.5, 1.5])


def test_ranks_and_mann_whitney_equal_scipy():
    rng = np.random.default_rng(4)
    cases = [(rng.lognormal(0, 1, 300), rng.lognormal(0.2, 1, 250)),       # no ties
             (rng.integers(0, 6, 400).astype(float), rng.integers(0, 7, 90).astype(float)),  # many ties
             (np.zeros(5), np.r_[np.zeros(4), 1.0]),                        # nearly all tied
             (np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0]))]             # tiny
    for x, y in cases:
        _same(_dists.rank_average(np.r_[x, y]), stats.rankdata(np.r_[x, y]))
        expected = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic").pvalue
        assert _dists.mannwhitneyu_p(x, y) == float(expected)


def test_family_quantiles_equal_scipy_frozen_distributions():
    from aiscale.analysis.tokens.families import FAMILIES

    rng = np.random.default_rng(5)
    q = np.concatenate([rng.uniform(size=200), [0.0, 1.0, 1e-12, 1 - 1e-12, 0.5, -0.5, 2.0, np.nan]])
    for name in ("lognormal", "gamma", "weibull", "loglogistic"):
        fam = FAMILIES[name]
        for _ in range(20):  # random parameters, heavy and light tails
            theta = np.array([rng.uniform(-3, 3), rng.uniform(-2.5, 2.5)])
            _same(fam.ppf(q, theta, {}), fam.frozen(theta, {}).ppf(q))
            assert float(fam.ppf(0.99, theta, {})) == float(fam.frozen(theta, {}).ppf(0.99))
    assert type(FAMILIES["gamma"].dist(2.0, scale=3.0)) is type(stats.gamma(2.0, scale=3.0))
    assert FAMILIES["weibull"].dist.name == "weibull_min"


def test_splice_quantiles_equal_a_construction_from_scipy():
    from aiscale.analysis.tokens.families import FAMILIES

    fam = FAMILIES["lognormal+gpd"]
    q = np.concatenate([np.linspace(0, 1, 101), [0.9, 0.95, 0.999999]])
    for xi in (-0.3, 0.0, 0.4):
        theta, aux = np.array([1.0, np.log(0.7), xi, np.log(2.0)]), {"u": 6.0, "phi": 0.1}
        body = stats.lognorm(0.7, scale=np.exp(1.0))
        low = body.ppf(np.clip(q, 0, 0.9) / 0.9 * body.cdf(6.0))
        high = 6.0 + stats.genpareto.ppf(np.clip((q - 0.9) / 0.1, 0, 1), xi, scale=2.0)
        np.testing.assert_allclose(fam.ppf(q, theta, aux), np.where(q <= 0.9, low, high), rtol=1e-12)


def test_woodruff_quantiles_with_ties_equal_a_stable_sort_construction():
    from aiscale.analysis._stats import clustered_se, woodruff_quantiles

    rng = np.random.default_rng(6)
    values = np.round(rng.lognormal(0, 1, 5000), 1)  # many ties
    codes = rng.integers(0, 700, 5000)
    qs = [0.1, 0.5, 0.9, 0.99]
    est, lo, hi = woodruff_quantiles(values, codes, qs)
    order = np.argsort(values, kind="stable")
    v, c, n = values[order], codes[order], len(values)
    n_i = np.bincount(c).astype(float)
    t = float(stats.t.ppf(0.975, int((n_i > 0).sum()) - 1))

    def at(u):
        return v[int(np.clip(np.ceil(u * n - 1e-9) - 1, 0, n - 1))]

    for j, q in enumerate(qs):
        assert est[j] == np.quantile(values, q, method="inverted_cdf") == at(q)
        below = np.bincount(c[v <= est[j]], minlength=len(n_i)).astype(float)
        se = clustered_se(n_i[n_i > 0], below[n_i > 0])[1]
        assert (lo[j], hi[j]) == (at(q - t * se), at(q + t * se))


def test_lazy_scipy_distribution_copies_and_pickles():
    import copy
    import pickle

    from aiscale.analysis.tokens.families import FAMILIES

    for dist in (FAMILIES["gamma"].dist, copy.deepcopy(FAMILIES["gamma"].dist),
                 pickle.loads(pickle.dumps(FAMILIES["gamma"].dist))):
        assert dist.name == "gamma"
        assert dist(2.0, scale=3.0).mean() == stats.gamma(2.0, scale=3.0).mean()


@pytest.mark.parametrize("name", ["lognormal", "gamma", "weibull", "loglogistic"])
def test_family_closed_forms_equal_scipy_in_the_body_and_the_tails(name):
    from aiscale.analysis.tokens.families import FAMILIES

    fam, rng = FAMILIES[name], np.random.default_rng(7)
    for _ in range(20):  # light and heavy tails
        theta = np.array([rng.uniform(-2, 2), rng.uniform(-2, 1.5)])
        frozen = fam.frozen(theta, {})
        x = np.concatenate([frozen.ppf(rng.uniform(size=50)), frozen.ppf([1e-9, 0.5, 1 - 1e-9]),
                            [1e-12, 1e-3, 1.0, 1e3, 1e6]])
        x = x[np.isfinite(x) & (x > 0)]
        cdf = frozen.cdf(x)
        np.testing.assert_allclose(fam.logpdf(x, theta, {}), frozen.logpdf(x), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fam.cdf(x, theta, {}), cdf, rtol=1e-9, atol=1e-300)
        # the log survival where SciPy's has its digits (its loglogistic logsf goes through
        # 1 - cdf, and far in the tail loses them; the closed form does not)
        body = cdf < 1 - 1e-6
        np.testing.assert_allclose(fam.logsf(x[body], theta, {}), frozen.logsf(x[body]), rtol=1e-9, atol=1e-12)
    single = np.array([3.0])  # one value, and a value at 0 (the edge of the support)
    np.testing.assert_allclose(fam.cdf(single, theta, {}), frozen.cdf(single), rtol=1e-12)
    assert float(fam.ppf(0.0, theta, {})) == float(frozen.ppf(0.0)) == 0.0
