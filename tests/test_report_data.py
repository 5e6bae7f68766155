"""The data the report reads: what each section is handed equals what the library computes
from the whole store (latency per call reads the time to first token the store's kept calls
took from the attributes; spans are priced as the facts are)."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pyarrow.parquet as pq
import pytest

import aiscale
from aiscale.analysis.spend.calls import llm_calls
from aiscale.report import sections_spend
from aiscale.report.context import REPORT_SPAN_COLUMNS, open_context
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


def _full_spans(store) -> pd.DataFrame:
    """Every span column the report read before it read only what its sections use."""
    dropped = ("attributes", "source", "source_file", "name")
    return store.spans(columns=[c for c in aiscale.schema.SPAN_COLUMNS if c not in dropped])


def test_spans_are_read_when_a_section_first_needs_them_and_then_kept(store):
    from aiscale.report import sections_analysis, sections_core, sections_loops, sections_money

    ctx = open_context(store.root)
    sections_core.spend(ctx)
    sections_spend.spend_over_time(ctx)  # the kept calls: no span read
    sections_money.attribution(ctx)  # the kept calls
    sections_loops.pathologies(ctx)  # the kept loop table and calls
    sections_loops.budget(ctx)  # the kept calls
    sections_analysis.latency(ctx)  # the kept loop table
    assert callable(ctx.__dict__["spans"])
    read = ctx.spans  # read by the first section that needs them (an investigation's expensive traces)
    assert ctx.__dict__["spans"] is read
    assert isinstance(read, pd.DataFrame)
    assert list(read.columns) == [*REPORT_SPAN_COLUMNS, "cost_usd", "priced"]
    assert ctx.spans is read  # read once
    full = _full_spans(store)
    pd.testing.assert_frame_equal(read, full[list(read.columns)])
    assert open_context(store.root, with_spans=False).spans is None


def test_sections_on_the_report_columns_equal_the_same_sections_on_every_column(store):
    from aiscale.report import (
        sections_analysis,
        sections_investigate,
        sections_loops,
        sections_money,
    )

    lazy = open_context(store.root)  # its sections read the store's kept calls and loop table
    full = replace(lazy, spans=_full_spans(store), memo={}, store=None)  # these, the spans
    assert callable(lazy.__dict__["spans"]) and set(full.spans.columns) > set(REPORT_SPAN_COLUMNS) | {
        "parent_id", "provider", "reported_cost_usd", "cache_read_tokens"}
    for section in (sections_money.attribution, sections_loops.pathologies, sections_loops.budget,
                    sections_analysis.latency):
        got, expected = section(lazy), section(full)
        assert got.finding == expected.finding and got.status == "finding"
        pd.testing.assert_frame_equal(got.table, expected.table)
    pathologies = sections_loops.pathologies(lazy)
    assert sum(pathologies.data["wasted"].values()) > 0  # spend after stuck loops and failed calls found
    top = lazy.facts.sort_values("cost_usd").trace_id.iloc[-3:].tolist()
    narrowed = sections_investigate.narrow(lazy, trace_ids=top)
    assert callable(narrowed.__dict__["spans"])  # narrowed without reading: read when needed
    assert sections_investigate.expensive_traces(narrowed).figure is not None
    assert set(narrowed.spans["trace_id"]) == set(top)
    by_model = sections_investigate.narrow(lazy, models=[lazy.spans["model"].dropna().iloc[0]])
    assert 0 < len(by_model.facts) <= len(lazy.facts)
