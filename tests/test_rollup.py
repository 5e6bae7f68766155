"""The rollup against hand-computed trace facts."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pandas as pd
import pytest
from spanbuilder import AWKWARD_COSTS, agent_trace, costed_traces, exact_sum_truth, span

import aiscale
from aiscale import schema


def facts_of(spans, traces=None, rates=None):
    traces = schema.empty("traces") if traces is None else traces
    return aiscale.rollup_frames(spans, traces, rates=rates).set_index("trace_id")


def test_agent_trace_counts_tokens_once_and_iterations_of_main_loop():
    row = facts_of(agent_trace()).loc["t1"]
    assert row.n_llm_calls == 4
    assert row.iterations == 3  # the sub-agent's call is not an iteration of the main loop
    assert row.n_tool_calls == 3
    assert row.input_tokens == 100 + 200 + 50 + 300  # the root's 999 is a total, not counted
    assert row.output_tokens == 10 + 20 + 5 + 30
    assert row.cache_read_tokens == 40
    assert row.reasoning_tokens == 5
    assert pd.isna(row.cache_write_tokens)  # unknown stays unknown
    assert row.reported_cost_usd == pytest.approx(0.03)
    assert row.repeated_calls == 1
    assert row.n_errors == 1
    assert row.latency_s == 20.0
    assert row.llm_latency_s == pytest.approx(2 + 2 + 1 + 3)
    assert row.tool_latency_s == pytest.approx(3.0)
    assert row.variant == "gpt-4o"  # model of the first LLM call
    assert row.task_id == "t1" and row.trial == 0


def test_unpriced_is_null_not_zero_and_rates_price_each_call():
    spans = agent_trace()
    unpriced = facts_of(spans).loc["t1"]
    assert pd.isna(unpriced.cost_usd) and unpriced.unpriced_llm_calls == 4
    day = spans.start_time.iloc[0].date()
    rates = pd.DataFrame({
        "provider": ["openai", "openai"], "model": ["gpt-4o", "gpt-4o-mini"], "day": [day, day],
        "input_usd_per_token": [2e-6, 1e-7], "cache_read_usd_per_token": [1e-6, None],
        "cache_write_usd_per_token": [None, None], "output_usd_per_token": [1e-5, 4e-7],
        "reasoning_usd_per_token": [None, None], "call_usd": [None, None]})
    row = facts_of(spans, rates=rates).loc["t1"]
    expected = ((100 - 40) * 2e-6 + 40 * 1e-6 + 10 * 1e-5
                + 200 * 2e-6 + 20 * 1e-5
                + 50 * 1e-7 + 5 * 4e-7
                + 300 * 2e-6 + 30 * 1e-5)
    assert row.unpriced_llm_calls == 0
    assert row.cost_usd == pytest.approx(expected)
    partial = rates.iloc[:1]
    row = facts_of(spans, rates=partial).loc["t1"]
    assert row.unpriced_llm_calls == 1 and pd.isna(row.cost_usd)


def test_without_agent_span_all_llm_calls_are_iterations_and_latency_spans_the_trace():
    spans = pd.DataFrame([
        span("t2", "c", None, "chain", 0, 1),
        span("t2", "a", "c", "llm", 2, 3, input_tokens=1, output_tokens=1),
        span("t2", "b", None, "llm", 5, 9, input_tokens=1, output_tokens=1),
    ])
    row = facts_of(spans).loc["t2"]
    assert row.iterations == 2
    assert row.latency_s == 9.0  # two roots: last end minus first start (root max is 4)


def test_trace_rows_merge_and_defaults():
    spans = agent_trace("t3")
    traces = pd.DataFrame([
        {"trace_id": "t3", "task_id": "task-7", "variant": None, "success": None},
        {"trace_id": "t3", "trial": 2, "variant": "agent-v2", "success": True},
        {"trace_id": "no-spans", "task_id": "task-8", "success": False},
    ])
    facts = facts_of(spans, traces)
    row = facts.loc["t3"]
    assert (row.task_id, row.trial, row.variant, bool(row.success)) == ("task-7", 2, "agent-v2", True)
    assert facts.loc["no-spans"].n_llm_calls == 0 and not facts.loc["no-spans"].success


def test_facts_have_the_schema_columns_and_types():
    facts = aiscale.rollup_frames(agent_trace(), schema.empty("traces"))
    assert tuple(facts.columns) == schema.FACT_COLUMNS
    assert str(facts["iterations"].dtype) == "Int64"
    assert str(facts["success"].dtype) == "boolean"


def test_failed_attempts_are_not_iterations_and_cost_nothing_without_usage():
    spans = pd.DataFrame([
        span("t5", "a", None, "agent", 0, 10),
        span("t5", "e", "a", "llm", 1, 2, status="error", error_type="RateLimit", model="m", provider="p"),
        span("t5", "r", "a", "llm", 2, 3, model="m", provider="p", input_tokens=10, output_tokens=5),
        span("t5", "f", "a", "llm", 3, 4, status="error", error_type="FormatError", model="m",
             provider="p", input_tokens=12, output_tokens=7),  # answered, but unusable: a step
    ])
    day = spans.start_time.iloc[0].date()
    rates = pd.DataFrame({"provider": ["p"], "model": ["m"], "day": [day], "input_usd_per_token": [1.0],
                          "cache_read_usd_per_token": [None], "cache_write_usd_per_token": [None],
                          "output_usd_per_token": [2.0], "reasoning_usd_per_token": [None],
                          "call_usd": [None]})
    row = facts_of(spans, rates=rates).loc["t5"]
    assert row.n_llm_calls == 3 and row.iterations == 2 and row.n_errors == 2
    assert row.unpriced_llm_calls == 0 and row.cost_usd == pytest.approx(10 + 10 + 12 + 14)


def test_grader_calls_under_an_evaluator_count_tokens_but_are_not_iterations():
    spans = pd.DataFrame([
        span("t5", "root", None, "agent", 0, 20),
        span("t5", "a", "root", "llm", 1, 2, input_tokens=100, output_tokens=10),
        span("t5", "b", "root", "llm", 3, 4, input_tokens=200, output_tokens=20),
        span("t5", "score", "root", "evaluator", 10, 15),
        span("t5", "g", "score", "llm", 11, 14, input_tokens=300, output_tokens=30),
    ])
    row = facts_of(spans).loc["t5"]
    assert row.n_llm_calls == 3 and row.iterations == 2
    assert row.input_tokens == 600 and row.output_tokens == 60  # the grader's tokens count
    assert row.llm_latency_s == pytest.approx(1 + 1 + 3)


def test_frame_of_gives_the_frame_duckdb_df_gives():
    """Reading through Arrow gives DuckDB's .df() frame: nullable integers and booleans only
    where nulls are, decimals as floats, a text column of nulls only as objects."""
    import duckdb

    from aiscale.facts.on_duckdb import frame_of

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    query = ("SELECT range AS a, CASE WHEN range % 2 = 0 THEN range END AS b, (range % 3 = 0) AS c, "
             "CASE WHEN range > 0 THEN range % 2 = 0 END AS d, NULL::INTEGER AS e, 1.25::DECIMAL(6, 2) AS f, "
             "'x' || range AS g, NULL::VARCHAR AS h, CASE WHEN range = 1 THEN 'y' END AS i, "
             "TIMESTAMPTZ '2025-01-01 10:00:00' + to_seconds(range) AS j, range / 3 AS k FROM range(5)")
    pd.testing.assert_frame_equal(frame_of(con.sql(query)), con.execute(query).df())


def test_costs_sum_exactly_whatever_the_order_and_round_once():
    facts = facts_of(costed_traces())  # five traces, the same costs in five orders
    truth = exact_sum_truth(AWKWARD_COSTS)
    assert facts["reported_cost_usd"].tolist() == [truth] * 5
    exact = sum(Fraction(c) for c in AWKWARD_COSTS)
    # the 2**-60 floor per cost is far below the float's last bit of the total
    assert abs(Fraction(truth) - exact) <= Fraction(math.ulp(truth)) / 2 + len(AWKWARD_COSTS) * Fraction(1, 2 ** 60)
    running = {sum(random.Random(seed).sample(AWKWARD_COSTS, len(AWKWARD_COSTS))) for seed in range(50)}
    assert len(running) > 1  # a float running sum depends on the order: the case is not trivial
    assert math.isnan(facts_of(costed_traces(costs=(None, None)))["reported_cost_usd"].iloc[0])


def test_only_the_traces_that_repeat_a_span_are_de_duplicated_and_the_first_copy_is_kept(tmp_path):
    import pyarrow.parquet as pq

    from aiscale.facts.on_duckdb import duckdb_backend, register
    from aiscale.facts.rollup import repeated_traces, rollup

    spans = pd.concat([agent_trace("t1"), agent_trace("t2")], ignore_index=True)
    # a later file carries t1 again, its copies with other token counts: kept, they would
    # change the sums; only the first copy by source file and row may count
    again = agent_trace("t1").assign(source_file="later.jsonl", input_tokens=7)
    single = facts_of(spans)
    con = duckdb_backend()
    both = register(con, "spans_both", schema.conform(pd.concat([spans, again], ignore_index=True), "spans"))
    traces = register(con, "traces_none", schema.conform(schema.empty("traces"), "traces"))
    found = repeated_traces(both).to_pyarrow()
    assert found.column("trace_id").to_pylist() == ["t1"]
    repeated = register(con, "repeated", found)
    for kwargs in ({"repeated": repeated}, {}):  # only t1 through the window; every trace
        facts = rollup(both, traces, **kwargs).to_pyarrow().to_pandas().set_index("trace_id")
        assert facts.loc["t1", "input_tokens"] == 100 + 200 + 50 + 300  # not 7s, not twice
        assert facts.loc["t1", "n_llm_calls"] == 4
        for column in ("input_tokens", "n_llm_calls", "iterations", "repeated_calls", "llm_latency_s"):
            assert facts[column].sort_index().tolist() == single[column].sort_index().tolist(), column
    pq.write_table(schema.conform(spans, "spans"), tmp_path / "first.parquet")
    pq.write_table(schema.conform(again, "spans"), tmp_path / "later.parquet")  # sorts after
    store = aiscale.load([tmp_path / "first.parquet", tmp_path / "later.parquet"], store=tmp_path / "s")
    assert store.spans_may_repeat
    alone = aiscale.load([tmp_path / "first.parquet"], store=tmp_path / "alone")
    pd.testing.assert_frame_equal(store.facts(), alone.facts(), check_exact=True)
