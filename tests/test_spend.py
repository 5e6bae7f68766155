"""Spend over time: per period and group, from a store, spans or facts; unpriced never $0; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aiscale
from aiscale.cli.main import main

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def mini_store(tmp_path_factory):
    return aiscale.load([REAL / "mini-swe-agent-gemini3-verified"],
                        store=tmp_path_factory.mktemp("mini") / "store")


def _spans() -> pd.DataFrame:
    t = pd.to_datetime(["2025-03-30 23:00", "2025-03-31 01:00", "2025-04-01 12:00", "2025-04-07 08:00"],
                       utc=True)
    return pd.DataFrame({"trace_id": ["a", "a", "b", "c"], "kind": "llm", "start_time": t,
                         "provider": ["openai", "openai", "openai", None],
                         "model": ["gpt-4o-2024-08-06"] * 3 + ["in-house"],
                         "session_id": ["s1", "s1", "s2", "s2"],
                         "input_tokens": [1_000_000, 1_000_000, 2_000_000, 10],
                         "output_tokens": [100_000, 0, 0, 10], "cache_read_tokens": [None, 0, 0, None]})


def test_periods_groups_and_unpriced_are_counted_by_hand():
    # gpt-4o 2024-08-06: 2.50 in, 10.00 out per M
    day = aiscale.spend(_spans()).summary()
    assert day["period"].dt.strftime("%m-%d").tolist() == ["03-30", "03-31", "04-01", "04-07"]
    assert day["cost_usd"].tolist()[:3] == pytest.approx([2.5 + 1.0, 2.5, 5.0])
    assert np.isnan(day["cost_usd"].iloc[3]) and day["unpriced_calls"].tolist() == [0, 0, 0, 1]
    assert pd.isna(day["cache_read_tokens"].iloc[0])  # no call reported it: unknown, not 0
    week = aiscale.spend(_spans(), by="week").summary()  # weeks start on Monday (03-31, 04-07)
    assert week["period"].dt.strftime("%m-%d").tolist() == ["03-24", "03-31", "04-07"]
    assert week["calls"].tolist() == [1, 2, 1] and week["traces"].tolist() == [1, 2, 1]
    month = aiscale.spend(_spans(), by="month", group="session").summary()
    month["month"] = month["period"].dt.strftime("%Y-%m")
    assert month[["month", "session_id", "calls"]].values.tolist() == [["2025-03", "s1", 2],
                                                                       ["2025-04", "s2", 2]]
    totals = aiscale.spend(_spans()).totals().set_index("model")
    assert totals.loc["gpt-4o-2024-08-06", "cost_usd"] == pytest.approx(11.0)
    assert np.isnan(totals.loc["in-house", "cost_usd"])


def test_store_spend_equals_the_facts_and_from_facts_by_variant(mini_store):
    facts = mini_store.facts()
    result = aiscale.spend(mini_store, by="day", group="model")
    table = result.summary()
    assert table["calls"].sum() == 1307 and table["unpriced_calls"].sum() == 0
    assert table["cost_usd"].sum() == pytest.approx(facts["cost_usd"].sum(), rel=1e-12)
    by_variant = aiscale.spend(facts, group="variant").summary()
    assert by_variant["cost_usd"].sum() == pytest.approx(facts["cost_usd"].sum(), rel=1e-12)
    assert by_variant["traces"].sum() == 30
    result.plot()
    with pytest.raises(ValueError, match="must be one of"):
        aiscale.spend(mini_store, by="fortnight")
    with pytest.raises(ValueError, match="lacks columns"):
        aiscale.spend(mini_store, group="modle")


def test_cli_table_json_and_csv(mini_store, capsys):
    facts = mini_store.facts()
    assert main(["spend", "--store", str(mini_store.root), "--by", "day", "--group", "model"]) == 0
    out = capsys.readouterr().out
    assert "gemini-3-pro-preview" in out and "$" in out
    assert main(["spend", "--store", str(mini_store.root), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(facts["cost_usd"].sum())
    assert main(["spend", "--store", str(mini_store.root), "--group", "variant", "--csv"]) == 0
    assert capsys.readouterr().out.startswith("period,variant,traces,calls")
    evil = _spans().assign(model="=HYPERLINK(1)")  # a model name a spreadsheet would run
    evil_store = aiscale.load([], store=mini_store.root.parent / "evil")
    from aiscale.sim.simulate import write_parquet
    write_parquet(evil.assign(span_id=["1", "2", "3", "4"]), pd.DataFrame({"trace_id": ["a", "b", "c"]}),
                  mini_store.root.parent / "evil-src")
    evil_store.load([mini_store.root.parent / "evil-src"])
    assert main(["spend", "--store", str(evil_store.root), "--csv"]) == 0
    assert "'=HYPERLINK(1)" in capsys.readouterr().out
    assert main(["spend", "--store", str(mini_store.root), "--since", "2099-01-01"]) == 0
    assert "no LLM calls" in capsys.readouterr().out
    assert main(["spend", "--store", "/nonexistent/store"]) == 2


def test_cli_whatif_matches_the_library(mini_store, capsys):
    expected = aiscale.whatif(mini_store, "gpt-5.1", n_boot=100).summary()
    assert main(["whatif", "--store", str(mini_store.root), "--as", "gpt-5.1", "--n-boot", "100",
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert "Token counts are kept" in record["assumption"]
    totals = {r["scenario"]: r["total_usd"] for r in record["scenarios"]}
    assert totals["as gpt-5.1"] == pytest.approx(expected.set_index("scenario").loc["as gpt-5.1", "total_usd"])
    assert main(["whatif", "--store", str(mini_store.root), "--discount", "0.5", "--n-boot", "50"]) == 0
    assert "discount 0.5" in capsys.readouterr().out
    assert main(["whatif", "--store", str(mini_store.root)]) == 2


def test_a_failed_attempt_without_usage_costs_nothing_in_spend_as_in_facts(tmp_path):
    # one rule, in the pricing stage: the facts, the priced spans and spend agree on it
    spans = pd.DataFrame({
        "trace_id": ["t", "t"], "span_id": ["a", "b"], "kind": ["llm", "llm"], "status": ["error", "ok"],
        "provider": ["openai", "openai"], "model": ["gpt-4o-2024-08-06"] * 2,
        "start_time": pd.to_datetime(["2025-01-01 00:00:00", "2025-01-01 00:00:05"], utc=True),
        "input_tokens": [None, 1_000_000], "output_tokens": [None, 0]})
    path = tmp_path / "spans.parquet"
    spans.to_parquet(path)
    store = aiscale.load(path, store=tmp_path / "s")
    table = aiscale.spend(store, by="day", group="model").summary()
    assert table["unpriced_calls"].sum() == 0
    assert table["cost_usd"].sum() == pytest.approx(2.5) == store.facts()["cost_usd"].iloc[0]
    assert store.spans()["cost_usd"].tolist() == [0.0, pytest.approx(2.5)]
