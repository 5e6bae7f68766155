"""The rollup's SQL is compiled once per fingerprint and read back: same facts, no Ibis import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.facts import compiled
from aiscale.facts.on_duckdb import (
    RATE_FREE_PARTS,
    duckdb_backend,
    lost_arrow,
    rates_arrow,
    register,
    rollup_on_duckdb,
)
from aiscale.facts.rollup import rollup

TREE = str(Path(aiscale.__file__).resolve().parents[1])
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
FACTS = """
import contextlib, sys
from aiscale.cli.main import main
from aiscale.facts.compiled import compiling_afresh
with compiling_afresh() if sys.argv[3] == "afresh" else contextlib.nullcontext():
    code = main(["facts", "--store", sys.argv[1], "-o", sys.argv[2]])
print("ibis" in sys.modules, "sqlglot" in sys.modules)
"""


def _facts_cli(store: Path, out: Path, cache: Path, *, shipped: bool = False) -> list[str]:
    """``aiscale facts`` in a fresh process: whether it imported Ibis and sqlglot. Unless
    ``shipped``, the shipped SQL is not used (the cache folder's queries, else Ibis)."""
    env = {"PYTHONPATH": TREE, "PATH": "/usr/bin:/bin", "AISCALE_CACHE_DIR": str(cache),
           "HOME": str(cache.parent)}
    done = subprocess.run([sys.executable, "-c", FACTS, str(store), str(out), "shipped" if shipped else "afresh"],
                          env=env, capture_output=True, text=True, check=True)
    return done.stdout.split()[-2:]


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    return aiscale.load([DEMO], store=tmp_path_factory.mktemp("demo") / "s")


def test_the_second_facts_command_reads_the_compiled_query_and_imports_no_ibis(demo_store, tmp_path):
    cache = tmp_path / "cache"
    assert _facts_cli(demo_store.root, tmp_path / "first.parquet", cache) == ["True", "True"]
    kept = list(cache.glob("query-*.json"))
    # the parts of the rollup that read no rates, then the rollup from them
    assert len(kept) == len(RATE_FREE_PARTS) + 1
    assert all("SELECT" in json.loads(entry.read_text())["sql"] for entry in kept)
    assert _facts_cli(demo_store.root, tmp_path / "second.parquet", cache) == ["False", "False"]
    assert (tmp_path / "first.parquet").read_bytes() == (tmp_path / "second.parquet").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "second.parquet"), demo_store.facts(),
                                  check_exact=True)


def test_the_first_facts_command_on_a_fresh_machine_takes_the_shipped_sql(demo_store, tmp_path):
    cache = tmp_path / "cache"  # nothing compiled on this machine yet
    assert _facts_cli(demo_store.root, tmp_path / "shipped.parquet", cache, shipped=True) == ["False", "False"]
    assert not list(cache.glob("query-*.json"))  # nothing compiled, nothing kept
    _facts_cli(demo_store.root, tmp_path / "compiled.parquet", tmp_path / "other", shipped=False)
    assert (tmp_path / "shipped.parquet").read_bytes() == (tmp_path / "compiled.parquet").read_bytes()


def _ibis_rollup(parts, rates, *, dedupe, lost=None):
    """The rollup run by Ibis itself, as before the cache."""
    con = duckdb_backend()
    spans = con.read_parquet(parts["spans"], table_name="spans_src")
    traces = con.read_parquet(parts["traces"], table_name="traces_src")
    rates_t = register(con, "rates", rates_arrow(rates))
    lost_t = register(con, "lost", lost_arrow(lost)) if lost is not None else None
    return rollup(spans, traces, rates_t, dedupe=dedupe, lost=lost_t).to_pyarrow().to_pandas()


@pytest.mark.parametrize("dedupe", [False, True])
def test_cached_and_fresh_queries_give_what_ibis_gives_for_each_set_of_options(demo_store, dedupe,
                                                                               tmp_path, monkeypatch):
    parts = {name: demo_store.parts(name) for name in ("spans", "traces")}
    rates = demo_store.rates()
    first = demo_store.facts()["trace_id"].iloc[0]
    lost = pd.DataFrame({"trace_id": [first], "lost_llm_calls": [2]})
    expected = _ibis_rollup(parts, rates, dedupe=dedupe, lost=lost).sort_values("trace_id", ignore_index=True)
    monkeypatch.setenv("AISCALE_CACHE_DIR", str(tmp_path / "cache"))
    with compiled.compiling_afresh():  # not the shipped SQL: the cache folder's
        for _ in range(2):  # compiled, then read back
            got = rollup_on_duckdb(parts, rates, dedupe=dedupe, lost=lost).sort_values("trace_id", ignore_index=True)
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
            assert got.loc[got.trace_id == first, "unpriced_llm_calls"].item() >= 2
        kept = set((tmp_path / "cache").glob("query-*.json"))
        assert len(kept) == (2 if dedupe else 1)  # with dedupe the repeated-traces query too
        without_lost = rollup_on_duckdb(parts, rates, dedupe=dedupe)  # other options: another query
        assert len(set((tmp_path / "cache").glob("query-*.json"))) == len(kept) + 1
    assert without_lost.cost_usd.notna().sum() > got.cost_usd.notna().sum()


def test_a_cache_that_cannot_be_written_or_read_is_skipped(demo_store, tmp_path, monkeypatch):
    monkeypatch.setattr(compiled, "_shipped_off", [True])  # the cache folder's queries, not the shipped SQL
    expected = demo_store.facts()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("AISCALE_CACHE_DIR", str(blocked))
    pd.testing.assert_frame_equal(demo_store.facts(), expected, check_exact=True)
    broken = tmp_path / "broken"
    monkeypatch.setenv("AISCALE_CACHE_DIR", str(broken))
    demo_store.facts()
    for entry in broken.glob("query-*.json"):
        entry.write_text("{not json")  # damaged entries are compiled again and replaced
    pd.testing.assert_frame_equal(demo_store.facts(), expected, check_exact=True)
    assert all(json.loads(entry.read_text())["sql"] for entry in broken.glob("query-*.json"))
    for entry in broken.glob("query-*.json"):  # a query others could have written is not run
        entry.write_text(json.dumps({**json.loads(entry.read_text()), "sql": "SELECT 1 AS trace_id"}))
        entry.chmod(0o666)
    pd.testing.assert_frame_equal(demo_store.facts(), expected, check_exact=True)
    assert all(entry.stat().st_mode & 0o022 == 0 for entry in broken.glob("query-*.json"))


def test_the_fingerprint_follows_the_inputs_and_the_code(tmp_path):
    import duckdb
    import pyarrow as pa

    con = duckdb.connect()
    con.register("numbers", pa.table({"x": [1, 2]}))
    key = compiled.fingerprint({"query": "q"}, compiled.input_types(con, ["numbers"]))
    assert compiled.fingerprint({"query": "q"}, compiled.input_types(con, ["numbers"])) == key
    assert compiled.fingerprint({"query": "q", "dedupe": True}, compiled.input_types(con, ["numbers"])) != key
    con.register("numbers", pa.table({"x": pa.array([1.0, 2.0])}))  # same name, other type
    assert compiled.fingerprint({"query": "q"}, compiled.input_types(con, ["numbers"])) != key
    assert len(compiled.code_fingerprint()) == 64
