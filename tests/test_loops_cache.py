"""The per-trace loop table kept beside the facts (``STORE/cache/loops-<key>.parquet``) is what the
library computes from the store's spans (tool runs, LLM and tool busy time), ties in start time
broken as on sorted spans; it is what is read while the store is unchanged, and never served
after a load, for another or an edited price sheet, for another window, nor when the file is
damaged or of another layout."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from kept_files import kept_files

import aiscale
from aiscale import schema
from aiscale.analysis.loops.stuck import tool_runs
from aiscale.analysis.tradeoffs.latency import busy_by_kind
from aiscale.facts.window import window_days
from aiscale.report import sections_analysis, sections_loops
from aiscale.report.context import REPORT_SPAN_COLUMNS, open_context
from aiscale.report.loop_table import compute_loop_table, loop_table
from aiscale.sim.simulate import simulate_to
from aiscale.store.span_read import read_spans

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
MINI = REAL / "mini-swe-agent-gemini3-verified" / "trajs"
TAU2 = REAL / "tau2-bench-results" / "gpt-4.1_airline_default_gpt-4.1_1trials.json"


@pytest.fixture
def store(tmp_path):
    simulate_to(tmp_path / "sim", 200, seed=5, format="parquet")
    return aiscale.load([tmp_path / "sim"], store=tmp_path / "s.store")


def _expected(spans: pd.DataFrame) -> pd.DataFrame:
    """The loop table computed by the library from spans as a report reads them."""
    ids = pd.Index(spans["trace_id"].unique(), name="trace_id")
    busy = busy_by_kind(spans, ("llm", "tool")).add_suffix("_busy_s")
    return pd.DataFrame(index=ids).join(tool_runs(spans)).join(busy).sort_index()


def _assert_table_is_the_library(table: pa.Table, spans: pd.DataFrame) -> None:
    got = table.to_pandas().set_index("trace_id").sort_index()
    pd.testing.assert_frame_equal(got, _expected(spans)[got.columns], check_exact=True, check_names=False)


def _kept(store) -> list[Path]:
    return kept_files(store, "loops")


def _poison(path: Path) -> None:
    """Rewrite a kept loop table with every repeat count plus 100 (to see whether it is read)."""
    table = pq.read_table(path)
    i = table.schema.get_field_index("tool_repeats")
    pq.write_table(table.set_column(i, "tool_repeats", pc.add(table["tool_repeats"], 100.0)), path)


def test_the_kept_table_is_the_library_on_the_spans_simulated_and_real(store, tmp_path):
    spans = store.spans(columns=list(REPORT_SPAN_COLUMNS))
    table = loop_table(store)
    assert len(_kept(store)) == 1 and table.num_rows == spans["trace_id"].nunique()
    assert pc.max(table["tool_repeats"]).as_py() >= 3  # the simulator's planted stuck loops
    _assert_table_is_the_library(table, spans)
    real = aiscale.load(sorted(MINI.glob("*/*.traj.json"))[:8], store=tmp_path / "real.store")
    real_spans = real.spans(columns=list(REPORT_SPAN_COLUMNS))
    assert (real_spans["kind"] == "tool").sum() > 100
    _assert_table_is_the_library(loop_table(real), real_spans)


def test_ties_in_start_time_are_broken_by_span_id_as_on_sorted_spans():
    at = pd.to_datetime([1, 2, 2, 2, 3, 3, 4], unit="s")
    spans = pd.DataFrame({"trace_id": ["t"] * 7, "span_id": ["a", "d", "c", "b", "f", "e", "g"],
                          "kind": "tool", "start_time": at, "end_time": at + pd.Timedelta(seconds=1),
                          "tool_name": "ls", "tool_arguments": ["x", "y", "x", "x", "y", "x", "x"]})
    table = _computed(spans)
    in_order = spans.sort_values(["trace_id", "start_time", "span_id"])  # a, b(x) c(x) d(y), e(x) f(y), g
    assert tool_runs(in_order)["tool_repeats"].tolist() == [3.0]  # a b c
    assert tool_runs(spans)["tool_repeats"].tolist() != [3.0]  # in the order given: another answer
    _assert_table_is_the_library(table, in_order)


def _computed(spans: pd.DataFrame) -> pa.Table:
    """compute_loop_table of ``spans`` (the other span columns null) in a DuckDB view."""
    with duckdb.connect() as con:
        full = spans.reindex(columns=list(schema.SPAN_COLUMNS))
        con.register("given", pa.Table.from_pandas(full, preserve_index=False).select(spans.columns))
        con.execute("CREATE VIEW spans AS SELECT * FROM given")
        return compute_loop_table(con)


def test_runs_found_call_by_call_equal_the_library_on_unknown_names_arguments_and_starts():
    """Consecutive calls are compared one with the next: a call of unknown name between two equal
    calls does not break their run (the runs leave it out), null arguments equal empty text, an
    unknown start counts as the epoch, and another trace never continues a run."""
    at = pd.to_datetime([1, 2, 3, 4, 5, 1, 2, 3, 6, 7, 1, 2], unit="s").to_series().reset_index(drop=True)
    at[8] = pd.NaT  # t2's last call: unknown start
    spans = pd.DataFrame({
        "trace_id": ["t1"] * 5 + ["t2"] * 5 + ["t3"] * 2,
        "span_id": [f"s{i:02d}" for i in range(12)], "kind": "tool", "start_time": at,
        "end_time": at + pd.Timedelta(seconds=1),
        "tool_name": ["ls", None, "ls", "ls", "cat", "cat", "cat", "ls", "cat", "ls", "ls", "ls"],
        "tool_arguments": ["x", "x", "x", "x", "x", None, "", "y", "", "y", "y", "y"]})
    table = _computed(spans)
    in_order = spans.sort_values(["trace_id", "start_time", "span_id"], na_position="first")
    expected = tool_runs(in_order)
    assert expected.loc["t1", "tool_repeats"] == 3  # ls x, (unknown), ls x, ls x
    assert expected.loc["t2", "tool_repeats"] == 3  # the unknown start first: cat "", cat null, cat "", ls y, ls y
    assert expected.loc["t3", "tool_repeats"] == 2  # t2's last ls y does not run on into t3
    _assert_table_is_the_library(table, in_order)
    shuffled = spans.sample(frac=1, random_state=3)  # the order given does not matter
    _assert_table_is_the_library(_computed(shuffled), in_order)


def test_a_report_reads_the_kept_table_while_the_store_is_unchanged(store):
    clean = sections_loops.pathologies(open_context(store.root))
    _poison(_kept(store)[0])
    ctx = open_context(store.root)
    section = sections_loops.pathologies(ctx)
    with_tools = int(pq.read_table(_kept(store)[0]).to_pandas()["tool_repeats"].notna().sum())
    stuck = f"{with_tools:,} of {len(ctx.facts):,} traces"  # every trace with a tool call, poisoned
    assert section.finding.startswith(stuck) and not clean.finding.startswith(stuck)
    assert callable(ctx.__dict__["spans"])  # no span was read


def test_a_load_invalidates_the_kept_table(store):
    before = loop_table(store).to_pandas()
    _poison(_kept(store)[0])
    store.load([TAU2])
    after = loop_table(aiscale.TraceStore(store.root)).to_pandas().set_index("trace_id")
    assert len(after) > len(before)
    pd.testing.assert_series_equal(after.loc[before["trace_id"], "tool_repeats"].reset_index(drop=True),
                                   before["tool_repeats"], check_names=False, check_exact=True)
    _assert_table_is_the_library(pa.Table.from_pandas(after.reset_index()),
                                 store.spans(columns=list(REPORT_SPAN_COLUMNS)))


def test_another_or_edited_sheet_and_another_window_are_other_keys(store, tmp_path):
    clean = loop_table(store).to_pandas()
    _poison(_kept(store)[0])
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("model,discount\n*,0.5\n")
    for prices in (sheet, sheet):
        got = loop_table(store, prices=prices).to_pandas()
        pd.testing.assert_frame_equal(got, clean, check_exact=True)  # not the poisoned file
        sheet.write_text("model,discount\n*,0.25\n")  # the same path, edited: another key again
    assert len(_kept(store)) == 3
    facts = store.facts()
    start = facts["started_at"].min() + (facts["started_at"].max() - facts["started_at"].min()) / 2
    window = loop_table(store, since=start)
    assert len(_kept(store)) == 4 and 0 < window.num_rows < len(clean)
    with store.connect(days=window_days(start, None)[2]) as con:  # the window's day parts, as its facts
        spans = read_spans(con, list(REPORT_SPAN_COLUMNS))
    _assert_table_is_the_library(window, spans)  # not the poisoned file, nor the whole store's
    ctx = open_context(store.root, since=start.isoformat())
    assert sections_loops.pathologies(ctx).status == "finding"
    assert sections_analysis.latency(ctx).status == "finding"


def test_a_damaged_or_incomplete_file_is_computed_again(store):
    fresh = loop_table(store).to_pandas()
    _kept(store)[0].write_bytes(b"PAR1 not parquet")
    pd.testing.assert_frame_equal(loop_table(store).to_pandas(), fresh, check_exact=True)
    path = _kept(store)[0]
    pq.write_table(pq.read_table(path).drop_columns(["tool_busy_s"]), path)  # a file of another layout
    pd.testing.assert_frame_equal(loop_table(store).to_pandas(), fresh, check_exact=True)
    pd.testing.assert_frame_equal(pq.read_table(_kept(store)[0]).to_pandas(), fresh, check_exact=True)  # kept again


def test_a_context_opened_without_spans_reads_no_kept_span_table(store):
    from aiscale.report import sections_money

    ctx = open_context(store.root, with_spans=False)
    assert sections_loops.pathologies(ctx).status == "why not"
    assert list(sections_money.attribution(ctx).table.columns)[0] == "outcome"  # by outcome only
    assert _kept(store) == []
