"""Drift: a planted change is found at its date; with no change, false alarms stay at alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aiscale.analysis.change import drift as dr

START = pd.Timestamp("2025-03-03", tz="UTC")  # a Monday: weekly windows are whole weeks


def _simulate(rng, *, days=28, per_day=60, change_day=None, cost_factor=1.0, success_after=0.8):
    n = days * per_day
    t = START + pd.to_timedelta(np.sort(rng.uniform(0, days * 86400, n)), unit="s")
    after = np.zeros(n, bool) if change_day is None else t >= START + pd.Timedelta(days=change_day)
    iters = rng.negative_binomial(3, 0.3, n) + 1
    return pd.DataFrame({
        "started_at": t,
        "cost_usd": rng.lognormal(-3.0, 1.0, n) * np.where(after, cost_factor, 1.0),
        "input_tokens": rng.lognormal(8, 0.7, n).round(),
        "output_tokens": rng.lognormal(6, 0.9, n).round(),
        "iterations": iters, "latency_s": rng.gamma(2.0, 5.0, n),
        "success": pd.array(rng.random(n) < np.where(after, success_after, 0.8), dtype="boolean")})


def test_planted_drift_is_found_at_its_date(rng):
    facts = _simulate(rng, change_day=17, cost_factor=1.6, success_after=0.65)
    cp = dr.change_point(facts, metric="cost", n_perm=499)
    assert cp.date == START + pd.Timedelta(days=17)
    assert cp.p_value < 0.01
    assert cp.summary().loc[0, "relative_change"] == pytest.approx(0.6, abs=0.25)
    res = dr.drift(facts, at="2025-03-20")
    changed = res.changes().set_index("metric")
    assert {"cost", "success"} <= set(changed.index)
    assert not {"input_tokens", "output_tokens", "iterations", "latency_s"} & set(changed.index)
    assert changed.loc["success", "change"] == pytest.approx(-0.15, abs=0.06)
    assert changed.loc["success", "test"] == "two-proportion z"
    weekly = dr.drift(facts, freq="W")
    cost = weekly.changes().query("metric == 'cost'")
    # the week holding day 17 (partly changed) or the next one (fully changed) vs the one before
    assert set(cost["window_b"]) & {"2025-03-17/2025-03-23", "2025-03-24/2025-03-30"}
    weekly.plot()
    cp.plot()
    assert "significant" in repr(weekly) and "best split at 2025-03-20" in repr(cp)


def test_no_drift_false_alarm_rate_is_at_most_alpha(rng):
    reps, alpha = 200, 0.05
    drift_alarms = scan_alarms = 0
    for i in range(reps):
        facts = _simulate(rng, days=21, per_day=30)
        drift_alarms += bool(dr.drift(facts, freq="W", alpha=alpha).table["significant"].any())
        scan_alarms += dr.change_point(facts, metric="cost", n_perm=199, seed=i).p_value < alpha
    # any alarm at all (FWER under the global null = FDR) is not significantly above alpha
    for alarms in (drift_alarms, scan_alarms):
        assert stats.binomtest(alarms, reps, alpha, alternative="greater").pvalue > 0.01, alarms


def test_drift_inputs_and_errors(rng):
    facts = _simulate(rng, days=3, per_day=20)
    with pytest.raises(ValueError, match="either `at`"):
        dr.drift(facts, at="2025-03-04", freq="D")
    with pytest.raises(ValueError, match="available columns"):
        dr.drift(facts, metrics=["latency"])
    one = dr.drift(facts.drop(columns=["cost_usd"]), freq="D")
    assert "cost" not in set(one.table["metric"]) and len(one.frame()) == 2 * 5
    with pytest.raises(ValueError, match="at least two"):
        dr.change_point(facts.iloc[:1], metric="cost")
