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


def _runs_by_hand(spans: pd.DataFrame, mode: str) -> dict:
    """Per trace with a named tool call: (largest repeat count, start of that run's first call),
    by walking each trace's calls in (start, row) order; the earliest run wins a tie."""
    out = {}
    for trace, g in spans.loc[spans["tool_name"].notna()].groupby("trace_id", sort=False):
        g = g.assign(row=np.arange(len(g))).sort_values(["start_time", "row"])
        keys = list(zip(g["tool_name"], g["tool_arguments"].fillna(""), strict=True))
        starts = g["start_time"].dt.as_unit("us").astype("int64").to_numpy()
        runs = []  # (repeats, since)
        if mode == "consecutive":
            i = 0
            while i < len(keys):
                j = i
                while j + 1 < len(keys) and keys[j + 1] == keys[i]:
                    j += 1
                runs.append((j - i + 1, starts[i]))
                i = j + 1
        else:
            for key in dict.fromkeys(keys):
                at = [k for k, other in enumerate(keys) if other == key]
                runs.append((len(at), min(starts[at])))
        out[trace] = min(runs, key=lambda r: (-r[0], r[1]))
    return out


@pytest.mark.parametrize("mode", ["consecutive", "total"])
def test_tool_runs_equal_a_walk_by_hand_with_ties_and_unknown_names(rng, mode):
    from aiscale.analysis.loops.stuck import tool_runs

    n = 3000  # 60 traces; start times on a coarse grid (many ties), few tools and arguments
    spans = pd.DataFrame({"trace_id": rng.choice([f"t{i}" for i in range(60)], n), "kind": "tool",
                          "start_time": pd.to_datetime(rng.integers(0, 40, n), unit="s"),
                          "tool_name": rng.choice(["ls", "cat", None], n, p=[0.6, 0.3, 0.1]),
                          "tool_arguments": rng.choice(["{}", "{'a': 1}", None], n, p=[0.7, 0.2, 0.1])})
    got = tool_runs(spans, mode=mode)
    expected = _runs_by_hand(spans, mode)
    assert set(got.index) == set(expected) and len(expected) == 60
    assert (got["tool_repeats"] >= 3).sum() > 10
    for trace, (repeats, since) in expected.items():
        assert (got.loc[trace, "tool_repeats"], got.loc[trace, "t_since"]) == (repeats, since), trace
