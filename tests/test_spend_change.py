"""Why spend changed: on simulated windows with planted changes (a traffic swap to the Sonnet
model, a 20% price cut, 1.5x volume, 1.3x verbosity) each term's interval holds the true term,
computed here from large simulated populations priced by hand with the simulator's declared
prices and split by a brute-force Shapley over all 120 orders; the terms sum to the change."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from itertools import permutations

import numpy as np
import pandas as pd
import pytest

import aiscale
from aiscale.sim.laws import DEFAULT_VARIANTS, Drift

A_START = datetime(2025, 6, 2, tzinfo=timezone.utc)
B_START = datetime(2025, 6, 9, tzinfo=timezone.utc)
FAST, STRONG = DEFAULT_VARIANTS[0], replace(DEFAULT_VARIANTS[1], drift=None)
GROUPS = ("fast-cheap", "strong")
SHEET = pd.DataFrame({"model": ["*"], "from_date": ["2025-06-09"], "discount": [0.2]})
MIX_B = {"fast-cheap": 0.3, "strong": 0.7}
VOLUME, VERBOSITY, DISCOUNT = 1.5, 1.3, 0.2


def _simulate(n: int, seed: int, window: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    later = window == "b"
    variants = tuple(replace(v, drift=Drift(B_START, VERBOSITY)) if later else v for v in (FAST, STRONG))
    sim = aiscale.simulate(n, seed=seed, variants=variants, days=7, start=B_START if later else A_START)
    spans = sim.spans.loc[sim.spans["kind"] == "llm"].assign(trace_id=lambda d: window + d["trace_id"])
    traces = sim.traces.assign(trace_id=window + sim.traces["trace_id"])
    return spans, traces


def _planted(n_a: int, seed: int):
    """Window a: n_a traces, half each variant; window b: 1.5x traces, 30/70, verbose, cheaper."""
    spans_a, traces_a = _simulate(n_a, seed, "a")
    n_b = {g: int(round(VOLUME * n_a * MIX_B[g])) for g in GROUPS}
    raw = 8 * int(np.ceil(2 * max(n_b.values()) / 8))
    spans_b, traces_b = _simulate(raw, seed + 1000, "b")
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.choice(traces_b.loc[traces_b["variant"] == g, "trace_id"], n_b[g],
                                      replace=False) for g in GROUPS])
    traces_b = traces_b.loc[traces_b["trace_id"].isin(keep)]
    spans_b = spans_b.loc[spans_b["trace_id"].isin(keep)]
    return pd.concat([spans_a, spans_b]), pd.concat([traces_a, traces_b])


def _hand_cost(spans: pd.DataFrame, discount: float) -> np.ndarray:
    """Cost per call from the simulator's declared prices (equal to genai-prices' for these models)."""
    prices = {v.model: v.prices for v in (FAST, STRONG)}
    out = np.zeros(len(spans))
    for model, p in prices.items():
        m = spans["model"].str.startswith(model.split("-2025")[0]).to_numpy()
        s = spans.loc[m]
        read, write = s["cache_read_tokens"].to_numpy(float), s["cache_write_tokens"].to_numpy(float)
        out[m] = ((s["input_tokens"].to_numpy(float) - read - write) * p.input + read * p.cache_read
                  + write * p.cache_write + s["output_tokens"].to_numpy(float) * p.output)
    return out * (1 - discount)


def _population_factors(seed: int) -> dict:
    """Calls per trace, work per call (undiscounted) and price index per (window, group)."""
    out = {}
    for window, discount in (("a", 0.0), ("b", DISCOUNT)):
        spans, traces = _simulate(40_000, seed, window)
        spans = spans.merge(traces[["trace_id", "variant"]], on="trace_id")
        ref, cost = _hand_cost(spans, 0.0), _hand_cost(spans, discount)
        for g in GROUPS:
            m = (spans["variant"] == g).to_numpy()
            n_traces = (traces["variant"] == g).sum()
            out[window, g] = (m.sum() / n_traces, ref[m].sum() / m.sum(), cost[m].sum() / ref[m].sum())
    return out


def _true_terms(population: dict, n_a: int) -> dict[str, float]:
    """Shapley values by brute force: average marginal change over all 5! switching orders."""
    names = ["volume", "mix", "calls per trace", "work per call", "price"]
    level = {"a": {"volume": n_a, "mix": {g: 0.5 for g in GROUPS}},
             "b": {"volume": VOLUME * n_a, "mix": MIX_B}}
    for w in ("a", "b"):
        for j, name in enumerate(["calls per trace", "work per call", "price"]):
            level[w][name] = {g: population[w, g][j] for g in GROUPS}

    def cost(state: dict) -> float:
        f = {n: level[state[n]][n] for n in names}
        return f["volume"] * sum(f["mix"][g] * f["calls per trace"][g] * f["work per call"][g]
                                 * f["price"][g] for g in GROUPS)

    terms = dict.fromkeys(names, 0.0)
    orders = list(permutations(names))
    for order in orders:
        state = dict.fromkeys(names, "a")
        for name in order:
            before = cost(state)
            state[name] = "b"
            terms[name] += (cost(state) - before) / len(orders)
    return terms


@pytest.fixture(scope="module")
def planted():
    spans, traces = _planted(2000, seed=7)
    result = aiscale.spend_change(spans, traces=traces, at=B_START, period="7D", prices=SHEET,
                                  n_boot=600, seed=1)
    return spans, traces, result


def test_terms_sum_exactly_to_the_change_priced_by_hand(planted):
    spans, traces, result = planted
    in_b = spans["start_time"] >= pd.Timestamp(B_START)
    first = spans.groupby("trace_id")["start_time"].transform("min") >= pd.Timestamp(B_START)
    hand = _hand_cost(spans, 0.0) * np.where(in_b, 1 - DISCOUNT, 1.0)
    assert result.cost_a == pytest.approx(hand[~first.to_numpy()].sum(), rel=1e-9)
    assert result.cost_b == pytest.approx(hand[first.to_numpy()].sum(), rel=1e-9)
    assert result.summary()["usd"].sum() == pytest.approx(result.change, abs=1e-9)
    f = result.frame().set_index(["window", "group"])
    assert f.loc[("b", "strong"), "share"] == pytest.approx(0.7)
    assert f.loc[("a", "strong"), "price_index"] == pytest.approx(1.0)
    # calls that straddle midnight of the first window's last day keep the trace's first price
    assert f.loc[("b", "strong"), "price_index"] == pytest.approx(0.8, abs=1e-3)


def test_each_planted_term_is_recovered_within_its_interval(planted):
    _, _, result = planted
    truth = _true_terms(_population_factors(seed=99), n_a=2000)
    table = result.summary().set_index("term")
    for term, value in truth.items():
        lo, hi = table.loc[term, "lower"], table.loc[term, "upper"]
        assert lo <= value <= hi, (term, value, lo, hi)
    # the planted directions: more traffic, more of the costlier model, more output, lower prices
    assert truth["volume"] > 0 and truth["mix"] > 0 and truth["work per call"] > 0 and truth["price"] < 0
    assert table.loc["mix", "lower"] > 0 and table.loc["price", "upper"] < 0


def test_per_group_terms_and_errors(planted):
    _, _, result = planted
    per = result.per_group
    assert set(per["group"]) == set(GROUPS)
    for _, part in per.groupby("group"):
        assert part["usd"].sum() == pytest.approx(part["cost_b"].iloc[0] - part["cost_a"].iloc[0])
        assert part.set_index("term").loc["mix", "usd"] == 0.0
    spans, traces, _ = planted
    with pytest.raises(ValueError, match="Both windows need priced traces"):
        aiscale.spend_change(spans, traces=traces, at="2024-01-01", n_boot=10)


@pytest.mark.slow
def test_interval_coverage_of_each_planted_term_over_replications():
    truth = _true_terms(_population_factors(seed=99), n_a=1000)
    hits = {term: 0 for term in truth}
    reps = 40
    for seed in range(reps):
        spans, traces = _planted(1000, seed=100 + seed)
        table = aiscale.spend_change(spans, traces=traces, at=B_START, period="7D", prices=SHEET,
                                     n_boot=400, seed=seed).summary().set_index("term")
        for term, value in truth.items():
            hits[term] += table.loc[term, "lower"] <= value <= table.loc[term, "upper"]
    # 95% intervals over 40 runs: at least 34 cover (P(X <= 33 | 0.95) < 2%)
    assert all(h >= 34 for h in hits.values()), hits
