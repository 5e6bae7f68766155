"""The Spark engine gives the same trace facts as DuckDB on the same store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from spanbuilder import AWKWARD_COSTS, agent_trace, costed_traces, daily_traces, exact_sum_truth

import aiscale
from aiscale import schema
from aiscale.sim.otlp import write_otlp


def assert_same_facts(store):
    duck = store.facts(engine="duckdb")
    spark = store.facts(engine="spark")
    assert len(duck) > 0
    pd.testing.assert_frame_equal(duck, spark, check_exact=True)


def test_spark_equals_duckdb_on_hand_traces(tmp_path):
    frames = [agent_trace(f"t{i}") for i in range(3)]
    path = tmp_path / "spans.parquet"
    pq.write_table(schema.conform(pd.concat(frames, ignore_index=True), "spans"), path)
    store = aiscale.load([path], store=tmp_path / "s")
    assert_same_facts(store)


# the real exports where the engines once differed in the last bit of cost_usd and
# reported_cost_usd (mini-swe-agent, tau2), the other sources with costs, and Inspect
# (grader calls under evaluator spans)
@pytest.mark.parametrize("folder", ["mini-swe-agent-gemini3-verified", "tau2-bench-results",
                                    "tau-bench-historical", "claude-code-sessions", "inspect-logs",
                                    "demo"])
def test_spark_equals_duckdb_on_real_data(tmp_path, real_data, folder):
    path = Path(__file__).parents[1] / "data" / "demo" if folder == "demo" else real_data / folder
    store = aiscale.load([path], store=tmp_path / "s")
    if store.last_load.rows_loaded == 0:
        pytest.fail(f"no loader read {folder}")
    assert_same_facts(store)


def test_spark_sums_costs_exactly_in_any_order(tmp_path):
    path = tmp_path / "costs.parquet"
    pq.write_table(schema.conform(costed_traces(), "spans"), path)
    store = aiscale.load([path], store=tmp_path / "s")
    facts = store.facts(engine="spark")
    assert facts["reported_cost_usd"].tolist() == [exact_sum_truth(AWKWARD_COSTS)] * 5


def test_spark_equals_duckdb_with_a_window_prices_and_repeated_spans(tmp_path):
    days = daily_traces(4)
    first = tmp_path / "days.parquet"
    pq.write_table(schema.conform(days, "spans"), first)
    again = days[days.trace_id == "d1"].assign(source_file="again.jsonl")  # the same spans again
    second = tmp_path / "again.parquet"
    pq.write_table(schema.conform(again, "spans"), second)
    store = aiscale.load([first, second], store=tmp_path / "s")
    assert store.spans_may_repeat
    sheet = tmp_path / "prices.csv"
    sheet.write_text("provider,model,from_date,input_per_mtok,output_per_mtok,per_call_usd,"
                     "discount,price_as,gpu_hour_usd,gpus\n"
                     "openai,gpt-4o,2025-03-02,1,4,,,,,\n"
                     "openai,gpt-4o-mini,,,,0.002,,,,\n")
    for kwargs in ({"prices": sheet}, {"prices": sheet, "since": "2025-03-02", "until": "2025-03-04"}):
        duck = store.facts(engine="duckdb", **kwargs)
        spark = store.facts(engine="spark", **kwargs)
        assert duck["cost_usd"].notna().any()
        pd.testing.assert_frame_equal(duck, spark, check_exact=True)
    assert sorted(spark["trace_id"]) == ["d1", "d2"]


def test_spark_equals_duckdb_on_simulated_otlp_read_through_a_store_uri(tmp_path, monkeypatch):
    sim = aiscale.simulate(300, seed=4)
    path = write_otlp(sim.spans, sim.traces, tmp_path / "sim.jsonl")
    store = aiscale.load([path], store=tmp_path / "s")
    # executors read the parts at another address than the driver's folder (here a file: URI)
    monkeypatch.setenv("AISCALE_SPARK_STORE_URI", (tmp_path / "s").as_uri())
    assert_same_facts(store)
    monkeypatch.setenv("AISCALE_SPARK_STORE_URI", (tmp_path / "elsewhere").as_uri())
    with pytest.raises(Exception, match="(?i)path does not exist"):
        store.facts(engine="spark")
