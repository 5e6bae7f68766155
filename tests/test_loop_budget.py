"""Loop-budget curves and cost growth, against the simulator's truth and mini-SWE-agent's run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from loops_sim import STRONG, priced, strong_sim
from scipy import stats

import aiscale
from aiscale.analysis._stats import CLOSED_FORM_TASKS
from aiscale.analysis.loops.cost_growth import cost_growth
from aiscale.analysis.loops.loop_budget import knee, loop_budget
from aiscale.sim.truth import iteration_cost

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def sim():
    return strong_sim(3000, seed=4)


def _inside(low, value, high) -> np.ndarray:
    return (np.asarray(low) <= value) & (value <= np.asarray(high))


def test_loop_budget_matches_the_true_curve(sim):
    curve = loop_budget(sim.truth.traces, spans=priced(sim), n_boot=400)
    truth = sim.truth.loop_budget(STRONG.name)
    t = curve.frame().merge(truth, left_on="cap", right_on="k", suffixes=("", "_true"))
    assert curve.cost_source == "spans" and len(t) == STRONG.cap
    assert _inside(t["success_rate_low"], t["success_rate_true"], t["success_rate_high"]).mean() >= 0.9
    assert _inside(t["mean_cost_low"], t["mean_cost_usd"], t["mean_cost_high"]).mean() >= 0.9
    assert np.abs(t["success_rate"] - t["success_rate_true"]).max() < 0.04
    true_spd = truth["success_rate"] / truth["mean_cost_usd"]
    assert curve.best_cap in set(truth["k"][true_spd >= 0.97 * true_spd.max()])
    assert curve.knee_cap == pytest.approx(knee(truth["k"], truth["success_rate"]), abs=3)


def test_cost_approximations_bracket_the_span_costs(sim):
    """Call cost grows with k: 'linear' over-states the cost of the first k calls, 'context'
    (cost proportional to k) under-states it; the per-call truth lies between."""
    facts = sim.truth.traces
    exact = loop_budget(facts, spans=priced(sim), n_boot=20).frame()["mean_cost"]
    linear = loop_budget(facts, approx="linear", n_boot=20).frame()["mean_cost"]
    context = loop_budget(facts, approx="context", n_boot=20).frame()["mean_cost"]
    caps = slice(4, None)  # the first calls carry cache writes and no cache reads
    assert np.all(context[caps] <= exact[caps] + 1e-9) and np.all(exact[caps] <= linear[caps] + 1e-9)
    assert exact.iloc[-1] == pytest.approx(facts["cost_usd"].mean(), rel=1e-9)
    assert linear.iloc[-1] == pytest.approx(exact.iloc[-1]) == context.iloc[-1]


def test_bootstrap_resamples_tasks_not_traces():
    """Trials of a task share its success probability: task-clustered CIs must be wider."""
    rng = np.random.default_rng(2)
    tasks = np.repeat(np.arange(100), 8)
    p = rng.beta(0.5, 0.5, 100)[tasks]
    facts = pd.DataFrame({"task_id": tasks, "trace_id": np.arange(800), "iterations": 5,
                          "success": rng.random(800) < p, "cost_usd": 1.0})
    wide = loop_budget(facts, n_boot=500).frame().iloc[-1]
    narrow = loop_budget(facts, cluster="trace_id", n_boot=500).frame().iloc[-1]
    assert (wide["success_rate_high"] - wide["success_rate_low"]) > \
        1.8 * (narrow["success_rate_high"] - narrow["success_rate_low"])


def test_cost_growth_matches_the_declared_per_call_cost(sim):
    growth = cost_growth(priced(sim), facts=sim.truth.traces)
    table = growth.frame().query("n >= 100")
    truth = iteration_cost(STRONG, table["k"].to_numpy())
    assert _inside(table["mean_cost_low"], truth, table["mean_cost_high"]).mean() >= 0.85
    # the growth is the least-squares slope of the true per-call cost over the calls made
    full = growth.frame()
    k, n = full["k"].to_numpy(float), full["n"].to_numpy(float)
    slope = np.polyfit(k, iteration_cost(STRONG, k), 1, w=np.sqrt(n))[0]
    row = growth.summary().iloc[0]
    assert row["growth_low"] <= slope <= row["growth_high"]
    assert row["group"] == STRONG.name and "USD per call per iteration" in repr(growth)
    assert growth.plot(y="mean_cost") is not None


def test_result_object_and_errors(sim):
    curve = loop_budget(sim.truth.traces, n_boot=50)
    assert repr(curve).startswith("<LoopBudget: 3000 traces in 750 tasks") and "\n" not in repr(curve)
    assert list(curve.summary()["point"]) == ["knee", "best_successes_per_dollar", "uncapped"]
    assert "<table" in curve._repr_html_()
    assert curve.plot(y="successes_per_dollar").get_xlabel() == "iteration cap k"
    with pytest.raises(ValueError, match=r"`approx` must be one of \['linear', 'context'\]"):
        loop_budget(sim.truth.traces, approx="quadratic")
    with pytest.raises(ValueError, match=r"`y` must be one of"):
        curve.plot(y="cost")


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    store = aiscale.load([REAL / "mini-swe-agent-gemini3-verified"],
                         store=tmp_path_factory.mktemp("mini"))
    return store.facts(), store.spans()


def test_mini_swe_agent_loop_budget_curve(mini):
    facts, spans = mini
    curve = loop_budget(facts, spans=spans, cost="reported_cost_usd", n_boot=500)
    table = curve.frame()
    # published with the data (SOURCE.md): 21 of 30 resolved, instance costs sum to 14.620113
    uncapped = table.iloc[-1]
    assert curve.cost_source == "spans" and curve.n_traces == 30
    assert uncapped["success_rate"] == pytest.approx(21 / 30)
    assert uncapped["mean_cost"] == pytest.approx(14.620113 / 30, rel=1e-6)
    assert table["cap"].max() == facts["iterations"].max()
    assert np.all(np.diff(table["success_rate"]) >= 0) and np.all(np.diff(table["mean_cost"]) >= 0)
    assert (table["success_rate_low"] <= table["success_rate"]).all()
    assert 1 <= curve.knee_cap < table["cap"].max()
    assert curve.plot() is not None


# Mean-cost intervals against a known truth (issue 18, item 6): skewed per-task cost.
_CAPS = np.array([2, 5, 10, 20])


def _skewed_tasks(rng, n_tasks, trials=2):
    """Iterations 1 + NB(2, 0.25); cost = 0.05 x task effect x iterations x lognormal(0, 1) noise."""
    task = np.repeat(np.arange(n_tasks), trials)
    n = 1 + rng.negative_binomial(2, 0.25, len(task))
    cost = 0.05 * rng.lognormal(0, 0.5, n_tasks)[task] * n * rng.lognormal(0, 1.0, len(task))
    return pd.DataFrame({"task_id": task, "iterations": n, "success": rng.random(len(task)) < 0.5,
                         "cost_usd": cost})


def _true_mean_cost():
    """Mean cost cut at each cap (approx='linear': C min(k, n) / n), from 400,000 tasks."""
    big = _skewed_tasks(np.random.default_rng(99), 400_000, trials=1)
    n, c = big["iterations"].to_numpy()[:, None], big["cost_usd"].to_numpy()[:, None]
    return (c * np.minimum(_CAPS, n) / n).mean(axis=0)


def _mean_cost_hits(reps, n_tasks, seed):
    truth, rng = _true_mean_cost(), np.random.default_rng(seed)
    hits = np.zeros((reps, len(_CAPS)), bool)
    for r in range(reps):
        t = loop_budget(_skewed_tasks(rng, n_tasks), caps=20, n_boot=500, seed=r).frame()
        t = t.set_index("cap").loc[_CAPS]
        hits[r] = (t["mean_cost_low"].to_numpy() <= truth) & (truth <= t["mean_cost_high"].to_numpy())
    return hits


def test_mean_cost_interval_covers_a_skewed_truth():
    hits = _mean_cost_hits(200, 20, seed=5)
    # caps of one replication share their data, so judge each cap on its own replications
    for j in range(len(_CAPS)):
        assert stats.binomtest(int(hits[:, j].sum()), len(hits), 0.95).pvalue > 0.01, hits.mean(0)


@pytest.mark.slow
@pytest.mark.parametrize("n_tasks", [20, 50, 200])
def test_mean_cost_interval_coverage_large(n_tasks):
    hits = _mean_cost_hits(1000, n_tasks, seed=6)
    print(f"{n_tasks} tasks: mean-cost 95% coverage at caps {list(_CAPS)}: {hits.mean(0).round(3)}")
    assert np.all((0.93 <= hits.mean(0)) & (hits.mean(0) <= 0.97)), hits.mean(0)


# From CLOSED_FORM_TASKS tasks on, skew-corrected delta-method intervals replace the bootstrap.
def _true_curve() -> dict[str, np.ndarray]:
    """The exact curve of ``_skewed_tasks`` at ``_CAPS``: n = 1 + NB(2, 0.25), success 1/2 apart
    from n, cost cut at k = 0.05 x task effect x noise x min(k, n) (approx='linear')."""
    at_most = stats.nbinom.cdf(np.arange(0, 20), 2, 0.25)  # P(n <= j + 1)
    reach = np.r_[1.0, 1.0 - at_most[:-1]]  # P(n >= j), j = 1..20
    mean_cost = 0.05 * np.exp(0.5**2 / 2 + 0.5) * np.cumsum(reach)[_CAPS - 1]
    success = 0.5 * at_most[_CAPS - 1]
    return {"success_rate": success, "mean_cost": mean_cost, "successes_per_dollar": success / mean_cost}


def _closed_form_hits(reps, n_tasks, seed) -> pd.DataFrame:
    truth, rng = _true_curve(), np.random.default_rng(seed)
    hits = []
    for r in range(reps):
        t = loop_budget(_skewed_tasks(rng, n_tasks), caps=20, seed=r).frame().set_index("cap").loc[_CAPS]
        hits.append({(name, int(k)): t[f"{name}_low"].loc[k] <= v <= t[f"{name}_high"].loc[k]
                     for name, values in truth.items() for k, v in zip(_CAPS, values, strict=True)})
    return pd.DataFrame(hits)


def test_closed_form_intervals_cover_the_true_curve():
    hits = _closed_form_hits(200, CLOSED_FORM_TASKS, seed=7)
    for column in hits:  # each statistic and cap judged on its own replications
        assert stats.binomtest(int(hits[column].sum()), len(hits), 0.95).pvalue > 0.01, hits.mean()


def test_many_tasks_take_the_closed_form_few_keep_the_bootstrap():
    """The closed form draws nothing (no seed dependence) and is close to the bootstrap it
    replaces; below the threshold the bootstrap runs as before."""
    big = _skewed_tasks(np.random.default_rng(8), CLOSED_FORM_TASKS)
    a, b = (loop_budget(big, caps=20, seed=s).frame() for s in (0, 1))
    pd.testing.assert_frame_equal(a, b)
    from aiscale.analysis.loops import loop_budget as module

    saved, module.CLOSED_FORM_TASKS = module.CLOSED_FORM_TASKS, 10**9
    try:
        boot = loop_budget(big, caps=20, n_boot=2000, seed=0).frame()
    finally:
        module.CLOSED_FORM_TASKS = saved
    for name in ("success_rate", "mean_cost", "successes_per_dollar"):
        width = boot[f"{name}_high"] - boot[f"{name}_low"]
        for side in ("low", "high"):
            assert np.allclose(a[f"{name}_{side}"], boot[f"{name}_{side}"], atol=0.1 * width.max(),
                               rtol=0.1), name
    small = _skewed_tasks(np.random.default_rng(8), 200)
    a, b = (loop_budget(small, caps=20, seed=s).frame() for s in (0, 1))
    assert a["mean_cost"].equals(b["mean_cost"]) and not a["mean_cost_low"].equals(b["mean_cost_low"])


@pytest.mark.slow
@pytest.mark.parametrize("n_tasks", [CLOSED_FORM_TASKS, 20_000])
def test_closed_form_coverage_large(n_tasks):
    hits = _closed_form_hits(1000, n_tasks, seed=9)
    print(f"{n_tasks} tasks, 95% coverage (statistic, cap): {hits.mean().round(3).to_dict()}")
    assert hits.mean().between(0.935, 0.965).all(), hits.mean()
