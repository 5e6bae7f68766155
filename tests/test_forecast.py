"""Spend forecasts against fresh simulations with known per-trace cost distributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aiscale.analysis.change import forecast as fc


def _coverage(rng, draw_costs, method, reps=120, n_obs=300, traffic=30.0, days=30, growth=0.0):
    """Share of fresh simulated periods whose realised spend falls in the 95% and 80% intervals."""
    lam = traffic * np.sum((1 + growth) ** np.arange(days))
    hits95 = hits80 = 0
    for rep in range(reps):
        facts = pd.DataFrame({"cost_usd": draw_costs(rng, n_obs)})
        row = fc.forecast(facts, traffic=traffic, days=days, growth=growth, method=method,
                          n_sims=1000, seed=rep).summary().iloc[0]
        realised = draw_costs(rng, rng.poisson(lam)).sum()
        hits95 += row["lower_95"] <= realised <= row["upper_95"]
        hits80 += row["lower_80"] <= realised <= row["upper_80"]
    return hits95, hits80, reps


def _nominal(hits, reps, level):
    """Coverage consistent with the nominal level (two-sided binomial test at 1%)."""
    return stats.binomtest(hits, reps, level).pvalue > 0.01


def test_lognormal_forecast_covers_fresh_spend_at_nominal_rate(rng):
    def lognormal(r, n):
        return r.lognormal(-3.0, 1.2, n)

    h95, h80, reps = _coverage(rng, lognormal, "lognormal", growth=0.02)
    assert _nominal(h95, reps, 0.95), h95
    assert _nominal(h80, reps, 0.80), h80


def test_empirical_forecast_covers_fresh_spend_at_nominal_rate(rng):
    def gamma(r, n):
        return r.gamma(1.5, 0.02, n)

    h95, h80, reps = _coverage(rng, gamma, "empirical", n_obs=400)
    assert _nominal(h95, reps, 0.95), h95
    assert _nominal(h80, reps, 0.80), h80


def test_large_traffic_uses_normal_sum_and_keeps_mean(rng):
    x = rng.gamma(2.0, 0.05, 2000)  # true mean 0.1 per trace
    res = fc.forecast(pd.DataFrame({"cost_usd": x}), traffic=200_000, days=30, n_sims=2000,
                      budget=6_000_000 * x.mean())
    row = res.summary().iloc[0]
    assert row["mean"] == pytest.approx(6_000_000 * x.mean(), rel=0.01)
    assert 0.4 < row["p_over_budget"] < 0.6
    assert row["lower_95"] < 6_000_000 * 0.1 < row["upper_95"]


def test_what_ifs_scale_spend_as_expected(rng):
    n = 4000
    facts = pd.DataFrame({
        "variant": np.where(np.arange(n) < n // 2, "big", "small"),
        "cost_usd": np.where(np.arange(n) < n // 2, 1.0, 0.1) * rng.gamma(4.0, 0.25, n),
        "iterations": rng.integers(1, 21, n), "input_tokens": 1000, "cache_read_tokens": 0})
    scen = {"cap 10": {"loop_cap": 10}, "route": {"route_share": 0.5, "route_to": "small"},
            "cache": {"cache_hit_rate": 1.0, "input_cost_share": 1.0, "cache_price_ratio": 0.1}}
    res = fc.forecast(facts, traffic=1000, days=10, variant="big", scenarios=scen, n_sims=2000)
    t = res.summary().set_index("scenario")
    big = facts[facts["variant"] == "big"]
    base = 10_000 * big["cost_usd"].mean()
    assert t.loc["as is", "mean"] == pytest.approx(base, rel=0.02)
    capped = (big["cost_usd"] * np.minimum(big["iterations"], 10) / big["iterations"]).mean()
    assert t.loc["cap 10", "mean"] == pytest.approx(10_000 * capped, rel=0.02)
    small = facts.loc[facts["variant"] == "small", "cost_usd"].mean()
    assert t.loc["route", "mean"] == pytest.approx(5000 * big["cost_usd"].mean() + 5000 * small,
                                                   rel=0.02)
    assert t.loc["cache", "mean"] == pytest.approx(0.1 * base, rel=0.02)
    assert "4" in repr(res) and len(res.frame()) == 4 * 2000
    res.plot()


def test_errors_name_the_parameter(rng):
    facts = pd.DataFrame({"cost_usd": rng.gamma(2.0, 0.05, 50)})
    with pytest.raises(ValueError, match="`method` must be one of"):
        fc.forecast(facts, traffic=10, method="normal")
    with pytest.raises(ValueError, match="input_cost_share"):
        fc.forecast(facts, traffic=10, scenarios={"c": {"cache_hit_rate": 0.5}})
    with pytest.raises(ValueError, match="Scenario keys must be among"):
        fc.forecast(facts, traffic=10, scenarios={"c": {"loopcap": 5}})
    unpriced = fc.forecast(facts.assign(cost_usd=facts["cost_usd"].where(facts.index > 4)),
                           traffic=10, n_sims=100)
    assert "5 unpriced" in unpriced.notes[0]
