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
