"""The rollup's SQL shipped in the package: what Ibis compiles now, used for every variant a store
asks for, and a variant it does not hold (or a changed source) compiled afresh to the same facts."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.facts import compiled, rollup_sql
from aiscale.facts.compiled import variant_id
from aiscale.facts.generate_sql import TARGET, generate, variants
from aiscale.facts.on_duckdb import rollup_on_duckdb as unsorted_rollup

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    return aiscale.load([DEMO], store=tmp_path_factory.mktemp("demo") / "s")


def test_the_shipped_module_is_what_ibis_compiles_from_the_current_sources():
    entries = list(variants())
    stale = "aiscale/facts/rollup_sql.py is stale: run `.venv/bin/python -m aiscale.facts.generate_sql`"
    assert rollup_sql.SOURCE_DIGEST == compiled.source_digest(), stale
    # the same variants (keys and input types), labels and result schemas whatever compiles them
    assert {variant_id(key, inputs): (label, schema) for label, key, inputs, (_, schema) in entries} \
        == {vid: (label, schema) for vid, (label, _, schema) in rollup_sql.QUERIES.items()}, stale
    if rollup_sql.GENERATED_WITH == compiled.compiler_versions():
        assert generate(entries) == TARGET.read_text(), stale
    # else another Ibis or sqlglot writes other text for the same query: the test below runs
    # each shipped text and compares its facts with a fresh compile's
    labels = sorted(label for label, _, _ in rollup_sql.QUERIES.values())
    assert len(labels) == 25 and labels[-1] == "rollup, dedupe=True, rates=True, lost=True"  # and 2 x 2 x 2 rollups
    assert sum(label.startswith("rollup from parts") for label in labels) == 8  # as many from the parts
    assert sum(label.startswith("part ") for label in labels) == 8  # and 4 parts, with and without dedupe


def _no_compiling(monkeypatch):
    def refuse(con, build):
        raise AssertionError("compiled, though the SQL is shipped")

    monkeypatch.setattr(compiled, "compile_ibis", refuse)


@pytest.mark.parametrize(("dedupe", "rated", "lost"), list(itertools.product((False, True), repeat=3)))
def test_each_shipped_variant_runs_without_compiling_and_gives_the_facts_of_a_fresh_compile(
        demo_store, dedupe, rated, lost, tmp_path, monkeypatch):
    parts = {name: demo_store.parts(name) for name in ("spans", "traces")}
    rates = demo_store.rates() if rated else None
    first = demo_store.traces()["trace_id"].iloc[0]
    lost_calls = pd.DataFrame({"trace_id": [first], "lost_llm_calls": [3]}) if lost else None
    monkeypatch.setenv("AISCALE_CACHE_DIR", str(tmp_path / "cache"))
    with compiled.compiling_afresh():
        fresh = rollup_on_duckdb(parts, rates, dedupe=dedupe, lost=lost_calls)
    _no_compiling(monkeypatch)
    shipped = rollup_on_duckdb(parts, rates, dedupe=dedupe, lost=lost_calls)
    pd.testing.assert_frame_equal(shipped, fresh, check_exact=True)
    if rated:
        assert shipped["cost_usd"].notna().mean() > 0.5
    else:  # no rates: every call unpriced
        assert (shipped["unpriced_llm_calls"] >= shipped["n_llm_calls"]).all()
    if lost:
        assert shipped.loc[shipped.trace_id == first, "unpriced_llm_calls"].item() >= 3
        assert pd.isna(shipped.loc[shipped.trace_id == first, "cost_usd"].item())


def test_a_variant_not_shipped_is_compiled_and_gives_the_same_facts(demo_store, tmp_path, monkeypatch):
    parts = {name: demo_store.parts(name) for name in ("spans", "traces")}
    rates = demo_store.rates()
    expected = rollup_on_duckdb(parts, rates)  # shipped
    calls = []
    monkeypatch.setattr(compiled, "compile_ibis", lambda con, build: calls.append(1) or compile_ibis(con, build))
    monkeypatch.setenv("AISCALE_CACHE_DIR", str(tmp_path / "cache"))
    noted = rates.assign(note="negotiated")  # one more column: other input types than shipped
    pd.testing.assert_frame_equal(rollup_on_duckdb(parts, noted), expected, check_exact=True)
    assert calls == [1]


def test_sources_changed_since_the_module_was_written_are_compiled_afresh(demo_store, tmp_path, monkeypatch):
    parts = {name: demo_store.parts(name) for name in ("spans", "traces")}
    rates = demo_store.rates()
    expected = rollup_on_duckdb(parts, rates)
    calls = []
    monkeypatch.setattr(compiled, "compile_ibis", lambda con, build: calls.append(1) or compile_ibis(con, build))
    monkeypatch.setenv("AISCALE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(rollup_sql, "SOURCE_DIGEST", "the digest of older sources")
    pd.testing.assert_frame_equal(rollup_on_duckdb(parts, rates), expected, check_exact=True)
    assert calls == [1, 1]  # the repeated-traces query and the rollup


compile_ibis = compiled.compile_ibis


def rollup_on_duckdb(*args, **kwargs) -> pd.DataFrame:
    return unsorted_rollup(*args, **kwargs).sort_values("trace_id", ignore_index=True)


def test_a_rate_table_without_providers_has_the_shipped_input_types(demo_store, tmp_path, monkeypatch):
    """Text of nulls only is text (not Arrow's null type), so such a sheet's rates are served too."""
    parts = {name: demo_store.parts(name) for name in ("spans", "traces")}
    rates = demo_store.rates().assign(provider=None, matched_model=None)
    monkeypatch.setenv("AISCALE_CACHE_DIR", str(tmp_path / "cache"))
    with compiled.compiling_afresh():
        fresh = rollup_on_duckdb(parts, rates)
    _no_compiling(monkeypatch)
    pd.testing.assert_frame_equal(rollup_on_duckdb(parts, rates), fresh, check_exact=True)
