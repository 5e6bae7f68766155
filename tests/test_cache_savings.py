"""Cache savings: hit rate, dollars saved, 5-minute vs 1-hour write costs and wasted writes,
against hand computations from the listed prices."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import aiscale

# genai-prices 0.2.3, anthropic/claude-sonnet-4-0: input 3, cache read 0.30, cache write (5 min)
# 3.75, output 15 USD per million tokens; a 1-hour write is listed at 2x input, 6.00
IN, READ, WRITE_5M, WRITE_1H, OUT = 3.0, 0.30, 3.75, 6.0, 15.0


def _calls() -> pd.DataFrame:
    t = pd.to_datetime(["2025-09-01 10:00", "2025-09-01 10:02", "2025-09-01 10:30",
                        "2025-09-01 10:50", "2025-09-02 09:00", "2025-09-02 09:00"], utc=True)
    attrs = [json.dumps({"cache_write_5m_tokens": 8000, "cache_write_1h_tokens": 2000}),
             None, json.dumps({"cache_write_1h_tokens": 5000, "cache_write_5m_tokens": 0}),
             None, None, None]
    return pd.DataFrame({
        "trace_id": ["a", "a", "a", "a", "b", "c"], "span_id": list("123456"), "kind": "llm",
        "provider": ["anthropic"] * 5 + [None], "start_time": t, "end_time": t + pd.Timedelta(seconds=5),
        "model": ["claude-sonnet-4-20250514"] * 5 + ["my-own-llama"],
        "input_tokens": [10_000, 12_000, 20_000, 30_000, 4_000, 100],
        "output_tokens": [100, 200, 300, 400, 50, 10],
        "cache_read_tokens": [0, 10_000, 0, 25_000, 0, 0],
        "cache_write_tokens": [10_000, 0, 5_000, 0, 4_000, 0],
        "attributes": attrs,
    })


def test_savings_and_write_costs_equal_the_hand_computation():
    result = aiscale.cache_savings(_calls(), by="model")
    row = result.summary().set_index("model").loc["claude-sonnet-4-20250514"]
    reads, writes = 10_000 + 25_000, 10_000 + 5_000 + 4_000
    inputs = 10_000 + 12_000 + 20_000 + 30_000 + 4_000
    assert row["calls"] == 5
    assert row["hit_rate"] == pytest.approx(reads / inputs)
    assert row["read_savings_usd"] == pytest.approx(reads * (IN - READ) / 1e6)
    # call 1: 8,000 5-minute and 2,000 1-hour tokens; call 3: 5,000 1-hour; call 5: 4,000 unsplit
    write_5m = (8000 + 4000) * WRITE_5M / 1e6
    write_1h = (2000 + 5000) * WRITE_1H / 1e6
    assert row["write_5m_usd"] == pytest.approx(write_5m)
    assert row["write_1h_usd"] == pytest.approx(write_1h)
    assert row["write_premium_usd"] == pytest.approx(write_5m + write_1h - writes * IN / 1e6)
    no_cache = (inputs * IN + 1050 * OUT) / 1e6
    assert row["no_cache_usd"] == pytest.approx(no_cache)
    with_cache = ((inputs - reads - writes) * IN + reads * READ + 1050 * OUT) / 1e6 + write_5m + write_1h
    assert row["cost_usd"] == pytest.approx(with_cache)
    assert row["net_savings_usd"] == pytest.approx(no_cache - with_cache)
    assert row["net_savings_usd"] == pytest.approx(row["read_savings_usd"] - row["write_premium_usd"])


def test_wasted_writes_are_those_never_read_within_their_lifetime():
    calls = aiscale.cache_savings(_calls()).frame().set_index("span_id")
    # call 1 (10:00, read at 10:02): used; call 3 (1-hour write at 10:30, read at 10:50): used;
    # call 5 (trace b, nothing reads it afterwards): wasted
    assert calls["wasted_writes"].to_dict() == {"1": False, "2": False, "3": False, "4": False, "5": True}
    assert calls.loc["5", "wasted_write_usd"] == pytest.approx(4000 * WRITE_5M / 1e6)
    # a 5-minute write read 28 minutes later is wasted; as a 1-hour write it is not
    late = _calls().iloc[[0, 3]].copy()
    late["attributes"] = None
    assert aiscale.cache_savings(late).frame()["wasted_writes"].tolist() == [True, False]


def test_unpriced_calls_are_left_out_and_said_so():
    result = aiscale.cache_savings(_calls())
    assert "my-own-llama" not in set(result.frame()["model"])
    assert any("no price" in n for n in result.notes)
    assert any("1-hour cache writes" in n for n in result.notes)
    # by day: day 2 only has the wasted write, so its net saving is negative
    daily = aiscale.cache_savings(_calls(), by="day").summary().sort_values("day")
    assert daily["net_savings_usd"].iloc[1] == pytest.approx(-4000 * (WRITE_5M - IN) / 1e6)
    assert np.isfinite(daily["hit_rate"]).all()


def _unlisted_cache_rate_calls() -> pd.DataFrame:
    """Two listed Anthropic calls and three calls of a sheet model with no cache prices listed."""
    t = pd.to_datetime(["2025-09-01 10:00", "2025-09-01 10:01", "2025-09-01 10:02",
                        "2025-09-01 10:03", "2025-09-01 10:04"], utc=True)
    return pd.DataFrame({
        "trace_id": ["a", "a", "b", "b", "c"], "span_id": list("12345"), "kind": "llm",
        "provider": ["anthropic", "anthropic", "local", "local", "local"], "start_time": t,
        "end_time": t + pd.Timedelta(seconds=5),
        "model": ["claude-sonnet-4-20250514"] * 2 + ["my-llama"] * 3,
        "input_tokens": [10_000, 12_000, 50_000, 60_000, 1_000], "output_tokens": [100] * 5,
        "cache_read_tokens": [0, 10_000, 40_000, 0, 0], "cache_write_tokens": [10_000, 0, 0, 30_000, 0],
    })


# the sheet lists only my-llama's input and output: its cache reads and writes are billed at the
# input price (an upper bound on reads), and what they saved is unknown
LLAMA_ONLY = pd.DataFrame({"model": ["my-llama"], "input_per_mtok": [1.0], "output_per_mtok": [2.0]})


def test_a_saving_whose_cache_rate_is_not_listed_is_unknown_not_zero():
    result = aiscale.cache_savings(_unlisted_cache_rate_calls(), by="model", prices=LLAMA_ONLY)
    calls = result.frame().set_index("span_id")
    # call 3 read 40,000 tokens, call 4 wrote 30,000, both at unlisted rates; call 5 used no cache
    assert calls["unknown_rate_calls"].to_dict() == {"1": 0, "2": 0, "3": 1, "4": 1, "5": 0}
    assert np.isnan(calls.loc["3", "read_savings_usd"]) and np.isnan(calls.loc["3", "net_savings_usd"])
    assert np.isnan(calls.loc["4", "write_5m_usd"]) and np.isnan(calls.loc["4", "write_premium_usd"])
    assert calls.loc["5", "net_savings_usd"] == 0.0  # no cache tokens: nothing saved, known
    # the bill stays the pricing's: the unlisted cache tokens at the input price
    assert calls.loc["3", "cost_usd"] == pytest.approx((50_000 * 1.0 + 100 * 2.0) / 1e6)
    table = result.summary().set_index("model")
    assert table.loc["my-llama", "unknown_rate_calls"] == 2
    assert table[["read_savings_usd", "net_savings_usd"]].loc["my-llama"].isna().all()
    listed = table.loc["claude-sonnet-4-20250514"]  # its own group is whole: a known saving
    assert listed["read_savings_usd"] == pytest.approx(10_000 * (IN - READ) / 1e6)
    # the total is unknown, never the listed calls' saving passed off as everyone's
    total = result.summary(by=()).iloc[0]
    assert np.isnan(total["read_savings_usd"]) and np.isnan(total["net_savings_usd"])
    known = result.summary(by=(), known_only=True).iloc[0]
    assert known["read_savings_usd"] == pytest.approx(10_000 * (IN - READ) / 1e6)
    assert any("2 calls read or wrote the cache at a model with no listed cache price" in n
               for n in result.notes)


def test_a_listed_cache_rate_makes_the_saving_known():
    sheet = LLAMA_ONLY.assign(cached_input_per_mtok=[0.25], cache_write_per_mtok=[1.5])
    result = aiscale.cache_savings(_unlisted_cache_rate_calls(), by="model", prices=sheet)
    row = result.summary().set_index("model").loc["my-llama"]
    assert row["unknown_rate_calls"] == 0
    assert row["read_savings_usd"] == pytest.approx(40_000 * (1.0 - 0.25) / 1e6)
    assert row["write_premium_usd"] == pytest.approx(30_000 * (1.5 - 1.0) / 1e6)
    assert row["net_savings_usd"] == pytest.approx(row["read_savings_usd"] - row["write_premium_usd"])


def test_the_plot_draws_known_savings_and_no_net_line_for_a_day_with_unknowns():
    import matplotlib

    matplotlib.use("Agg")
    result = aiscale.cache_savings(_unlisted_cache_rate_calls(), by="model", prices=LLAMA_ONLY)
    ax = result.plot()
    bars = [p.get_height() for p in ax.patches]
    assert pytest.approx(10_000 * (IN - READ) / 1e6) in bars  # the listed call's saving
    assert np.isnan(np.asarray(ax.lines[0].get_ydata(), dtype=float)).all()  # the day's net is unknown
    assert "2 calls with an unknown cache rate not shown" in ax.get_title()


def test_the_write_split_note_only_where_the_cache_was_written():
    calls = _calls()
    calls["attributes"] = None  # no source recorded the 5-minute / 1-hour split
    assert any("5-minute / 1-hour split" in n for n in aiscale.cache_savings(calls).notes)
    calls["cache_write_tokens"] = 0  # nothing written: nothing to split, nothing to say
    assert not any("5-minute / 1-hour split" in n for n in aiscale.cache_savings(calls).notes)
