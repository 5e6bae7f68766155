"""Iteration-count fits and hazards, checked against the simulator's known loop laws."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from swebench_runs import bash_only_runs

import aiscale
from aiscale.analysis.loops.count_families import FAMILIES, fit_family
from aiscale.analysis.loops.fit import fit_iterations
from aiscale.analysis.loops.hazard import iteration_hazard
from aiscale.analysis.loops.outcome_length import iterations_by_outcome
from aiscale.sim.laws import DEFAULT_VARIANTS, LoopLaw
from aiscale.sim.simulate import simulate

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
STRONG = DEFAULT_VARIANTS[1]  # T = 1 + NB(r=3, p=0.3), cap 50
TRUE_MEAN = STRONG.loop.r * (1 - STRONG.loop.p) / STRONG.loop.p  # of T - 1: 7.0
TRUE_ALPHA = 1 / STRONG.loop.r  # NB2 dispersion: 1/3


def _one_variant(n: int, seed: int, **changes) -> pd.DataFrame:
    """Per-trace truth (a facts-like frame) of one simulated variant without stuck loops."""
    variant = dataclasses.replace(STRONG, stuck_share=0.0, **changes)
    return simulate(n, seed=seed, variants=(variant,), n_trials=1).truth.traces


def _covers(fit, family: str, term: str, truth: float) -> bool:
    row = fit.params.query("family == @family and term == @term").iloc[0]
    return bool(row["ci_low"] <= truth <= row["ci_high"])


def test_nb_wins_on_simulated_nb_loops():
    facts = _one_variant(1500, seed=11)
    fit = fit_iterations(facts)
    assert FAMILIES[fit.best].base == "nb2", fit.best  # shifted or zero-truncated NB2
    assert fit.summary().set_index("family").loc["shifted_nb2", "delta_aic"] < 4
    assert _covers(fit, "shifted_nb2", "count_mean", TRUE_MEAN)
    ranking = fit.summary().set_index("family")
    assert ranking.loc["shifted_poisson", "delta_aic"] > 100
    assert ranking.loc["shifted_geometric", "delta_aic"] > 20
    tests = fit.dispersion.set_index("test")
    assert tests.loc["cameron_trivedi_nb2", "p_value"] < 1e-6
    assert tests.loc["pearson_dispersion", "statistic"] > 1.5


@pytest.mark.parametrize("cap, n_reps", [
    (50, 120), (8, 100),
    pytest.param(50, 600, marks=pytest.mark.slow), pytest.param(8, 600, marks=pytest.mark.slow)])
def test_nb_parameter_cis_cover_the_truth_at_the_nominal_rate(cap, n_reps):
    """cap 50: no censoring (statsmodels fit); cap 8: ~35% censored (censored likelihood)."""
    hits = np.zeros((n_reps, 2))
    for rep in range(n_reps):
        facts = _one_variant(300, seed=1000 + rep, cap=cap)
        fit = fit_iterations(facts, families=["shifted_nb2"], censored=facts["censored"])
        hits[rep] = [_covers(fit, "shifted_nb2", "count_mean", TRUE_MEAN),
                     _covers(fit, "shifted_nb2", "alpha", TRUE_ALPHA)]
    coverage = hits.mean(axis=0)
    sd = np.sqrt(0.95 * 0.05 / n_reps)
    assert np.all(np.abs(coverage - 0.95) < 3.5 * sd), coverage


def test_censoring_removes_the_bias_of_a_naive_fit():
    facts = _one_variant(2000, seed=5, cap=8)
    assert facts["censored"].mean() > 0.25
    naive = fit_iterations(facts, families=["shifted_nb2", "shifted_poisson"])
    censored = fit_iterations(facts, families=["shifted_nb2", "shifted_poisson"],
                              censored=facts["censored"])
    by_cap = fit_iterations(facts, families=["shifted_nb2"], step_cap=8)
    assert not _covers(naive, "shifted_nb2", "count_mean", TRUE_MEAN)
    naive_mean = naive.params.query("family == 'shifted_nb2' and term == 'count_mean'")["estimate"].item()
    assert naive_mean < 0.8 * TRUE_MEAN
    assert _covers(censored, "shifted_nb2", "count_mean", TRUE_MEAN)
    assert _covers(censored, "shifted_nb2", "alpha", TRUE_ALPHA)
    est = by_cap.params.query("term == 'count_mean'")["estimate"].item()
    assert abs(est - TRUE_MEAN) < 0.1 * TRUE_MEAN  # step-cap rule: close, slightly high
    assert censored.n_censored == int(facts["censored"].sum())


def test_covariates_recover_the_ratio_of_means():
    a = _one_variant(1200, seed=21).assign(variant="a")
    b = _one_variant(1200, seed=22, loop=LoopLaw(3.0, 0.15)).assign(variant="b")
    facts = pd.concat([a, b], ignore_index=True)
    fit = fit_iterations(facts, families=["shifted_nb2", "shifted_poisson"], covariates=["variant"])
    truth = np.log((3 * 0.85 / 0.15) / TRUE_MEAN)
    assert fit.best == "shifted_nb2"
    assert _covers(fit, "shifted_nb2", "variant[T.b]", truth)


@pytest.mark.parametrize("name", [n for n in FAMILIES if not n.startswith("hurdle")])
def test_own_likelihood_agrees_with_statsmodels_when_nothing_is_censored(name, rng):
    y = 1 + rng.negative_binomial(2, 0.25, 400).astype(float)
    X = np.column_stack([np.ones(400), rng.integers(0, 2, 400)])
    from aiscale.analysis.loops.count_families import _fit_censored

    reference = fit_family(name, y, X, np.zeros(400, dtype=bool))
    own = _fit_censored(FAMILIES[name], y, X, np.zeros(400, dtype=bool), reference.params + 0.05)
    assert reference.method == "statsmodels"
    assert own.loglik == pytest.approx(reference.loglik, abs=1e-3)
    assert np.allclose(own.params, reference.params, atol=1e-3)


def test_hurdle_finds_the_share_of_zeros(rng):
    y = np.where(rng.random(3000) < 0.3, 0, 1 + rng.negative_binomial(3, 0.3, 3000))
    fit = fit_iterations(pd.DataFrame({"iterations": y}), families=["hurdle_nb2", "nb2"])
    assert fit.best == "hurdle_nb2"
    assert _covers(fit, "hurdle_nb2", "zero:const", np.log(0.3 / 0.7))


def test_result_object_and_errors():
    facts = _one_variant(200, seed=3)
    fit = fit_iterations(facts, families=["shifted_nb2", "poisson"])
    assert repr(fit).startswith("<IterationFit: iterations of 200 traces") and "\n" not in repr(fit)
    assert "<table" in fit._repr_html_()
    assert set(fit.frame().columns) == {"family", "k", "observed", "expected"}
    assert fit.frame().query("family == 'shifted_nb2' and k >= 0")["expected"].sum() == \
        pytest.approx(200, rel=0.02)
    assert fit.plot().get_title() == "Rootogram: shifted_nb2"
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.best = "x"
    with pytest.raises(ValueError, match=r"`families` must be one of .*'nb2'.*'negbin' was passed"):
        fit_iterations(facts, families=["negbin"])
    with pytest.raises(ValueError, match=r"lacks columns \['iteratons'\].*Did you mean 'iterations'"):
        fit_iterations(facts, column="iteratons")
    zt = fit_iterations(facts, families=["zt_poisson", "hurdle_nb2", "nb2"])
    assert dict(zt.skipped)["hurdle_nb2"].startswith("hurdle families need both zeros")


# -- hazard -------------------------------------------------------------------------------------
def test_hazard_and_survival_cover_the_true_law():
    facts = _one_variant(3000, seed=8, cap=30)
    haz = iteration_hazard(facts, censored=facts["censored"])
    table = haz.frame().query("at_risk >= 50")
    k = table["k"].to_numpy()
    true_h = STRONG.loop.hazard(k)
    inside = (table["hazard_finish_low"] <= true_h) & (true_h <= table["hazard_finish_high"])
    assert inside.mean() >= 0.85, inside.mean()
    true_s = STRONG.loop.survival(k + 1)  # P(T > k)
    inside_s = (table["survival_low"] <= true_s) & (true_s <= table["survival_high"])
    assert inside_s.mean() >= 0.85
    assert table["censored"].sum() == 0 and haz.frame()["censored"].sum() == facts["censored"].sum()


def test_success_after_k_matches_the_truth():
    """Success is Bernoulli(p_task) for any natural length: P(success | T > k) is flat."""
    facts = _one_variant(3000, seed=9, cap=30)
    haz = iteration_hazard(facts, censored=facts["censored"])
    row = haz.frame().query("k == 5").iloc[0]
    # among traces still running after 5, the censored ones (T > 30) always fail
    after = facts["iterations"] > 5
    truth = (facts.loc[after, "task_success_prob"] * ~facts.loc[after, "censored"]).mean()
    assert row["p_success_after_low"] <= truth <= row["p_success_after_high"]


def test_hazard_glm_recovers_a_hazard_ratio():
    a = _one_variant(2500, seed=31, loop=LoopLaw(1.0, 0.12, "geometric"), cap=200).assign(variant="a")
    b = _one_variant(2500, seed=32, loop=LoopLaw(1.0, 0.24, "geometric"), cap=200).assign(variant="b")
    facts = pd.concat([a, b], ignore_index=True)
    haz = iteration_hazard(facts, covariates=["variant"], by="variant")
    coef = haz.summary().set_index("term")
    truth = np.log(np.log(1 - 0.24) / np.log(1 - 0.12))  # cloglog: log hazard ratio
    assert coef.loc["variant[T.b]", "ci_low"] <= truth <= coef.loc["variant[T.b]", "ci_high"]
    assert coef.loc["log_k", "ci_low"] <= 0 <= coef.loc["log_k", "ci_high"]  # constant hazard
    assert haz.frame()["group"].nunique() == 2
    assert haz.plot(y="hazard") is not None and "2 group(s)" in repr(haz)


# -- real data ----------------------------------------------------------------------------------
def _tau_facts() -> pd.DataFrame:
    runs = json.loads((REAL / "tau-bench-historical" / "gpt-4o-airline.json").read_text())
    return pd.DataFrame({
        "task_id": [r["task_id"] for r in runs],
        "iterations": [sum(m.get("role") == "assistant" for m in r["traj"]) for r in runs],
        "success": [r["reward"] == 1 for r in runs]})


def test_tau_bench_failed_runs_are_longer(tmp_path):
    facts = _tau_facts()
    result = iterations_by_outcome(facts, n_boot=2000)
    table = result.table.set_index("outcome")
    assert table.loc["failed", "n"] + table.loc["successful", "n"] == 200
    assert result.p_value < 0.05
    assert result.diff_low > 0
    assert result.difference == pytest.approx(
        facts.loc[~facts.success, "iterations"].mean() - facts.loc[facts.success, "iterations"].mean())
    # the same from the loader's facts (iterations = LLM calls of the agent)
    loaded = aiscale.load([REAL / "tau-bench-historical"], store=tmp_path / "s").facts()
    assert iterations_by_outcome(loaded, n_boot=500).diff_low > 0
    assert result.plot() is not None


def test_swebench_leaderboard_api_calls_per_model():
    runs = bash_only_runs()
    assert len(runs) == 17
    for run in runs:
        calls = pd.DataFrame(run["per_instance_details"]).T
        facts = pd.DataFrame({"iterations": calls["api_calls"].astype(int)})
        fit = fit_iterations(facts.query("iterations >= 1"),
                             families=["shifted_nb2", "shifted_poisson", "shifted_geometric"])
        assert fit.best in ("shifted_nb2", "shifted_geometric"), (run["name"], fit.best)
        mean = fit.params.query("family == 'shifted_nb2' and term == 'mean_iterations'")["estimate"].item()
        published = run["instance_calls"]
        assert mean == pytest.approx(facts.query("iterations >= 1")["iterations"].mean(), rel=1e-4)
        if (facts["iterations"] >= 1).all():  # the NB2 MLE mean is the sample mean: published
            assert mean == pytest.approx(published, rel=1e-4), run["name"]


def test_traces_that_all_take_the_same_number_of_iterations_are_refused_not_fitted_forever():
    facts = pd.DataFrame({"iterations": [1] * 50, "success": [True] * 50})
    with pytest.raises(ValueError, match="All 50 traces take exactly 1 iterations: that is a point mass"):
        aiscale.fit_iterations(facts)


def test_underdispersed_counts_skip_nb1_with_the_reason_instead_of_hanging():
    facts = pd.DataFrame({"iterations": [3] * 30 + [4] * 20, "success": [True] * 50})
    fit = aiscale.fit_iterations(facts)
    reasons = dict(fit.skipped)
    assert "no overdispersion" in reasons["nb1"]
    assert fit.best in FAMILIES
