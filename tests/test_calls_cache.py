"""The priced LLM calls kept beside the facts (``STORE/cache/calls-<key>.arrow``) are the calls
pricing the store's spans afresh gives, to the last bit; they are never served after a load, for
another or an edited price sheet, or for another window, nor when the file is damaged; spans
take their prices from them only when the calls line up with the spans read."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from kept_files import double_costs, kept_files, read_kept, write_kept

import aiscale
from aiscale.analysis.spend.calls import llm_calls
from aiscale.pricing.rates import COST_PARTS
from aiscale.report import shared_calls
from aiscale.report.context import open_context
from aiscale.store import calls_read, facts_cache
from aiscale.store.span_read import read_spans

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
CLAUDE = REAL / "claude-code-sessions" / "packmind-context-evaluator-entire"  # cache reads and writes
TAU2 = REAL / "tau2-bench-results" / "gpt-4.1_airline_default_gpt-4.1_1trials.json"  # reported costs
SHEET = pd.DataFrame({"model": ["claude-haiku*"], "discount": [0.3]})
PRICE_COLUMNS = ["cost_usd", "priced", *COST_PARTS]
SPAN_COLUMNS = ["trace_id", "span_id", "kind", "start_time", "provider", "model", "status",
                "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"]


def _cached(store) -> list[Path]:
    return kept_files(store, "calls")


def _afresh(store, prices=None) -> pd.DataFrame:
    """The store's LLM calls priced from their spans by ``price_frame``, not read from any cache."""
    spans = store.spans(columns=SPAN_COLUMNS, priced=False)
    return llm_calls(spans, prices=prices, parts=True)


@pytest.fixture
def store(tmp_path):
    return aiscale.load([CLAUDE], store=tmp_path / "s.store")


def test_kept_calls_are_the_calls_priced_afresh_and_are_what_is_read(store):
    kept = llm_calls(store, prices=SHEET, parts=True)
    assert len(_cached(store)) == 1 and (kept["cache_read_tokens"] > 0).any()
    fresh = _afresh(store, prices=SHEET)
    assert len(kept) == len(fresh) > 50 and kept["model"].str.startswith("claude-haiku").any()
    for column in ["trace_id", "span_id", *PRICE_COLUMNS]:
        pd.testing.assert_series_equal(kept[column], fresh[column], check_dtype=False, check_exact=True)
    double_costs(_cached(store)[0])
    again = llm_calls(aiscale.TraceStore(store.root), prices=SHEET)  # a new handle: the file is read
    assert again["cost_usd"].sum() == pytest.approx(2 * kept["cost_usd"].sum())


def test_a_load_invalidates_the_kept_calls(store):
    before = llm_calls(store)
    double_costs(_cached(store)[0])
    store.load([TAU2])
    after = llm_calls(store)
    assert len(after) > len(before) and after["reported_cost_usd"].notna().any()
    kept = after.loc[after["trace_id"].isin(before["trace_id"]), "cost_usd"].reset_index(drop=True)
    pd.testing.assert_series_equal(kept, before["cost_usd"], check_exact=True)  # read again, not the poisoned file


def test_another_or_edited_sheet_and_another_window_are_other_keys(store, tmp_path):
    listed = llm_calls(store)
    double_costs(_cached(store)[0])
    store = aiscale.TraceStore(store.root)  # nothing remembered: only files
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("model,discount\n*,0.5\n")
    assert llm_calls(store, prices=sheet)["cost_usd"].sum() == pytest.approx(listed["cost_usd"].sum() / 2)
    sheet.write_text("model,discount\n*,0.25\n")  # the same path, edited
    assert llm_calls(store, prices=sheet)["cost_usd"].sum() == pytest.approx(listed["cost_usd"].sum() * 0.75)
    start = store.facts()["started_at"].min()
    window = store.calls(since=start, until=start + pd.Timedelta(days=1))
    assert 0 < window.num_rows < len(listed) and len(_cached(store)) == 4
    assert pa.compute.sum(window["cost_usd"]).as_py() < listed["cost_usd"].sum()  # not the poisoned file


def test_the_rates_are_looked_up_once_per_store_state_and_sheet(store, tmp_path):
    """The facts and the kept calls of one handle share one rate look-up; a load, another sheet
    or the same sheet edited looks the rates up again in that handle."""
    first = store.rates()
    assert store.rates() is first and len(first) and first["model"].str.startswith("claude").all()
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("model,discount\n*,0.5\n")
    halved = store.rates(prices=sheet)
    assert halved["input_usd_per_token"].sum() == pytest.approx(first["input_usd_per_token"].sum() / 2)
    sheet.write_text("model,discount\n*,0.25\n")  # the same path, edited
    edited = store.rates(prices=sheet)
    assert edited["input_usd_per_token"].sum() == pytest.approx(first["input_usd_per_token"].sum() * 0.75)
    store.load([TAU2])
    loaded = store.rates()
    assert loaded is not first and loaded["model"].str.startswith("gpt-4.1").any()
    assert store.facts()["cost_usd"].notna().sum() > len(first)


def test_a_damaged_or_incomplete_file_is_read_again(store):
    fresh = llm_calls(store, parts=True)
    _cached(store)[0].write_bytes(b"ARROW1 not an Arrow file")
    pd.testing.assert_frame_equal(llm_calls(aiscale.TraceStore(store.root), parts=True), fresh, check_exact=True)
    path = _cached(store)[0]
    write_kept(read_kept(path).drop_columns(["cost_usd"]), path)  # a file of another layout
    pd.testing.assert_frame_equal(llm_calls(aiscale.TraceStore(store.root), parts=True), fresh, check_exact=True)
    path = _cached(store)[0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # cut short
    pd.testing.assert_frame_equal(llm_calls(aiscale.TraceStore(store.root), parts=True), fresh, check_exact=True)


def test_spans_take_the_kept_prices_only_when_the_calls_line_up(store):
    priced = store.spans(columns=SPAN_COLUMNS, prices=SHEET)
    with store.connect() as con:  # priced in the read's own SQL, no calls handed over
        in_sql = read_spans(con, SPAN_COLUMNS, priced=True, rates=store.rates(prices=SHEET))
    pd.testing.assert_frame_equal(priced, in_sql, check_exact=True)
    assert priced.loc[priced["kind"] != "llm", "cost_usd"].isna().all()
    calls = store.calls(prices=SHEET)
    some = calls.filter(pa.compute.equal(calls["trace_id"], calls["trace_id"][0]))
    with store.connect() as con:  # calls of one trace only: they do not line up, so not used
        fallback = read_spans(con, SPAN_COLUMNS, priced=True, rates=store.rates(prices=SHEET), calls=some)
    pd.testing.assert_frame_equal(fallback, in_sql, check_exact=True)


def test_a_report_window_reads_its_days_calls_and_they_sum_to_its_facts(store):
    facts = store.facts()
    start = facts["started_at"].min() + (facts["started_at"].max() - facts["started_at"].min()) / 2
    ctx = open_context(store.root, since=start.isoformat(), with_spans=False)
    assert 0 < len(ctx.facts) < len(facts)
    calls = shared_calls.calls_of(ctx)
    assert set(calls["trace_id"]) <= set(ctx.facts["trace_id"])
    assert calls["cost_usd"].sum() == pytest.approx(ctx.facts["cost_usd"].sum(), rel=1e-12)
    assert calls.groupby("trace_id")["variant"].nunique().max() == 1  # each call labelled as its trace
    whole = shared_calls.calls_of(open_context(store.root, with_spans=False))
    assert len(whole) > len(calls) and whole["cost_usd"].sum() > calls["cost_usd"].sum()


def test_each_call_carries_its_traces_labels_as_a_left_join_gives_them(store):
    """The labels attached by one Arrow look-up equal DuckDB's left join of the calls to the
    merged trace rows, project (from the sessions' cwd) included; a call of a trace without a
    trace row, or without a trace id, gets nulls."""
    calls = store.calls()
    with store.connect() as con:
        expected = con.sql(
            "SELECT s.trace_id, s.span_id, t.variant, t.session_id, t.task_id, "
            "coalesce(json_extract_string(t.metadata, '$.project'), json_extract_string(t.metadata, '$.cwd')) "
            "AS project FROM spans s LEFT JOIN (SELECT trace_id, max(variant) AS variant, max(session_id) AS "
            "session_id, max(task_id) AS task_id, arg_max(metadata, length(metadata)) AS metadata FROM traces "
            "GROUP BY trace_id) t USING (trace_id) WHERE s.kind = 'llm'").df()
    got = calls.select(["trace_id", "span_id", "variant", "session_id", "task_id", "project"]).to_pandas()
    merged = got.merge(expected, on=["trace_id", "span_id"], suffixes=("", "_sql"), validate="one_to_one")
    assert len(merged) == len(got) == len(expected) and merged["project"].notna().all()
    for label in ("variant", "session_id", "task_id", "project"):
        mine, joined = (merged[c].astype(object).where(merged[c].notna(), None).tolist() for c in (label, f"{label}_sql"))
        assert mine == joined, label
    assert merged["session_id"].notna().all() and merged["session_id"].nunique() > 1
    ids = pa.table({"trace_id": ["a", None, "zz", "a"], "span_id": ["1", "2", "3", "4"]})
    labels = pa.table({"trace_id": ["a", "b", None], "variant": ["va", "vb", "vnull"]})
    out = calls_read._labelled(ids, labels, at=1)
    assert out.column_names == ["trace_id", "variant", "span_id"]
    assert out["variant"].to_pylist() == ["va", None, None, "va"]  # null ids match nothing, as in SQL


def test_the_file_is_written_after_the_calls_are_handed_over_and_one_thread_builds_the_same(store, monkeypatch):
    """The store's lock on its calls is free while the kept file is written (a thread waiting for
    the calls takes them meanwhile), and the file is there when the call returns; built with one
    DuckDB thread the calls are the same, to the bit."""
    lock, seen = store.reading("calls"), []
    write = facts_cache.write_cached

    def held_elsewhere() -> bool:  # whether another thread could take the lock now
        free = []

        def probe() -> None:
            if lock.acquire(blocking=False):
                free.append(True)
                lock.release()

        prober = threading.Thread(target=probe)
        prober.start()
        prober.join()
        return not free

    def watched(*args, **kwargs):
        seen.append(held_elsewhere())
        return write(*args, **kwargs)

    monkeypatch.setattr(facts_cache, "write_cached", watched)
    built = store.calls()
    assert seen == [False] and len(_cached(store)) == 1
    one = aiscale.TraceStore(store.root)
    _cached(store)[0].unlink()
    assert one.calls(threads=1).equals(built) and seen == [False, False]


def test_the_facts_are_known_kept_only_for_the_state_sheet_and_days_they_were_rolled_up_for(store, tmp_path):
    assert not facts_cache.facts_kept(store.root)
    store.facts()
    assert facts_cache.facts_kept(store.root)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("model,discount\n*,0.5\n")
    assert not facts_cache.facts_kept(store.root, sheet)
    assert not facts_cache.facts_kept(store.root, None, ("2025-01-01", "2025-01-02"))
    store.load([TAU2])
    assert not facts_cache.facts_kept(store.root)
