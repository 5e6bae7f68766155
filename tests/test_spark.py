"""The Spark engine gives the same trace facts as DuckDB on the same store."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from spanbuilder import agent_trace

import aiscale
from aiscale import schema


def assert_same_facts(store):
    duck = store.facts(engine="duckdb")
    spark = store.facts(engine="spark")
    assert len(duck) > 0
    pd.testing.assert_frame_equal(duck, spark, check_exact=False, rtol=1e-12)


def test_spark_equals_duckdb_on_hand_traces(tmp_path):
    frames = [agent_trace(f"t{i}") for i in range(3)]
    path = tmp_path / "spans.parquet"
    pq.write_table(schema.conform(pd.concat(frames, ignore_index=True), "spans"), path)
    store = aiscale.load([path], store=tmp_path / "s")
    assert_same_facts(store)


@pytest.mark.parametrize("folder", ["mini-swe-agent-gemini3-verified", "tau-bench-historical"])
def test_spark_equals_duckdb_on_real_data(tmp_path, real_data, folder):
    store = aiscale.load([real_data / folder], store=tmp_path / "s")
    if store.last_load.rows_loaded == 0:
        pytest.fail(f"no loader read {folder}")
    assert_same_facts(store)
