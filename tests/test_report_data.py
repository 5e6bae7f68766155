"""The data the report reads: what each section is handed equals what the library computes
from the whole store (latency per call reads the time to first token the store's kept calls
took from the attributes; spans are priced as the facts are)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

import aiscale
from aiscale.analysis.spend.calls import llm_calls
from aiscale.report import sections_spend
from aiscale.report.context import open_context
from aiscale.sim.simulate import simulate_to


def _with_ttft(attributes: str, i: int) -> str:
    """Every third call records a time to first token: in seconds, in milliseconds, or neither."""
    record = json.loads(attributes) if attributes else {}
    if i % 3 == 0:
        record["gen_ai.server.time_to_first_token"] = 0.05 + (i % 7) / 100
    elif i % 3 == 1:
        record["ttft_ms"] = 40 + i % 11
    return json.dumps(record)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    simulate_to(folder / "sim", 300, seed=3, format="parquet")
    for part in sorted((folder / "sim").glob("spans-*[0-9].parquet")):
        spans = pq.read_table(part).to_pandas()
        llm = spans.index[spans["kind"] == "llm"]
        spans.loc[llm, "attributes"] = [_with_ttft(a, i) for i, a in enumerate(spans.loc[llm, "attributes"])]
        spans.to_parquet(part, index=False)
    return aiscale.load([folder / "sim"], store=folder / "s.store")


def test_latency_per_call_reads_the_ttft_a_full_read_gives(store):
    ctx = open_context(store.root, with_spans=False)
    section = sections_spend.call_latency(ctx)
    spans = store.spans(columns=["trace_id", "span_id", "attributes"], priced=False)
    full = llm_calls(store).merge(spans, on=["trace_id", "span_id"], how="left")
    assert full["attributes"].str.contains("ttft_ms").sum() > 100  # both kinds of key are there
    expected = aiscale.call_latency(full, n_boot=300).summary()
    assert (expected["calls_with_ttft"] / expected["calls"]).between(0.6, 0.7).all()
    pd.testing.assert_frame_equal(section.table, expected.round(3))
