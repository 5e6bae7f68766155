"""Power and runs needed: hand-computed formula values and agreement with simulated power."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aiscale.analysis.reliability.power import minimum_detectable_effect, runs_needed, sample_size


def expit(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("kw, expected", [
    # (z_.975 + z_.8)^2 = 7.848879; (z_.995 + z_.9)^2 = 14.879389
    (dict(effect=0.1, between_var=0.02, within_var=0.2, trials=4), 95),       # 94.19
    (dict(effect=0.05, between_var=0.02, within_var=0.2, trials=1), 1319),    # 1318.6
    (dict(effect=0.1, between_var=0.02, within_var=(0.15, 0.05), trials=2, alpha=0.01,
          power=0.9), 179),                             # 14.879389 * (0.02 + 0.2 / 2) / 0.01 = 178.55
])
def test_sample_size_hand_computed(kw, expected):
    assert sample_size(**kw) == expected


def test_parameter_errors():
    with pytest.raises(ValueError, match="`alpha` and `power` must be in"):
        sample_size(effect=0.1, between_var=0.0, within_var=0.2, power=80)


def population(rng, size):
    """Logit-normal task difficulty; b helps by +0.4 logit with a task-specific spread."""
    z = rng.normal(0, 1.2, size)
    return expit(z), expit(z + 0.4 + 0.5 * rng.normal(0, 1, size))


def simulated_power(rng, n, trials, *, runs=4000, alpha=0.05):
    """Share of paired evals (n fresh tasks, ``trials`` each) where the paired t test rejects."""
    pa, pb = population(rng, (runs, n))
    d = (rng.binomial(trials, pb) - rng.binomial(trials, pa)) / trials
    t = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(n))
    return float(np.mean(2 * stats.t.sf(np.abs(t), n - 1) < alpha))


@pytest.mark.parametrize("trials", [1, 3])
def test_formula_power_matches_simulation(rng, trials):
    pa, pb = population(rng, 2_000_000)  # the population's true parameters, by Monte Carlo
    n = sample_size(effect=np.mean(pb - pa), between_var=np.var(pb - pa),
                    within_var=(np.mean(pa * (1 - pa)), np.mean(pb * (1 - pb))), trials=trials)
    assert abs(simulated_power(rng, n, trials) - 0.8) <= 0.05


def pilot(rng, tasks, trials) -> pd.DataFrame:
    pa, pb = population(rng, tasks)
    ya = rng.random((tasks, trials)) < pa[:, None]
    yb = rng.random((tasks, trials)) < pb[:, None]
    ids = np.repeat(np.arange(tasks).astype(str), trials)
    return pd.DataFrame({"task_id": np.concatenate([ids, ids]),
                         "variant": ["a"] * ya.size + ["b"] * yb.size,
                         "success": np.concatenate([ya.ravel(), yb.ravel()])})


def test_runs_needed_from_pilot_reaches_target_power(rng):
    truth_a, truth_b = population(rng, 2_000_000)
    effect = float(np.mean(truth_b - truth_a))
    res = runs_needed(pilot(rng, 3000, 3), a="a", b="b", effect=effect, trials=(1, 3),
                      tasks=400)
    c = res.components
    assert c["between_var"] == pytest.approx(np.var(truth_b - truth_a), rel=0.2)
    assert c["within_var_a"] == pytest.approx(np.mean(truth_a * (1 - truth_a)), abs=0.01)
    assert c["within_var_b"] == pytest.approx(np.mean(truth_b * (1 - truth_b)), abs=0.01)
    n3 = int(res.summary().set_index("trials").loc[3, "tasks_needed"])
    assert abs(simulated_power(rng, n3, 3) - 0.8) <= 0.05
    # with 400 tasks fixed, the trials per task asked for is the smallest that reaches 80%
    k = int(c["trials_needed"])
    assert k > 1 and simulated_power(rng, 400, k) >= 0.8 - 0.05
    assert simulated_power(rng, 400, k - 1) < 0.8


def test_minimum_detectable_effect_matches_simulation(rng):
    # b = a + effect + uniform task noise (ω² = 0.05² / 3); tasks kept inside (0, 1)
    n, trials, noise = 150, 2, 0.05
    pa = 0.1 + 0.5 * rng.beta(2, 2, (4000, n))
    eff = 0.1
    for _ in range(3):  # σ²_b depends on the effect: iterate to the fixed point
        pb_pop = pa[:200].ravel() + eff
        eff = minimum_detectable_effect(
            n_tasks=n, between_var=noise**2 / 3, trials=trials,
            within_var=(np.mean(pa * (1 - pa)), np.mean(pb_pop * (1 - pb_pop))))
    pb = pa + eff + rng.uniform(-noise, noise, pa.shape)
    d = (rng.binomial(trials, pb) - rng.binomial(trials, pa)) / trials
    t = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(n))
    assert abs(np.mean(2 * stats.t.sf(np.abs(t), n - 1) < 0.05) - 0.8) <= 0.05


def test_single_trial_pilot_plans_one_trial_only(rng):
    res = runs_needed(pilot(rng, 200, 1), a="a", b="b", effect=0.1)
    s = res.summary().set_index("trials")
    assert s.loc[1, "tasks_needed"] > 0 and s.loc[[2, 3, 5, 10], "tasks_needed"].isna().all()
    assert any("within-task variance is unknown" in n for n in res.notes)
    assert res.frame().loc[0, "mde_observed"] > 0
    assert "\n" not in repr(res) and "<table" in res._repr_html_()
    res.plot()


def test_more_trials_cannot_beat_task_variance(rng):
    res = runs_needed(pilot(rng, 3000, 3), a="a", b="b", effect=0.02, tasks=50)
    assert res.components["trials_needed"] == float("inf")
