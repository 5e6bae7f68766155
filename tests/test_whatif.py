"""What-if re-pricing: hand computations from genai-prices' listed rates on the real mini-swe-agent
sample, the no-change scenario equal to the actual cost, and each scenario key on hand-built calls."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import aiscale

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
MINI = REAL / "mini-swe-agent-gemini3-verified"

# genai-prices 0.2.3, openai/gpt-5.1: USD per million tokens (input, cached input, output)
GPT51 = {"input": 1.25, "cached": 0.125, "output": 10.0}


@pytest.fixture(scope="module")
def mini_store(tmp_path_factory):
    return aiscale.load([MINI], store=tmp_path_factory.mktemp("mini") / "store")


def _hand_usage() -> list[dict]:
    """Every call's usage read straight from the trajectories (no aiscale code)."""
    rows = []
    for path in sorted((MINI / "trajs").glob("*/*.traj.json")):
        for message in json.loads(path.read_text())["messages"]:
            usage = ((message.get("extra") or {}).get("response") or {}).get("usage")
            if message.get("role") == "assistant" and usage:
                cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
                rows.append({"prompt": usage["prompt_tokens"], "cached": cached,
                             "completion": usage["completion_tokens"]})
    return rows


def test_whatif_on_another_model_equals_the_hand_computation(mini_store):
    usage = _hand_usage()
    assert len(usage) == 1307  # SOURCE.md: api_calls sum to 1,307
    hand = sum(((u["prompt"] - u["cached"]) * GPT51["input"] + u["cached"] * GPT51["cached"]
                + u["completion"] * GPT51["output"]) / 1e6 for u in usage)
    result = aiscale.whatif(mini_store, "gpt-5.1", n_boot=200)
    row = result.summary().set_index("scenario").loc["as gpt-5.1"]
    assert row["unpriced_calls"] == 0
    assert row["total_usd"] == pytest.approx(hand, rel=1e-12)
    assert row["total_lower"] < row["total_usd"] < row["total_upper"]
    assert row["traces"] == 30


def test_no_change_equals_the_actual_cost_to_the_cent(mini_store):
    facts = mini_store.facts()
    result = aiscale.whatif(mini_store, {"same": {}, "same model": {"as": "google/gemini-3-pro-preview",
                                                                   "provider": "openrouter"}},
                            n_boot=200)
    table = result.summary().set_index("scenario")
    actual = facts["cost_usd"].sum()
    for name in ("actual", "same", "same model"):
        assert round(table.loc[name, "total_usd"], 2) == round(actual, 2)
        assert table.loc[name, "total_usd"] == pytest.approx(actual, abs=1e-9)
    assert table.loc["same", "change_usd"] == 0.0
    # per trace too: the scenario frame equals the facts' cost trace by trace
    per_trace = result.frame().set_index("trace_id")["same"]
    assert np.allclose(per_trace.sort_index(), facts.set_index("trace_id")["cost_usd"].sort_index())


def _calls() -> pd.DataFrame:
    return pd.DataFrame({
        "trace_id": ["a", "a", "b", "c"], "kind": "llm", "provider": "anthropic",
        "model": ["claude-sonnet-4-20250514", "claude-sonnet-4-20250514", "claude-sonnet-4-20250514",
                  "gpt-4.1-mini"],
        "start_time": pd.to_datetime(["2025-09-01"] * 4, utc=True),
        "input_tokens": [10_000, 20_000, 40_000, 1_000_000], "output_tokens": [1000, 0, 2000, 0],
        "cache_read_tokens": [0, 10_000, 0, 0], "cache_write_tokens": [4_000, 0, 0, 0],
    })


def test_each_scenario_key_against_hand_prices():
    # sonnet 4: 3 / 0.30 / 3.75 / 15 per M; gpt-4.1-mini 0.40 in, 1.60 out; o4-mini 1.10 / 4.40
    calls = _calls()
    sonnet = [(6000 * 3 + 4000 * 3.75 + 1000 * 15) / 1e6, (10_000 * 3 + 10_000 * 0.30) / 1e6,
              (40_000 * 3 + 2000 * 15) / 1e6]
    mini = 1_000_000 * 0.40 / 1e6
    r = aiscale.whatif(calls, {
        "o4": {"models": {"claude-sonnet-4*": "o4-mini"}, "provider": "openai"},
        "verbose": {"output_ratio": 2.0},
        "half": {"discount": 0.5},
        "cached": {"cache_hit_rate": 0.5},
        "1h writes": {"write_ttl": "1h"},
    }, n_boot=100).summary().set_index("scenario")
    assert r.loc["actual", "total_usd"] == pytest.approx(sum(sonnet) + mini)
    # o4-mini: cache reads at 0.275, writes priced as input (no write price listed)
    o4 = (6000 * 1.10 + 4000 * 1.10 + 1000 * 4.40 + 10_000 * 1.10 + 10_000 * 0.275
          + 40_000 * 1.10 + 2000 * 4.40) / 1e6
    assert r.loc["o4", "total_usd"] == pytest.approx(o4 + mini)
    assert r.loc["verbose", "total_usd"] == pytest.approx(sum(sonnet) + mini + 3000 * 15 / 1e6)
    assert r.loc["half", "total_usd"] == pytest.approx((sum(sonnet) + mini) / 2)
    # half of every input read from cache; call 1 keeps its 4,000 written tokens
    cached = ((1000 * 3 + 5000 * 0.30 + 4000 * 3.75 + 1000 * 15) + (10_000 * 3 + 10_000 * 0.30)
              + (20_000 * 3 + 20_000 * 0.30 + 2000 * 15) + (500_000 * 0.40 + 500_000 * 0.10)) / 1e6
    assert r.loc["cached", "total_usd"] == pytest.approx(cached)
    # a 1-hour write costs 2x input (6.00 per M) instead of 3.75
    assert r.loc["1h writes", "change_usd"] == pytest.approx(4000 * (6.0 - 3.75) / 1e6)


def test_unknown_target_is_unpriced_not_free_and_bad_keys_are_named():
    r = aiscale.whatif(_calls(), {"nowhere": {"as": "no-such-model-xyz"}}, n_boot=50)
    row = r.summary().set_index("scenario").loc["nowhere"]
    assert row["unpriced_calls"] == 4 and np.isnan(row["total_usd"])
    for stat in ("total", "change", "mean", "p95"):  # no interval around an unknown, not $0–$0
        assert np.isnan(row[f"{stat}_usd"]) and np.isnan(row[f"{stat}_lower"]) and np.isnan(row[f"{stat}_upper"])
    with pytest.raises(ValueError, match="keys must be among"):
        aiscale.whatif(_calls(), {"x": {"modle": "a"}})
    with pytest.raises(ValueError, match="discount"):
        aiscale.whatif(_calls(), {"x": {"discount": 1.5}})


def _whatif_coverage(n_traces: int, reps: int, seed: int) -> dict[str, float]:
    """How often the what-if intervals cover the truth: per-trace cost lognormal(-3, 1), the
    scenario 0.3x with lognormal(0, 0.2) noise and 5% of its traces unpriced (unknown: the
    total leaves them out, so its truth is 0.95 x n x the scenario's mean)."""
    from aiscale.analysis.spend.whatif import _table

    mean_a, z95 = np.exp(-3 + 0.5), 1.6448536269514722
    mean_b = 0.3 * mean_a * np.exp(0.02)
    truth = {("actual", "mean"): mean_a, ("actual", "p95"): np.exp(-3 + z95),
             ("as b", "mean"): mean_b, ("as b", "p95"): 0.3 * np.exp(-3 + z95 * np.sqrt(1 + 0.04)),
             ("actual", "total"): n_traces * mean_a, ("as b", "total"): n_traces * 0.95 * mean_b,
             ("as b", "change"): n_traces * (0.95 * mean_b - mean_a)}
    rng = np.random.default_rng(seed)
    hits = dict.fromkeys(truth, 0)
    for rep in range(reps):
        a = rng.lognormal(-3, 1, n_traces)
        b = np.where(rng.random(n_traces) < 0.05, np.nan, 0.3 * a * rng.lognormal(0, 0.2, n_traces))
        table = _table(pd.DataFrame({"actual": a, "as b": b}), {"actual": 0, "as b": 0}, 400, 0.95,
                       rep).set_index("scenario")
        for (scenario, stat), value in truth.items():
            hits[scenario, stat] += table.loc[scenario, f"{stat}_lower"] <= value <= table.loc[
                scenario, f"{stat}_upper"]
    return {f"{s} {stat}": h / reps for (s, stat), h in hits.items()}


def test_whatif_intervals_cover_known_means_and_p95():
    """Mean and p95 intervals (p95 drawn from order statistics) cover the simulated truth."""
    coverage = _whatif_coverage(400, 150, seed=3)
    assert all(0.88 <= c <= 1.0 for c in coverage.values()), coverage


def test_closed_form_intervals_cover_known_totals_and_means():
    """From CLOSED_FORM_TASKS traces on, totals, changes and means take closed forms (no
    resampling): each covers the truth at its level (binomial test per statistic)."""
    from aiscale.analysis._stats import CLOSED_FORM_TASKS

    reps = 150
    coverage = _whatif_coverage(CLOSED_FORM_TASKS, reps, seed=5)
    for name, rate in coverage.items():
        assert stats.binomtest(round(rate * reps), reps, 0.95).pvalue > 0.01, (name, coverage)


@pytest.mark.slow
@pytest.mark.parametrize("n_traces", [2_000, 20_000])
def test_whatif_intervals_cover_known_means_and_p95_long_run(n_traces):
    # 2,000 traces and more: totals, changes and means by skew-corrected closed forms
    coverage = _whatif_coverage(n_traces, 1_000, seed=4)
    print(f"{n_traces} traces, 95% coverage: {coverage}")
    assert all(0.935 <= c <= 0.965 for c in coverage.values()), coverage


def test_model_patterns_apply_in_order_and_a_call_without_model_stays_unpriced():
    """Each distinct model is matched once: a later pattern wins, a name mapped to itself keeps
    its provider, and a call with no model is matched by no pattern (its cost stays unknown)."""
    calls = pd.concat([_calls(), _calls().iloc[:1].assign(model=None, trace_id="d")], ignore_index=True)
    r = aiscale.whatif(calls, {"mixed": {"models": {"*": "o4-mini", "gpt-4.1*": "gpt-4.1-mini"},
                                         "provider": "openai"}}, n_boot=50)
    per_trace = r.frame().set_index("trace_id")["mixed"]
    o4 = {"a": (6000 * 1.10 + 4000 * 1.10 + 1000 * 4.40 + 10_000 * 1.10 + 10_000 * 0.275) / 1e6,
          "b": (40_000 * 1.10 + 2000 * 4.40) / 1e6}
    assert per_trace["a"] == pytest.approx(o4["a"]) and per_trace["b"] == pytest.approx(o4["b"])
    assert per_trace["c"] == pytest.approx(1_000_000 * 0.40 / 1e6)  # mapped to itself: unchanged
    assert np.isnan(per_trace["d"]) and r.summary().set_index("scenario").loc["mixed", "unpriced_calls"] == 1


def test_a_cache_policy_on_a_model_without_a_listed_cache_price_is_unknown_not_free():
    """Reads at an unlisted cache-read price are billed at the input price (an upper bound), so
    a cache-hit-rate scenario would show "no change" for them; their cost under it is unknown."""
    calls = _calls()
    calls.loc[3, ["provider", "model"]] = ["local", "my-llama"]
    sheet = pd.DataFrame({"model": ["my-llama"], "input_per_mtok": [1.0], "output_per_mtok": [2.0]})
    r = aiscale.whatif(calls, {"cached": {"cache_hit_rate": 0.5}}, prices=sheet, n_boot=50)
    row = r.summary().set_index("scenario").loc["cached"]
    assert row["unpriced_calls"] == 1  # my-llama's call: 500,000 reads at an unlisted price
    sonnet_cached = ((1000 * 3 + 5000 * 0.30 + 4000 * 3.75 + 1000 * 15) + (10_000 * 3 + 10_000 * 0.30)
                     + (20_000 * 3 + 20_000 * 0.30 + 2000 * 15)) / 1e6
    assert row["total_usd"] == pytest.approx(sonnet_cached)  # the total leaves it out, as it says
    assert any("Under 'cached', 1 calls read or write the cache at a model with no listed cache price"
               in note for note in r.notes)
    assert np.isnan(r.frame().set_index("trace_id").loc["c", "cached"])
    # listed, the same call is priced: half its input at the cached price
    listed = aiscale.whatif(calls, {"cached": {"cache_hit_rate": 0.5}}, n_boot=50,
                            prices=sheet.assign(cached_input_per_mtok=[0.25]))
    row = listed.summary().set_index("scenario").loc["cached"]
    assert row["unpriced_calls"] == 0
    assert row["total_usd"] == pytest.approx(sonnet_cached + (500_000 * 1.0 + 500_000 * 0.25) / 1e6)
    assert not any("Under" in note for note in listed.notes)
