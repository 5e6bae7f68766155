"""Stuck-loop detection and wasted spend, against loops planted by the simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from loops_sim import priced

from aiscale.analysis.loops.stuck import stuck_loops, wasted_spend
from aiscale.sim.simulate import simulate


@pytest.fixture(scope="module")
def sim():
    return simulate(4000, seed=12)


@pytest.fixture(scope="module")
def spans(sim):
    return priced(sim)


def test_detector_finds_planted_loops(sim, spans):
    truth = sim.truth.traces.set_index("trace_id")
    found = stuck_loops(spans, facts=sim.truth.traces)
    table = found.frame().set_index("trace_id").reindex(truth.index)
    predicted, planted = table["stuck"].to_numpy(), truth["stuck"].to_numpy()
    assert planted.sum() >= 80
    tp = (predicted & planted).sum()
    assert tp / predicted.sum() >= 0.95 and tp / planted.sum() >= 0.95
    summary = found.summary().iloc[0]
    assert summary["share_low"] <= planted.mean() <= summary["share_high"]
    assert set(found.examples) <= set(truth.index[planted])
    # spend: the trace cost of stuck traces, part of it after the loop began
    stuck = table.loc[table["stuck"]]
    assert stuck["spend"].sum() == pytest.approx(truth.loc[stuck.index, "cost_usd"].sum())
    assert (stuck["spend_after"] > 0).mean() > 0.9 and (stuck["spend_after"] < stuck["spend"]).all()


def test_spend_after_the_loop_began_is_the_cost_of_later_iterations(sim, spans):
    """The stuck run starts with the tool call of iteration stuck_start: every LLM call of a
    later iteration is waste."""
    truth = sim.truth.traces.set_index("trace_id")
    found = stuck_loops(spans, facts=sim.truth.traces).frame().set_index("trace_id")
    llm = spans.loc[spans["kind"] == "llm"].sort_values(["trace_id", "start_time"])
    ok = (llm["status"] != "error").to_numpy(dtype=bool)
    llm = llm.assign(iteration=pd.Series(ok.astype(int), index=llm.index)
                     .groupby(llm["trace_id"]).cumsum().to_numpy() + ~ok)
    planted = truth.index[truth["stuck"]]
    calls = llm.loc[llm["trace_id"].isin(planted)]
    start = truth.loc[calls["trace_id"], "stuck_start"].to_numpy()
    later = calls.loc[calls["iteration"].to_numpy() > start]
    expected = later.groupby("trace_id")["cost_usd"].sum().reindex(planted).fillna(0)
    assert np.allclose(found.loc[planted, "spend_after"], expected)


def test_threshold_and_modes():
    t = pd.to_datetime(np.arange(8), unit="s")
    spans = pd.DataFrame({
        "trace_id": ["a"] * 4 + ["b"] * 4, "span_id": list("12341234"), "kind": "tool",
        "start_time": np.concatenate([t[:4], t[:4]]),
        "tool_name": ["ls", "ls", "cat", "ls", "ls", "ls", "ls", "cat"],
        "tool_arguments": ["{}"] * 8})
    consecutive = stuck_loops(spans).frame().set_index("trace_id")
    assert consecutive["tool_repeats"].to_dict() == {"a": 2, "b": 3}
    assert consecutive["stuck"].to_dict() == {"a": False, "b": True}
    total = stuck_loops(spans, mode="total").frame().set_index("trace_id")
    assert total["stuck"].to_dict() == {"a": True, "b": True}
    assert stuck_loops(spans, min_repeats=4).n_stuck == 0
    with pytest.raises(ValueError, match=r"`min_repeats` must be an integer >= 2, but 1 was passed"):
        stuck_loops(spans, min_repeats=1)
    with pytest.raises(ValueError, match=r"`mode` must be one of \['consecutive', 'total'\]"):
        stuck_loops(spans, mode="run")


def test_repeated_llm_outputs_from_attributes():
    spans = pd.DataFrame({
        "trace_id": "a", "span_id": list("1234"), "kind": "llm",
        "start_time": pd.to_datetime(np.arange(4), unit="s"),
        "attributes": ['{"output.value": "x"}', '{"output.value": "y"}'] + ['{"output.value": "y"}'] * 2,
        "reported_cost_usd": [1.0, 1.0, 2.0, 4.0]})
    found = stuck_loops(spans)
    row = found.frame().iloc[0]
    assert row["output_repeats"] == 3 and row["reason"] == "output"
    assert row["spend_after"] == 6.0 and row["spend"] == 8.0
    assert "1 of 1 traces" in repr(found) and found.plot() is not None


def test_wasted_spend_against_truth(sim, spans):
    facts = sim.truth.traces
    waste = wasted_spend(facts, spans=spans).summary().set_index("category")
    failed = ~facts["success"].astype(bool)
    assert waste.loc["failed traces", "spend"] == pytest.approx(facts.loc[failed, "cost_usd"].sum())
    assert waste.loc["failed traces", "n"] == failed.sum()
    assert waste.loc["failed LLM calls", "n"] == facts["n_errors"].sum()
    assert waste.loc["after stuck loops began", "n"] == facts["stuck"].sum()
    no_spans = wasted_spend(facts).summary().set_index("category")
    assert np.isnan(no_spans.loc["failed LLM calls", "spend"])
