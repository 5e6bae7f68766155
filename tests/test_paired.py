"""Paired comparison: McNemar and paired t against SciPy/statsmodels, the sentence, coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from aiscale.analysis.reliability.paired import compare


def pair_frame(a_wins, b_wins, *, trials=1, **extra) -> pd.DataFrame:
    n = len(a_wins) // trials
    tasks = np.repeat([f"t{i}" for i in range(n)], trials)
    f = pd.DataFrame({"task_id": np.concatenate([tasks, tasks]),
                      "variant": ["A"] * len(a_wins) + ["B"] * len(b_wins),
                      "success": np.concatenate([a_wins, b_wins]).astype(bool)})
    return f.assign(**extra)


def test_single_trial_uses_exact_mcnemar():
    a = np.array([1] * 30 + [0] * 10 + [1] * 3 + [0] * 7)
    b = np.array([1] * 30 + [1] * 10 + [0] * 3 + [0] * 7)
    res = compare(pair_frame(a, b), a="A", b="B")
    s = res.summary().iloc[0]
    table = [[30, 3], [10, 7]]  # rows a pass/fail, columns b pass/fail
    assert s["test"] == "mcnemar"
    assert s["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue)
    assert s["difference"] == pytest.approx(7 / 50)


def test_several_trials_use_paired_t_on_task_means(rng):
    a = rng.random(60) < 0.5
    b = rng.random(60) < 0.6
    s = compare(pair_frame(a, b, trials=3), a="A", b="B").summary().iloc[0]
    ma, mb = a.reshape(20, 3).mean(1), b.reshape(20, 3).mean(1)
    ref = stats.ttest_rel(mb, ma)
    ci = ref.confidence_interval(0.95)
    assert s["test"] == "paired t" and s["n_tasks"] == 20
    assert s["p_value"] == pytest.approx(ref.pvalue)
    assert (s["lower"], s["upper"]) == pytest.approx((ci.low, ci.high))


def test_sentence_with_cost_and_latency():
    # 50 tasks: b passes 3 more of them (6 pp); a costs $0.01 per run, b $0.023; b 1.5 s slower
    a = np.array([1] * 20 + [0] * 30)
    b = np.array([1] * 23 + [0] * 27)
    f = pair_frame(a, b, cost_usd=[0.01] * 50 + [0.023] * 50, latency_s=[2.0] * 50 + [3.5] * 50)
    res = compare(f, a="A", b="B")
    lo, hi = res.summary().loc[0, ["lower", "upper"]]
    ci = f"({lo * 100:.0f} to {hi * 100:.0f})".replace("-", "−")
    assert res.sentence == (f"'B' is 6 pp {ci} better than 'A' on 50 shared tasks and costs "
                            "2.3× more (cost_usd); latency +1.5 s.")
    assert res.summary().loc[0, "cost_ratio"] == pytest.approx(2.3)


def test_cost_falls_back_to_reported_cost_and_says_so():
    a, b = np.array([1, 0, 1, 1]), np.array([0, 0, 1, 0])
    f = pair_frame(a, b, cost_usd=np.nan, reported_cost_usd=[2.0] * 4 + [1.0] * 4)
    res = compare(f, a="A", b="B")
    assert "worse than 'A'" in res.sentence
    assert "costs 0.5× as much (reported_cost_usd; cost_usd is missing)" in res.sentence
    assert res.summary().loc[0, "cost_column"] == "reported_cost_usd"
    assert "cost unknown" in compare(f.drop(columns="reported_cost_usd"), a="A", b="B").sentence


def test_unshared_tasks_and_unknown_outcomes_are_reported():
    f = pair_frame(np.array([1, 0, 1]), np.array([1, 1, 1]))
    f = pd.concat([f, pd.DataFrame({"task_id": ["only-a"], "variant": ["A"], "success": [True]})])
    f["success"] = f["success"].astype("boolean")
    f.loc[(f["variant"] == "B") & (f["task_id"] == "t2"), "success"] = pd.NA
    res = compare(f, a="A", b="B")
    assert res.summary().loc[0, "n_tasks"] == 2
    assert any("2 task(s) ran by only one variant" in n for n in res.notes)
    assert any("1 trial(s) with unknown success" in n for n in res.notes)
    assert res.summary().loc[0, ["n_unknown_a", "n_unknown_b"]].tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"`b` must be one of \['A', 'B'\], but 'C'"):
        compare(f, a="A", b="C")


def test_continuous_scores_compare_in_score_units(rng):
    sa = rng.random(30)
    sb = sa + 0.1 + rng.normal(0, 0.05, 30)
    f = pd.DataFrame({"task_id": [f"t{i}" for i in range(30)] * 2, "variant": ["A"] * 30 + ["B"] * 30,
                      "score": np.concatenate([sa, sb])})
    res = compare(f, a="A", b="B", column="score")
    ci = stats.ttest_rel(sb, sa).confidence_interval(0.95)
    assert (res.stats["lower"], res.stats["upper"]) == pytest.approx((ci.low, ci.high))
    assert res.sentence.startswith("'B' is 0.1") and " pp" not in res.sentence


def test_paired_interval_coverage(rng):
    # 500 paired evals: 40 fresh tasks with logit-normal difficulty, b shifted by +0.4 logit,
    # 3 trials each. Truth: the population mean of p_b - p_a (Monte Carlo over 2M tasks).
    runs, tasks, trials = 500, 40, 3
    pop = rng.normal(0, 1.2, 2_000_000)
    truth = np.mean(1 / (1 + np.exp(-(pop + 0.4))) - 1 / (1 + np.exp(-pop)))
    z = rng.normal(0, 1.2, (runs, tasks, 1))
    a = rng.random((runs, tasks, trials)) < 1 / (1 + np.exp(-z))
    b = rng.random((runs, tasks, trials)) < 1 / (1 + np.exp(-(z + 0.4)))
    hits = [compare(pair_frame(a[r].ravel(), b[r].ravel(), trials=trials), a="A", b="B")
            .stats for r in range(runs)]
    assert 0.93 <= np.mean([h["lower"] <= truth <= h["upper"] for h in hits]) <= 0.97


def test_display():
    import matplotlib.axes

    res = compare(pair_frame(np.array([1, 0, 1, 0]), np.array([1, 1, 1, 0])), a="A", b="B")
    assert repr(res).startswith("<aiscale.Comparison: 'B' is 25 pp") and "\n" not in repr(res)
    assert isinstance(res.plot(), matplotlib.axes.Axes)
    assert "<table" in res._repr_html_() and len(res.frame()) == 4


def test_compare_without_any_latency_reports_it_unknown():
    facts = pd.DataFrame({"variant": ["a"] * 6 + ["b"] * 6, "task_id": [f"t{i}" for i in range(6)] * 2,
                          "success": [True, False] * 3 + [True] * 6, "latency_s": [None] * 12,
                          "reported_cost_usd": [1.0] * 6 + [2.0] * 6})
    result = compare(facts, a="a", b="b")
    assert result.summary()["cost_ratio"].iloc[0] == 2.0
    assert np.isnan(result.summary()["latency_diff_s"].iloc[0])
