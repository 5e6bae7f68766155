"""Cache savings on real Claude Code sessions equal a hand computation from the listed prices.

The hand side reads the session lines with ``json`` alone (one call per (message.id, requestId),
cache counts from its usage, the 5-minute / 1-hour split from ``cache_creation``) and prices
them with Anthropic's listed rates as genai-prices 0.2.3 carries them; 1-hour writes at 2x input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aiscale

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SESSIONS = REAL / "claude-code-sessions" / "packmind-context-evaluator-entire"

# USD per million tokens: (input, cache read, 5-minute cache write); above 200k input tokens
# claude-opus-4-6 costs twice as much
LISTED = {"claude-opus-4-6": (5.0, 0.50, 6.25), "claude-haiku-4-5-20251001": (1.0, 0.10, 1.25)}


def _hand_calls() -> dict[tuple[str, str], dict]:
    calls = {}
    for path in sorted(SESSIONS.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            message = record.get("message") or {}
            if record.get("type") != "assistant" or not message.get("usage"):
                continue
            usage, cache = message["usage"], message["usage"].get("cache_creation") or {}
            calls[message["id"], record.get("requestId")] = {  # the last line of a call wins
                "model": message["model"], "fresh": usage.get("input_tokens") or 0,
                "read": usage.get("cache_read_input_tokens") or 0,
                "write": usage.get("cache_creation_input_tokens") or 0,
                "write_1h": cache.get("ephemeral_1h_input_tokens") or 0}
    return calls


def _hand_savings() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for call in _hand_calls().values():
        inp, read, write_5m = LISTED[call["model"]]
        total_input = call["fresh"] + call["read"] + call["write"]
        scale = 2.0 if call["model"] == "claude-opus-4-6" and total_input > 200_000 else 1.0
        inp, read, write_5m = inp * scale / 1e6, read * scale / 1e6, write_5m * scale / 1e6
        one_hour = call["write_1h"]
        five_min = call["write"] - one_hour
        row = out.setdefault(call["model"], dict.fromkeys(
            ("calls", "reads", "saved", "write_5m", "write_1h", "premium"), 0.0))
        row["calls"] += 1
        row["reads"] += call["read"]
        row["saved"] += call["read"] * (inp - read)
        row["write_5m"] += five_min * write_5m
        row["write_1h"] += one_hour * 2 * inp
        row["premium"] += five_min * (write_5m - inp) + one_hour * (2 * inp - inp)
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return aiscale.load([SESSIONS], store=tmp_path_factory.mktemp("cc") / "store")


def test_cache_savings_equal_the_hand_computation(store):
    hand = _hand_savings()
    assert sum(r["calls"] for r in hand.values()) == 25 + 28 + 16 + 30  # SOURCE.md: API calls
    assert sum(r["write_1h"] for r in hand.values()) > 0  # these sessions wrote 1-hour entries
    summary = aiscale.cache_savings(store, by="model").summary().set_index("model")
    for model, expected in hand.items():
        row = summary.loc[model]
        assert row["calls"] == expected["calls"]
        assert row["cache_read_tokens"] == expected["reads"]
        assert row["read_savings_usd"] == pytest.approx(expected["saved"], rel=1e-9)
        assert row["write_5m_usd"] == pytest.approx(expected["write_5m"], rel=1e-9, abs=1e-12)
        assert row["write_1h_usd"] == pytest.approx(expected["write_1h"], rel=1e-9, abs=1e-12)
        assert row["write_premium_usd"] == pytest.approx(expected["premium"], rel=1e-9)
        assert row["net_savings_usd"] == pytest.approx(expected["saved"] - expected["premium"], rel=1e-9)
