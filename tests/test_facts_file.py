"""``aiscale facts`` to Parquet without pandas: the command imports neither pandas nor pyarrow.compute
and writes the store's facts; its rate table, rate keys and the facts file's shipped schema against
their pandas constructions."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import aiscale
from aiscale.facts import compiled
from aiscale.facts.frame import pandas_parquet_schema, parquet_schema
from aiscale.facts.on_duckdb import duckdb_connection, rates_arrow
from aiscale.pricing.rates import rate_table
from aiscale.store import facts_file
from aiscale.store.facts_file import (
    KEYS_SQL,
    RATE_SCHEMA,
    genai_rate_table,
    genai_rates_ahead,
    in_background,
    rate_keys,
    store_rates,
)

TREE = str(Path(aiscale.__file__).resolve().parents[1])
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
FACTS = """
import sys
from aiscale.cli.main import main
code = main(["facts", "--store", sys.argv[1], "-o", sys.argv[2]])
print(code, "pandas" in sys.modules, "pyarrow.compute" in sys.modules)
"""


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    return aiscale.load([DEMO], store=tmp_path_factory.mktemp("demo") / "s")


def test_the_facts_command_imports_no_pandas_and_writes_the_stores_facts(demo_store, tmp_path):
    out, cache = tmp_path / "facts.parquet", tmp_path / "cache"
    env = {"PYTHONPATH": TREE, "PATH": "/usr/bin:/bin", "AISCALE_CACHE_DIR": str(cache), "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", FACTS, str(demo_store.root), str(out)], env=env,
                          capture_output=True, text=True, check=True)
    assert done.stdout.split()[-3:] == ["0", "False", "False"]  # neither pandas nor Arrow's compute functions
    assert pq.read_schema(out).equals(pandas_parquet_schema(), check_metadata=True)
    facts = demo_store.facts()  # the library's frame, rolled up again (the CLI's file is not kept)
    assert len(facts) == 240 and facts["cost_usd"].notna().all()
    pd.testing.assert_frame_equal(pd.read_parquet(out), facts, check_exact=True)


def _keys(demo_store) -> pa.Table:
    con = duckdb_connection()
    try:
        found = rate_keys(demo_store.parts("spans"), False, con)
    finally:
        con.close()
    extra = pa.table({"provider": [None, "openrouter", "openai", "nobody"],
                      "model": ["gpt-4o-2024-08-06", "google/gemini-3-pro-preview", "gpt-4o", "no-such-model"],
                      "day": [dt.date(2025, 1, 1), dt.date(2025, 11, 19), dt.date(2024, 6, 1), dt.date(2025, 1, 1)],
                      "n_calls": [1, 2, 3, 4]})
    return pa.concat_tables([found, extra.cast(found.schema)])


def test_the_rate_table_from_genai_prices_alone_is_the_pandas_rate_table(demo_store):
    keys = _keys(demo_store)
    assert keys.num_rows > 20  # the demo's three models over its days, and four more
    order = [(c, "ascending") for c in ("provider", "model", "day", "min_input_tokens")]
    lean = genai_rate_table(keys)
    expected = rates_arrow(rate_table(keys.to_pandas())).select(RATE_SCHEMA.names)
    assert lean.schema == RATE_SCHEMA == expected.schema.remove_metadata()
    assert lean.sort_by(order).to_pylist() == expected.sort_by(order).to_pylist()
    assert "no-such-model" not in lean.column("model").to_pylist()  # unknown: no row, so unpriced
    assert genai_rate_table(keys.filter(pa.compute.equal(keys.column("model"), "no-such-model"))) is None


def test_the_rate_keys_day_is_the_utc_date_of_the_start():
    stamps = ["1969-12-31 23:59:59.999999", "1970-01-01 00:00:00", "1900-03-01 12:00:00",
              "2025-06-02 00:00:00", "2025-06-02 23:59:59.999999", "2025-06-03 00:00:00.000001",
              "2262-04-11 23:47:16.854775", None]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE spans AS SELECT CAST(s AS TIMESTAMPTZ) AS start_time, 'llm' AS kind, "
                "'p' AS provider, s AS model FROM (SELECT unnest(?::VARCHAR[]) AS s)", [stamps])
    got = con.sql(f"SELECT model, day FROM ({KEYS_SQL})").fetchall()
    expected = con.sql("SELECT model, CAST(start_time AS DATE) FROM spans").fetchall()
    assert sorted(got, key=str) == sorted(expected, key=str)
    assert (None, None) in got and ("1969-12-31 23:59:59.999999", dt.date(1969, 12, 31)) in got


def test_the_shipped_facts_schema_is_what_pandas_writes(monkeypatch):
    assert parquet_schema().equals(pandas_parquet_schema(), check_metadata=True)
    assert compiled.shipped_parquet_schema().equals(pandas_parquet_schema(), check_metadata=True)
    with compiled.compiling_afresh():
        assert compiled.shipped_parquet_schema() is None
    monkeypatch.setattr(compiled, "parquet_versions", lambda: {"pandas": "0.1", "pyarrow": "1.0"})
    assert compiled.shipped_parquet_schema() is None  # another pandas: its metadata is made afresh


def test_the_rates_looked_up_in_the_background_are_the_ones_looked_up_in_line(demo_store):
    parts = demo_store.parts("spans")
    waiting = genai_rates_ahead(parts, False)
    order = [(c, "ascending") for c in ("provider", "model", "day", "min_input_tokens")]
    in_line = store_rates(parts, False)
    assert in_line.num_rows > 20
    assert waiting().sort_by(order).to_pylist() == in_line.sort_by(order).to_pylist()
    assert genai_rates_ahead([], False) is None


def test_an_error_in_the_background_lookup_is_raised_in_the_caller(demo_store, tmp_path, monkeypatch):
    def broken(keys):
        raise ValueError("genai-prices could not be read")

    monkeypatch.setattr(facts_file, "genai_rate_table", broken)
    shutil.rmtree(demo_store.root / "cache", ignore_errors=True)  # no facts kept: they are rolled up
    with pytest.raises(ValueError, match="genai-prices could not be read"):
        facts_file.export_facts_parquet(demo_store.root, tmp_path / "facts.parquet")
    assert not (tmp_path / "facts.parquet").exists()
    with pytest.raises(ZeroDivisionError):
        in_background(lambda: 1 / 0)()


def test_a_stores_rates_are_looked_up_while_the_parts_that_need_none_roll_up(demo_store, tmp_path, monkeypatch):
    """``TraceStore.facts`` hands its rate table (shared with the calls) as a function: it is
    called in the background as the roll-up starts, not before it (genai-prices holds the GIL)."""
    from aiscale.facts import on_duckdb

    parts_done, seen = threading.Event(), []
    rate_free = on_duckdb.rate_free_tables

    def marking(*args, **kwargs):
        made = rate_free(*args, **kwargs)
        parts_done.set()
        return made

    def rates():
        seen.append(parts_done.wait(timeout=20))  # in line (before the roll-up) it would wait in vain
        return demo_store.rates()

    monkeypatch.setattr(on_duckdb, "rate_free_tables", marking)
    shutil.rmtree(demo_store.root / "cache", ignore_errors=True)
    facts_file.export_facts_parquet(demo_store.root, tmp_path / "ahead.parquet", rates=rates)
    assert seen == [True]
    shutil.rmtree(demo_store.root / "cache", ignore_errors=True)
    facts_file.export_facts_parquet(demo_store.root, tmp_path / "in-line.parquet")
    assert pq.read_table(tmp_path / "ahead.parquet").equals(pq.read_table(tmp_path / "in-line.parquet"))


def test_a_store_whose_models_genai_prices_does_not_know_has_its_calls_unpriced(demo_store, tmp_path, monkeypatch):
    monkeypatch.setattr(facts_file, "genai_rate_table", lambda keys: None)  # no key known
    shutil.rmtree(demo_store.root / "cache", ignore_errors=True)
    out = facts_file.export_facts_parquet(demo_store.root, tmp_path / "facts.parquet")
    facts = pq.read_table(out).to_pandas()
    assert len(facts) == 240 and facts["cost_usd"].isna().all()
    assert (facts["unpriced_llm_calls"] == facts["n_llm_calls"]).all()
    shutil.rmtree(demo_store.root / "cache")  # these facts were kept: not for the other tests
