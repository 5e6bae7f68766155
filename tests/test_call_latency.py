"""Latency per call: time to first token and output tokens per second recovered from calls drawn
with known laws (interval covers the true median), attribute keys in s and ms, end-to-end fallback."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import aiscale


def _calls(rng, n_traces=400, per_trace=5, ttft_median=0.8, tpot=0.02, key="gen_ai.server.time_to_first_token"):
    n = n_traces * per_trace
    ttft = ttft_median * np.exp(rng.normal(0, 0.4, n))
    out = rng.integers(50, 800, n)
    start = pd.Timestamp("2025-06-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s")
    end = start + pd.to_timedelta(np.round((ttft + out * tpot) * 1e6), unit="us")
    scale = 1000 if key.endswith("_ms") else 1
    return pd.DataFrame({"trace_id": np.repeat(np.arange(n_traces).astype(str), per_trace),
                         "kind": "llm", "model": "m", "start_time": start, "end_time": end,
                         "output_tokens": out,
                         "attributes": [json.dumps({key: float(t * scale)}) for t in ttft]})


def test_recovers_the_true_ttft_median_and_decode_speed(rng):
    result = aiscale.call_latency(_calls(rng), n_boot=400)
    row = result.summary().iloc[0]
    assert row["calls"] == 2000 and row["calls_with_ttft"] == 2000
    assert row["rate"] == "after first token"
    assert row["ttft_p50"] == pytest.approx(0.8, rel=0.05)
    assert row["ttft_p95"] == pytest.approx(0.8 * np.exp(1.6449 * 0.4), rel=0.08)
    # decode speed is exactly 1 / tpot = 50 tokens/s up to microsecond rounding
    assert row["tokens_per_s_p50"] == pytest.approx(50.0, rel=1e-3)


def test_milliseconds_key_and_end_to_end_fallback(rng):
    ms = aiscale.call_latency(_calls(rng, key="ttft_ms"), n_boot=50).summary().iloc[0]
    assert 0.7 < ms["ttft_p50"] < 0.9
    plain = _calls(rng).drop(columns="attributes")
    result = aiscale.call_latency(plain, n_boot=50)
    row = result.summary().iloc[0]
    assert np.isnan(row["ttft_p50"]) and row["rate"] == "end to end"
    assert row["tokens_per_s_p50"] < 50.0  # the first-token wait is inside the duration
    assert any("end to end" in n for n in result.notes)
    result.plot()


def test_interval_of_the_ttft_median_covers_the_truth_at_its_level():
    covered = []
    for seed in range(120):
        row = aiscale.call_latency(_calls(np.random.default_rng(seed), n_traces=60), n_boot=300,
                                   seed=seed).summary().iloc[0]
        covered.append(row["ttft_p50_lower"] <= 0.8 <= row["ttft_p50_upper"])
    # 95% intervals: over 120 runs, coverage between 88% and 99.5% (binomial, ~3 SE)
    assert 0.88 <= np.mean(covered) <= 0.995


# From CLOSED_FORM_TASKS traces of a model on, trace-clustered Woodruff intervals replace the
# trace bootstrap. Calls share their trace's speed: log TTFT = log 0.8 + trace N(0, 0.3²) + call
# N(0, 0.3²); time per output token = 0.02 x exp(trace N(0, 0.2²) + call N(0, 0.2²)), so the
# decode speed is lognormal too and each true percentile is known.
_QS = {"p50": 0.0, "p95": 1.6448536269514722}
_TRUTH = {**{f"ttft_{k}": 0.8 * np.exp(np.sqrt(0.18) * z) for k, z in _QS.items()},
          **{f"tokens_per_s_{k}": 50 * np.exp(np.sqrt(0.08) * z) for k, z in _QS.items()}}


def _clustered_calls(rng, n_traces):
    size = 1 + rng.poisson(3, n_traces)
    trace = np.repeat(np.arange(n_traces), size)
    n = len(trace)
    ttft = 0.8 * np.exp(rng.normal(0, 0.3, n_traces)[trace] + rng.normal(0, 0.3, n))
    tpot = 0.02 * np.exp(rng.normal(0, 0.2, n_traces)[trace] + rng.normal(0, 0.2, n))
    out = rng.integers(50, 800, n)
    start = pd.Timestamp("2025-06-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s")
    end = start + pd.to_timedelta(np.round((ttft + out * tpot) * 1e6), unit="us")
    return pd.DataFrame({"trace_id": trace, "kind": "llm", "model": "m", "start_time": start,
                         "end_time": end, "output_tokens": out, "ttft_s": ttft})


def _closed_form_coverage(reps, n_traces, seed) -> pd.Series:
    from aiscale.analysis.tradeoffs.call_latency import call_latency

    rng = np.random.default_rng(seed)
    hits = []
    for _ in range(reps):
        row = call_latency(_clustered_calls(rng, n_traces)).summary().iloc[0]
        hits.append({k: row[f"{k}_lower"] <= v <= row[f"{k}_upper"] for k, v in _TRUTH.items()})
    return pd.DataFrame(hits).mean()


def test_closed_form_intervals_cover_the_true_percentiles():
    from scipy import stats

    from aiscale.analysis._stats import CLOSED_FORM_TASKS

    reps = 150
    cover = _closed_form_coverage(reps, CLOSED_FORM_TASKS, seed=1)
    for rate in cover:
        assert stats.binomtest(round(rate * reps), reps, 0.95).pvalue > 0.01, cover.to_dict()


def test_many_traces_take_the_closed_form_few_keep_the_bootstrap():
    from aiscale.analysis._stats import CLOSED_FORM_TASKS

    big = _clustered_calls(np.random.default_rng(2), CLOSED_FORM_TASKS)
    a, b = (aiscale.call_latency(big, seed=s).summary() for s in (0, 1))
    pd.testing.assert_frame_equal(a, b)  # nothing drawn
    assert a["ttft_p50"].iloc[0] == np.quantile(big["ttft_s"], 0.5, method="inverted_cdf")
    # calls of a trace share its speed: the clustered interval is wider than one that takes
    # every call as its own trace
    alone = aiscale.call_latency(big.assign(trace_id=np.arange(len(big)))).summary()
    width = lambda r: r["ttft_p50_upper"] - r["ttft_p50_lower"]  # noqa: E731
    assert width(a.iloc[0]) > 1.2 * width(alone.iloc[0])
    small = _clustered_calls(np.random.default_rng(2), 300)
    a, b = (aiscale.call_latency(small, n_boot=200, seed=s).summary().iloc[0] for s in (0, 1))
    assert a["ttft_p50"] == b["ttft_p50"] and a["ttft_p50_lower"] != b["ttft_p50_lower"]


@pytest.mark.slow
@pytest.mark.parametrize("n_traces", [2_000, 20_000])
def test_closed_form_coverage_large(n_traces):
    cover = _closed_form_coverage(1000, n_traces, seed=3)
    print(f"{n_traces} traces, 95% coverage: {cover.round(3).to_dict()}")
    assert cover.between(0.935, 0.965).all(), cover.to_dict()


def test_scatter_draws_a_sample_of_many_calls():
    result = aiscale.call_latency(_clustered_calls(np.random.default_rng(4), 3_000), n_boot=0)
    n = int(result.frame()["tokens_per_s"].notna().sum())
    assert len(result.plot(max_points=500).collections[0].get_offsets()) == 500
    assert len(result.plot(max_points=10**9).collections[0].get_offsets()) == n > 500


def test_every_time_to_first_token_key_is_read_and_text_naming_none_is_null():
    """The substring test before the JSON parse covers every key, in seconds and in milliseconds."""
    import duckdb

    from aiscale import schema

    texts = [json.dumps({key: 1.5}) for key in schema.TTFT_KEYS] + \
            [json.dumps({key: 1500}) for key in schema.TTFT_MS_KEYS] + ['{"first_token": 1.5}', '{}', None]
    with duckdb.connect() as con:
        con.register("given", pd.DataFrame({"a": texts}))
        read = [row[0] for row in con.sql(f"SELECT {schema.ttft_sql('a')} FROM given").fetchall()]
    assert read == [1.5] * (len(schema.TTFT_KEYS) + len(schema.TTFT_MS_KEYS)) + [None, None, None]
