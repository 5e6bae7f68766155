"""Latency intervals for many tasks (closed forms, no resampling) against simulated truth.

Each task has its own speed: log latency = task effect N(0, 0.6²) + trial noise N(0, 0.8²),
so latency is lognormal(0, 1) over tasks and trials and the true p-quantile is exp(Φ⁻¹(p));
trials of a task are correlated, which an interval that ignored tasks would miss. The LLM
and tool times are the latency times Beta(7, 3) and Beta(1, 9) shares drawn per trace, so the
true time shares are 0.7 and 0.1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aiscale.analysis._stats import CLOSED_FORM_TASKS, woodruff_quantiles
from aiscale.analysis.tradeoffs.latency import latency

QS = (0.5, 0.95, 0.99)
TRUTH = {"p50": 1.0, "p95": float(np.exp(stats.norm.ppf(0.95))),
         "p99": float(np.exp(stats.norm.ppf(0.99))), "llm_share": 0.7, "tool_share": 0.1}


def _tasks(rng, n_tasks, trials):
    """Traces of ``n_tasks`` tasks; ``trials`` per task, or 1 + Poisson(2) when None (ragged)."""
    size = np.full(n_tasks, trials) if trials else 1 + rng.poisson(2.0, n_tasks)
    task = np.repeat(np.arange(n_tasks), size)
    lat = np.exp(rng.normal(0, 0.6, n_tasks)[task] + rng.normal(0, 0.8, len(task)))
    return pd.DataFrame({"task_id": task, "variant": "v", "latency_s": lat,
                         "llm_latency_s": lat * rng.beta(7, 3, len(task)),
                         "tool_latency_s": lat * rng.beta(1, 9, len(task))})


def _coverage(reps, n_tasks, trials, seed) -> pd.Series:
    rng = np.random.default_rng(seed)
    hits = []
    for _ in range(reps):
        row = latency(_tasks(rng, n_tasks, trials), quantiles=QS).summary().iloc[0]
        hits.append({k: row[f"{k}_lower"] <= v <= row[f"{k}_upper"] for k, v in TRUTH.items()})
    return pd.DataFrame(hits).mean()


def test_closed_form_intervals_cover_truth():
    reps = 150
    cover = _coverage(reps, CLOSED_FORM_TASKS, 3, seed=1)
    for rate in cover:
        assert stats.binomtest(round(rate * reps), reps, 0.95).pvalue > 0.01, cover.to_dict()


def test_closed_form_point_estimates_are_the_inverse_ecdf():
    rng = np.random.default_rng(3)
    values = rng.lognormal(0, 1, 9_999)
    est, lo, hi = woodruff_quantiles(values, np.arange(len(values)) // 3, QS)
    assert est.tolist() == [np.quantile(values, q, method="inverted_cdf") for q in QS]
    assert np.all(lo < est) and np.all(est < hi)
    # one trace per task: the clustered SE is the binomial one, sqrt(p (1 - p) / n)
    _, lo, hi = woodruff_quantiles(values, np.arange(len(values)), [0.5])
    se = np.sqrt(0.25 / len(values))
    t = stats.t.ppf(0.975, len(values) - 1)
    ranks = np.sort(values)
    assert (lo[0], hi[0]) == (ranks[int(np.ceil((0.5 - t * se) * len(values))) - 1],
                              ranks[int(np.ceil((0.5 + t * se) * len(values))) - 1])


def test_trials_of_a_task_widen_the_interval():
    """The same values as one task each, or grouped into tasks that share an effect."""
    f = _tasks(np.random.default_rng(4), 4_000, 5)
    clustered = latency(f).summary().iloc[0]
    alone = latency(f.assign(task_id=np.arange(len(f)))).summary().iloc[0]
    width = lambda r: r["p50_upper"] - r["p50_lower"]  # noqa: E731
    assert width(clustered) > 1.3 * width(alone)


def test_few_tasks_keep_the_bootstrap():
    """Below the threshold the task bootstrap runs: its draws depend on the seed."""
    f = _tasks(np.random.default_rng(5), 200, 3)
    a, b = (latency(f, seed=s).summary().iloc[0] for s in (0, 1))
    assert a["p95"] == b["p95"] and a["p95_lower"] != b["p95_lower"]
    big = _tasks(np.random.default_rng(5), CLOSED_FORM_TASKS, 3)
    a, b = (latency(big, seed=s).summary().iloc[0] for s in (0, 1))
    assert a["p95_lower"] == b["p95_lower"]


@pytest.mark.slow
@pytest.mark.parametrize(("n_tasks", "trials"), [(CLOSED_FORM_TASKS, 3), (CLOSED_FORM_TASKS, None),
                                                 (20_000, 4)])
def test_closed_form_coverage_large(n_tasks, trials):
    cover = _coverage(1000, n_tasks, trials, seed=2)
    print(f"{n_tasks} tasks x {trials or 'ragged'} trials, 95% coverage: {cover.round(3).to_dict()}")
    assert cover.between(0.935, 0.965).all(), cover.to_dict()
