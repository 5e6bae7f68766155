"""Facts streamed in record batches: the same rows as the whole-table rollup (span-less fact
rows merged in, sorted by trace), a Parquet export that reads back as the facts frame, and a
DuckDB memory cap that does not depend on the store's size."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import aiscale
from aiscale import schema
from aiscale.facts import on_duckdb
from aiscale.facts.frame import finish_table, parquet_schema
from aiscale.store import checks, facts_cache

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
BOARD = REAL / "swebench-bash-only-leaderboard" / "leaderboards.json"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Demo spans plus span-less leaderboard rows, one of them under a demo trace's id."""
    folder = tmp_path_factory.mktemp("stream")
    store = aiscale.load([DEMO], store=folder / "s")
    clash = folder / "clash.csv"
    first = store.sql("SELECT min(trace_id) AS t FROM spans")["t"].iloc[0]
    clash.write_text(f"instance_id,resolved\n{first},true\n")
    store.load([BOARD])
    facts = store.root / "facts"
    extra = aiscale.load_facts(clash, columns={"instance_id": "trace_id", "resolved": "success"})
    pq.write_table(schema.conform(extra, "facts"), facts / "clash.parquet")
    manifest = store.manifest()
    manifest["files"]["clash"] = {"path": str(clash), "parts": {"facts": ["clash.parquet"]}}
    store.write_manifest(manifest)
    return store


def _inputs(store):
    parts = {name: store.parts(name) for name in ("spans", "traces")}
    stored = store.sql("SELECT * FROM facts_raw")
    return parts, store.rates(), store.lost_llm_calls(), stored


def test_batches_equal_the_whole_table_rollup_with_stored_rows_merged(store):
    parts, rates, lost, stored = _inputs(store)
    assert len(stored) > 100 and stored["trace_id"].isin(store.sql("SELECT trace_id FROM spans")["trace_id"]).any()
    whole = finish_table(on_duckdb.rollup_on_duckdb(parts, rates, dedupe=False, lost=lost), stored)
    batches = list(on_duckdb.rollup_batches(parts, rates, dedupe=False, lost=lost,
                                            stored=schema.conform(stored, "facts"), batch_rows=50))
    assert len(batches) > 5 and max(b.num_rows for b in batches) <= 50
    streamed = pa.Table.from_batches(batches)
    assert streamed.schema.equals(parquet_schema().remove_metadata())  # the facts schema, text as large strings
    assert [f.name for f in streamed.schema] == list(schema.FACT_COLUMNS)
    pd.testing.assert_frame_equal(streamed.to_pandas(), whole.to_pandas(), check_exact=True)
    frame = streamed.to_pandas()
    assert frame["trace_id"].is_monotonic_increasing
    clash = frame.loc[frame["trace_id"].duplicated(keep=False)]
    assert len(clash) == 2 and clash["n_llm_calls"].notna().tolist() == [True, False]  # rolled-up row first


@pytest.mark.parametrize(("dedupe", "rated", "lost"), list(itertools.product((False, True), repeat=3)))
def test_the_rollup_from_its_rate_free_parts_gives_the_facts_of_the_single_query(store, dedupe, rated, lost,
                                                                               monkeypatch):
    parts, rates, _, _ = _inputs(store)
    first = store.sql("SELECT min(trace_id) AS t FROM spans")["t"].iloc[0]
    lost_calls = pd.DataFrame({"trace_id": [first, "no-such-trace"], "lost_llm_calls": [2, 1]}) if lost else None
    whole = finish_table(on_duckdb.rollup_on_duckdb(parts, rates if rated else None, dedupe=dedupe,
                                                    lost=lost_calls))
    steps, compute = [], on_duckdb.rate_free_tables
    monkeypatch.setattr(on_duckdb, "rate_free_tables", lambda *args: steps.append("parts") or compute(*args))

    def later():  # the rates, asked for once the parts that need none are computed
        steps.append("rates")
        return rates if rated else None

    streamed = pa.Table.from_batches(list(on_duckdb.rollup_batches(parts, later, dedupe=dedupe, lost=lost_calls)))
    assert steps == ["parts", "rates"]
    pd.testing.assert_frame_equal(streamed.to_pandas(), whole.to_pandas(), check_exact=True)
    frame = streamed.to_pandas()
    assert frame["cost_usd"].notna().any() == rated
    assert (frame["trace_id"] == "no-such-trace").any() == lost  # a lost call's trace is a fact row


def test_the_parquet_export_reads_back_as_the_facts_frame(store, tmp_path):
    facts = store.facts()
    out = store.export_facts(tmp_path / "facts.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out), facts, check_exact=True)
    assert pq.read_schema(out).equals(pa.Table.from_pandas(facts, preserve_index=False).schema, check_metadata=True)
    start = facts["started_at"].min()
    window = store.export_facts(tmp_path / "window.parquet", since=start, until=start + pd.Timedelta(hours=6))
    expected = store.facts(since=start, until=start + pd.Timedelta(hours=6))
    assert 0 < len(expected) < len(facts)
    pd.testing.assert_frame_equal(pd.read_parquet(window), expected, check_exact=True)


def test_facts_of_a_state_that_changed_meanwhile_are_used_once_and_not_kept(store):
    manifest = facts_cache.manifest_bytes(store.root)
    key = facts_cache.facts_key(manifest + b" ", None, None)
    rows = schema.conform_table(pa.table({"trace_id": ["t"]}), "facts").to_batches()
    with facts_cache.facts_file(store.root, key, manifest + b" ", lambda: rows) as path:
        assert pq.read_table(path).column("trace_id").to_pylist() == ["t"]
    assert not path.exists() and facts_cache.read_cached(store.root, key) is None


def test_the_rollup_and_the_load_checks_run_under_a_fixed_memory_cap(store, monkeypatch):
    caps = []
    connect = on_duckdb.duckdb_connection

    def spy(limit=None):
        con = connect(limit)
        caps.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return con

    monkeypatch.setattr(on_duckdb, "duckdb_connection", spy)
    parts, rates, lost, _ = _inputs(store)
    assert sum(b.num_rows for b in on_duckdb.rollup_batches(parts, rates, lost=lost)) > 200
    with checks.StoreChecks(store.root, store.manifest()) as held:
        caps.append(held.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
    assert caps == ["488.2 MiB", "244.1 MiB"]  # 512 MB and 256 MB, whatever the number of spans


def test_the_facts_file_is_written_once_in_the_exports_row_groups_and_an_export_copies_it(store, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setattr(facts_cache, "BATCH_ROWS", 7)
    parts, rates, lost, stored = _inputs(store)
    manifest = facts_cache.manifest_bytes(store.root)
    key = facts_cache.facts_key(manifest, None, ("row groups", "of 7"))  # a key of its own
    batches = lambda: on_duckdb.rollup_batches(parts, rates, dedupe=False, lost=lost,  # noqa: E731
                                               stored=schema.conform(stored, "facts"), batch_rows=5)
    with facts_cache.facts_file(store.root, key, manifest, batches) as path:
        meta = pq.ParquetFile(path).metadata
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups - 1)] == [7] * (meta.num_row_groups - 1)
        facts_cache.export_parquet(path, tmp_path / "copied.parquet")
        monkeypatch.setattr(facts_cache, "_is_export", lambda source: False)  # written batch by batch
        facts_cache.export_parquet(path, tmp_path / "written.parquet")
    assert (tmp_path / "copied.parquet").read_bytes() == (tmp_path / "written.parquet").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "copied.parquet"), store.facts(), check_exact=True)
