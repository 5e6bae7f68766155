"""Frontier, cascades, retries and latency against published leaderboards and simulated truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import special, stats

from aiscale.analysis.tradeoffs import frontier as tradeoff
from aiscale.analysis.tradeoffs.cascade import cascade, retry
from aiscale.analysis.tradeoffs.latency import busy_seconds, latency

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SWE = REAL / "swebench-bash-only-leaderboard" / "leaderboards.json"
BROKEN_LABELS = "claude-3-7-sonnet"  # SOURCE.md: per-instance `resolved` labels are broken


def _non_dominated(names, cost, success) -> set:
    """Reference Pareto set, written independently of the library (plain loops)."""
    out = set()
    for i, n in enumerate(names):
        if not any(cost[j] <= cost[i] and success[j] >= success[i]
                   and (cost[j] < cost[i] or success[j] > success[i]) for j in range(len(names))):
            out.add(n)
    return out


@pytest.fixture(scope="module")
def swebench():
    runs = [r for lb in json.loads(SWE.read_text())["leaderboards"] if lb["name"] == "bash-only"
            for r in lb["results"] if r.get("per_instance_details")]
    runs = [r for r in runs if BROKEN_LABELS not in r["folder"]]
    rows = [{"variant": r["folder"], "task_id": k, "success": v["resolved"],
             "reported_cost_usd": v["cost"]}
            for r in runs for k, v in r["per_instance_details"].items()]
    facts = pd.DataFrame(rows).astype({"success": "boolean"})
    return facts, runs


def test_swebench_frontier_matches_published_non_dominated_runs(swebench):
    facts, runs = swebench
    assert len(runs) == 16 and len(facts) == 16 * 500
    res = tradeoff.frontier(facts, n_boot=500, seed=1)
    published = _non_dominated([r["folder"] for r in runs], [r["instance_cost"] for r in runs],
                               [r["resolved"] for r in runs])
    assert set(res.members()) == published
    assert len(published) == 3
    t = res.summary().set_index("variant")
    for r in runs:  # published figures sit inside the intervals computed from the instances
        row = t.loc[r["folder"]]
        assert row["success_lower"] <= r["resolved"] / 100 <= row["success_upper"]
        assert row["mean_cost_lower"] <= r["instance_cost"] <= row["mean_cost_upper"]
        assert row["mean_cost"] == pytest.approx(r["instance_cost"], rel=1e-9)
    assert (t.loc[list(published), "p_frontier"] > 0.9).all()
    assert (t["cost_source"] == "reported_cost_usd").all()
    assert res.unpriced == []
    ax = res.plot()
    assert ax.get_xscale() == "log"


def _humaneval_runs(name: str) -> pd.DataFrame:
    d = pd.read_csv(REAL / "agent-eval-humaneval" / name)
    return pd.DataFrame({"variant": d["strategy"] + " | " + d["model"], "run": d["run"],
                         "accuracy": d["accuracy"], "cost": d["total_cost"],
                         "latency": d["average_task_time"], "strategy": d["strategy"]})


def test_humaneval_means_and_simple_baselines_dominate():
    runs = _humaneval_runs("plot_data_0409.csv")
    assert runs.groupby("variant").size().eq(5).all()
    res = tradeoff.frontier_from_runs(runs, latency="latency", n_boot=2000, seed=0)
    t = res.summary().set_index("variant")
    warming = t.loc["simple_incr_temp | gpt-4-turbo-0409-5step"]
    lats = t.loc["lats | gpt-4-turbo-2024-04-09"]
    zero_shot = t.loc["simple | gpt-3.5-turbo-0125"]
    escalation = t.loc["simple_boosting | l3_8b-gpt35-l3_70b-gpt4-0409"]
    for row, acc, cost in ((warming, 0.932, 2.45), (lats, 0.880, 134.50),
                           (zero_shot, 0.739, 0.055), (escalation, 0.850, 0.273)):
        assert round(row["success"], 3) == acc
        assert round(row["mean_cost"], 3 if cost < 1 else 2) == cost
        assert row["success_lower"] < acc < row["success_upper"]
        assert row["mean_cost_lower"] < cost < row["mean_cost_upper"]
    strategy = runs.groupby("variant")["strategy"].first()
    simple = t[strategy.reindex(t.index).str.startswith("simple")]
    complex_ = t[~strategy.reindex(t.index).str.startswith("simple")]
    # every complex agent has a simple baseline that is significantly cheaper (cost intervals
    # apart) and whose accuracy is not significantly lower (its upper bound reaches the agent's)
    for name, agent in complex_.iterrows():
        cheaper = simple[simple["mean_cost_upper"] < agent["mean_cost_lower"]]
        assert (cheaper["success_upper"] >= agent["success"]).any(), name
    # LATS and Reflexion are off the frontier in essentially every resample
    off = complex_[strategy.reindex(complex_.index).isin(["lats", "reflexion"])]
    assert (off["p_frontier"] < 0.05).all() and not off["on_frontier"].any()
    for base in (warming, zero_shot, escalation):
        assert base["on_frontier"]
    assert res.members(three_d=True)


def test_aider_polyglot_frontier_and_unpriced():
    runs = pd.DataFrame(yaml.safe_load((REAL / "aider-leaderboards" /
                                        "polyglot_leaderboard.yml").read_text()))
    runs["pass_rate"] = runs["pass_num_2"] / 225
    # published pass_rate_2 = 100 * pass_num_2 / 225 (SOURCE.md), to rounding, for all but two
    # runs that ran 224 cases (o1 high: 61.7 truncated; R1 0528: 71.4 = 160/224)
    assert ((runs["pass_rate"] * 100 - runs["pass_rate_2"]).abs() <= 0.051).sum() == 67
    res = tradeoff.frontier_from_runs(runs, variant="dirname", success="pass_rate",
                                      cost="total_cost", latency="seconds_per_case",
                                      n_tasks=225, n_boot=1000)
    cost = pd.to_numeric(runs["total_cost"], errors="coerce")
    no_cost = set(runs.loc[~(cost > 0), "dirname"])
    assert len(no_cost) == 18
    assert set(res.unpriced) == no_cost
    t = res.summary().set_index("dirname")
    assert t.loc[list(no_cost), "mean_cost"].isna().all()
    assert t.loc[list(no_cost), "on_frontier"].isna().all()
    priced = runs[cost > 0]
    expected = _non_dominated(priced["dirname"].tolist(), priced["total_cost"].tolist(),
                              priced["pass_rate_2"].tolist())
    assert set(res.members()) == expected
    gpt5 = t.loc[runs.loc[runs["model"] == "gpt-5 (high)", "dirname"].iloc[0]]
    assert gpt5["success"] == pytest.approx(198 / 225)
    lo, hi = stats.binomtest(198, 225).proportion_ci(method="wilson")
    assert (gpt5["success_lower"], gpt5["success_upper"]) == pytest.approx((lo, hi), abs=1e-9)
    assert gpt5.name in expected


def _two_variants(rng, n_tasks, p, cost, lat):
    rows = []
    for v in p:
        rows.append(pd.DataFrame({
            "task_id": np.arange(n_tasks).astype(str), "variant": v,
            "success": rng.random(n_tasks) < p[v],
            "cost_usd": rng.gamma(2.0, cost[v] / 2, n_tasks),
            "latency_s": rng.exponential(lat[v], n_tasks),
            "score": rng.random(n_tasks)}))
    return pd.concat(rows, ignore_index=True)


def test_cascade_matches_analytic_values_with_coverage(rng):
    p = {"A": 0.55, "B": 0.8, "C": 0.9}
    cost = {"A": 0.01, "B": 0.1, "C": 1.0}
    lat = {"A": 2.0, "B": 5.0, "C": 20.0}
    truth = {"success": 1 - 0.45 * 0.2 * 0.1,
             "mean_cost": 0.01 + 0.45 * 0.1 + 0.45 * 0.2 * 1.0,
             "mean_latency": 2.0 + 0.45 * 5.0 + 0.45 * 0.2 * 20.0}
    hits = {k: 0 for k in truth}
    reps = 100
    for _ in range(reps):
        facts = _two_variants(rng, 300, p, cost, lat)
        s = cascade(facts, order=["A", "B", "C"]).summary().iloc[0]
        for k, v in truth.items():
            hits[k] += s[f"{k}_lower"] <= v <= s[f"{k}_upper"]
    for k, h in hits.items():  # 95% intervals: coverage not significantly below nominal
        assert stats.binomtest(h, reps, 0.95, alternative="less").pvalue > 0.01, (k, h)


def test_cascade_on_score_threshold_and_frontier(rng):
    p, cost, lat = {"A": 0.6, "B": 0.9}, {"A": 0.02, "B": 0.2}, {"A": 1.0, "B": 1.0}
    facts = _two_variants(rng, 4000, p, cost, lat)
    c = cascade(facts, order=["A", "B"], escalate_on="score", escalate_below=0.3)
    s = c.summary().iloc[0]  # escalation is independent of success here: P(escalate) = 0.3
    assert s["success_lower"] <= 0.7 * 0.6 + 0.3 * 0.9 <= s["success_upper"]
    assert s["mean_cost_lower"] <= 0.02 + 0.3 * 0.2 <= s["mean_cost_upper"]
    assert s["mean_calls"] == pytest.approx(1.3, abs=0.03)
    res = tradeoff.frontier(facts, cascades=[["A", "B"]], n_boot=200)
    t = res.summary().set_index("variant")
    assert "A → B" in t.index
    assert t.loc["A → B", "success"] == pytest.approx(0.6 + 0.4 * 0.9, abs=0.03)
    c.plot()
    assert "cascade" in repr(c)


def test_retry_matches_analytic_pass_at_r(rng):
    a, b, n_tasks, trials, r, cost = 2.0, 1.5, 600, 5, 3, 0.05
    p = rng.beta(a, b, n_tasks)
    facts = pd.DataFrame({"task_id": np.repeat(np.arange(n_tasks), trials), "variant": "v",
                          "trial": np.tile(np.arange(trials), n_tasks),
                          "success": rng.random(n_tasks * trials) < np.repeat(p, trials),
                          "cost_usd": cost})

    def fail_moment(i):  # E[(1 - p)^i] for p ~ Beta(a, b)
        return np.exp(special.betaln(a, b + i) - special.betaln(a, b))

    s = retry(facts, variant="v", r=r).summary().iloc[0]
    assert s["success_lower"] <= 1 - fail_moment(r) <= s["success_upper"]
    attempts = sum(fail_moment(i) for i in range(r))
    assert s["mean_cost_lower"] <= cost * attempts <= s["mean_cost_upper"]
    one = retry(facts, variant="v", r=1).summary().iloc[0]
    assert one["success"] == pytest.approx(facts["success"].mean())
    with pytest.raises(ValueError, match="`r` must be a positive integer"):
        retry(facts, variant="v", r=0)


def test_latency_quantiles_cover_truth(rng):
    reps, n, hits = 60, 400, 0
    true_p95 = float(np.exp(1.0 + 0.8 * stats.norm.ppf(0.95)))
    for i in range(reps):
        lat = rng.lognormal(1.0, 0.8, n)
        f = pd.DataFrame({"variant": "v", "latency_s": lat, "llm_latency_s": 0.6 * lat,
                          "tool_latency_s": 0.3 * lat})
        row = latency(f, n_boot=300, seed=i).summary().iloc[0]
        hits += row["p95_lower"] <= true_p95 <= row["p95_upper"]
    assert row["llm_share"] == pytest.approx(0.6) and row["tool_share"] == pytest.approx(0.3)
    assert stats.binomtest(hits, reps, 0.95, alternative="less").pvalue > 0.01
    res = latency(f.assign(ttft_s=0.1 * f["latency_s"]), n_boot=100)
    assert res.summary().loc[0, "ttft_p50"] == pytest.approx(0.1 * np.median(lat), rel=0.05)
    res.plot()


def test_unpriced_variant_never_at_zero_and_cost_fallback():
    f = pd.DataFrame({"task_id": list("abcabc"), "variant": list("xxxyyy"),
                      "success": [1, 0, 1, 1, 1, 1],
                      "cost_usd": [0.1, None, 0.1, None, None, None],
                      "reported_cost_usd": [None, 0.3, None, None, None, None]})
    res = tradeoff.frontier(f, n_boot=50)
    t = res.summary().set_index("variant")
    assert res.unpriced == ["y"] and np.isnan(t.loc["y", "mean_cost"])
    assert res.members() == ["x"]
    assert t.loc["x", "mean_cost"] == pytest.approx(0.5 / 3)
    assert t.loc["x", "cost_source"] == "cost_usd + reported_cost_usd"
    assert "1 unpriced" in repr(res) and "<table" in res._repr_html_()
    with pytest.raises(ValueError, match="available columns"):
        tradeoff.frontier(f, by="modle")
    with pytest.raises(ValueError, match="`zero_cost` must be one of"):
        tradeoff.frontier_from_runs(f, zero_cost="zero")


def _non_dominated_3d(names, cost, success, lat) -> set:
    out = set()
    for i, n in enumerate(names):
        if not any(cost[j] <= cost[i] and success[j] >= success[i] and lat[j] <= lat[i]
                   and (cost[j] < cost[i] or success[j] > success[i] or lat[j] < lat[i])
                   for j in range(len(names))):
            out.add(n)
    return out


def test_aider_three_d_frontier_with_seconds_per_case():
    runs = pd.DataFrame(yaml.safe_load((REAL / "aider-leaderboards" /
                                        "polyglot_leaderboard.yml").read_text()))
    runs["pass_rate"] = runs["pass_num_2"] / 225
    res = tradeoff.frontier_from_runs(runs, variant="dirname", success="pass_rate",
                                      cost="total_cost", latency="seconds_per_case", n_tasks=225)
    priced = runs[pd.to_numeric(runs["total_cost"], errors="coerce") > 0]
    expected = _non_dominated_3d(priced["dirname"].tolist(), priced["total_cost"].tolist(),
                                 priced["pass_num_2"].tolist(), priced["seconds_per_case"].tolist())
    assert set(res.members(three_d=True)) == expected
    assert set(res.members()) < expected  # adding an objective can only add members


def test_weighted_bootstrap_quantiles_match_brute_force(rng):
    from aiscale.analysis._stats import weighted_quantiles

    for n, n_tasks in ((5000, 5000), (3000, 60), (40, 8)):  # one trace per task .. clustered
        x, codes = rng.lognormal(0, 1, n), rng.integers(0, n_tasks, n)
        w = np.stack([np.bincount(rng.integers(0, n_tasks, n_tasks), minlength=n_tasks)
                      for _ in range(50)])
        got = weighted_quantiles(x, codes, w, [0.5, 0.95, 0.99])
        ref = [[np.quantile(np.repeat(x, w[b][codes]), q, method="inverted_cdf")
                for q in (0.5, 0.95, 0.99)] for b in range(50)]
        np.testing.assert_array_equal(got, np.array(ref))


def test_busy_time_counts_parallel_calls_once():
    at = pd.Timestamp("2025-01-01", tz="UTC")
    sec = pd.Timedelta(seconds=1)
    # trace a: a main loop call [0, 10] and two sub-agent calls [2, 8], [5, 12] in parallel, then
    # [20, 25]; trace b: one call with no end (left out) and one [0, 3]
    spans = pd.DataFrame({
        "trace_id": ["a", "a", "a", "a", "a", "b", "b"],
        "kind": ["llm", "llm", "llm", "llm", "tool", "llm", "llm"],
        "start_time": [at, at + 2 * sec, at + 5 * sec, at + 20 * sec, at, at, at],
        "end_time": [at + 10 * sec, at + 8 * sec, at + 12 * sec, at + 25 * sec, at + 30 * sec, pd.NaT,
                     at + 3 * sec]})
    assert busy_seconds(spans).to_dict() == {"a": 12.0 + 5.0, "b": 3.0}
    assert busy_seconds(spans, kind="tool").to_dict() == {"a": 30.0}
    facts = pd.DataFrame({"trace_id": ["a", "b"], "variant": "v", "latency_s": [30.0, 4.0],
                          "llm_latency_s": [10 + 6 + 7 + 5.0, 3.0], "tool_latency_s": [30.0, None]})
    summed = latency(facts, n_boot=0).summary().iloc[0]
    union = latency(facts, n_boot=0, spans=spans).summary().iloc[0]
    assert summed["llm_share"] == pytest.approx((28 + 3) / 34)
    assert union["llm_share"] == pytest.approx((17 + 3) / 34)
    assert union["tool_share"] == pytest.approx(30 / 30)  # b's tool time stays unknown


def test_busy_time_is_capped_at_the_trace_latency():
    at = pd.Timestamp("2025-01-01", tz="UTC")
    spans = pd.DataFrame({"trace_id": ["a"], "kind": ["llm"], "start_time": [at],
                          "end_time": [at + pd.Timedelta(seconds=9)]})
    facts = pd.DataFrame({"trace_id": ["a"], "variant": "v", "latency_s": [6.0], "llm_latency_s": [9.0]})
    assert latency(facts, n_boot=0, spans=spans).summary().loc[0, "llm_share"] == 1.0
