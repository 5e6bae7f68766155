"""load_facts: per-trace tables (CSV, Parquet, JSON lines) with a column map, bad rows quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aiscale.store.facts_table import load_facts

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
MAP = {"instance": "trace_id", "calls": "iterations", "usd": "reported_cost_usd", "ok": "success"}


def _table() -> pd.DataFrame:
    return pd.DataFrame({"instance": ["a", "b", "c", "d", "a"], "calls": [3, 4, "x", 2, 9],
                         "usd": [0.5, 0.25, 0.1, -1.0, 0.3], "ok": ["true", "no", "1", "false", "1"],
                         "model": ["m1", "m1", "m2", "m2", "m1"]})


def test_csv_with_map_and_quarantine(tmp_path):
    path = tmp_path / "runs.csv"
    _table().to_csv(path, index=False)
    facts = load_facts(path, columns=MAP)
    assert facts["trace_id"].tolist() == ["a", "b"]
    assert facts["iterations"].tolist() == [3, 4] and facts["success"].tolist() == [True, False]
    assert str(facts["iterations"].dtype) == "Int64" and str(facts["success"].dtype) == "boolean"
    assert facts["input_tokens"].isna().all()  # a column the table lacks stays unknown
    assert facts["task_id"].tolist() == ["a", "b"] and facts["trial"].tolist() == [0, 0]  # defaults
    assert json.loads(facts["metadata"].iloc[0]) == {"model": "m1"}
    summary = facts.attrs["load_summary"]
    assert (summary["rows_read"], summary["rows_loaded"], summary["rows_quarantined"]) == (5, 2, 3)
    bad = {q["source_row"]: q["reason"] for q in facts.attrs["quarantined"]}
    assert set(bad) == {4, 5, 6}  # CSV line numbers (header is line 1)
    assert "iterations is not a number" in bad[4] and "negative" in bad[5] and "duplicate" in bad[6]
    assert all(q["source_file"] == str(path) for q in facts.attrs["quarantined"])


def test_parquet_and_jsonl_agree(tmp_path):
    table = _table().iloc[[0, 1, 3]].assign(calls=[3, 4, 2])
    table.to_parquet(tmp_path / "runs.parquet")
    lines = [json.dumps(r) for r in table.to_dict("records")]
    (tmp_path / "runs.jsonl").write_text("\n".join(lines[:2] + ['{"instance": "e", "calls"'] + lines[2:]))
    from_parquet = load_facts(tmp_path / "runs.parquet", columns=MAP)
    from_jsonl = load_facts(tmp_path / "runs.jsonl", columns=MAP)
    pd.testing.assert_frame_equal(from_parquet, from_jsonl)
    assert from_jsonl.attrs["load_summary"]["rows_read"] == 4
    reasons = {q["source_row"]: q["reason"] for q in from_jsonl.attrs["quarantined"]}
    assert "invalid JSON" in reasons[3] and "negative" in reasons[4]


def test_leaderboard_table_reproduces_published_figures(tmp_path):
    # the leaderboard's per_instance_details flattened to CSV, read back through a column map
    board = json.loads((REAL / "swebench-bash-only-leaderboard" / "leaderboards.json").read_text())
    run = next(r for b in board["leaderboards"] for r in b["results"] if r.get("per_instance_details"))
    table = pd.DataFrame([{"instance_id": k, **v} for k, v in run["per_instance_details"].items()])
    table.to_csv(tmp_path / "run.csv", index=False)
    facts = load_facts(tmp_path / "run.csv", columns={"instance_id": "trace_id", "api_calls": "iterations",
                                                      "cost": "reported_cost_usd", "resolved": "success"})
    assert 100 * facts["success"].mean() == pytest.approx(float(run["resolved"]), abs=1e-9)
    assert facts["reported_cost_usd"].sum() == pytest.approx(float(run["cost"]), abs=1e-6)
    assert facts["iterations"].mean() == pytest.approx(float(run["instance_calls"]), abs=1e-9)


def test_errors_name_the_problem(tmp_path):
    path = tmp_path / "runs.csv"
    _table().to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"lacks.*Available columns: \['instance'"):
        load_facts(path, columns={"instanse": "trace_id"})
    with pytest.raises(ValueError, match="not trace-facts columns"):
        load_facts(path, columns={"instance": "trace", "calls": "iterations"})
    with pytest.raises(ValueError, match="needs a `trace_id` column"):
        load_facts(path)
    with pytest.raises(ValueError, match="The value for `format` must be one of"):
        load_facts(tmp_path / "runs.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_facts(tmp_path / "empty.csv", columns=MAP)



def test_a_table_without_ids_can_name_rows_by_file_and_line(tmp_path):
    path = tmp_path / "requests.csv"
    pd.DataFrame({"in": [10, 20, 30], "out": [1, 2, "x"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="needs a `trace_id` column"):
        load_facts(path, columns={"in": "input_tokens", "out": "output_tokens"})
    facts = load_facts(path, columns={"in": "input_tokens", "out": "output_tokens"}, row_ids=True)
    assert facts["trace_id"].tolist() == ["requests:2", "requests:3"]  # CSV line numbers
    assert facts.attrs["load_summary"]["rows_quarantined"] == 1


def test_a_censored_column_maps_and_feeds_fit_iterations(tmp_path):
    # issue 18.6: `censored` went into metadata and fit_iterations(censored="censored") raised
    # a bare KeyError
    import numpy as np

    import aiscale

    rng = np.random.default_rng(4)
    iters = 1 + rng.negative_binomial(3, 0.3, 400)
    cut = iters >= 12
    table = pd.DataFrame({"id": [f"t{i}" for i in range(400)], "steps": np.minimum(iters, 12),
                          "hit_cap": np.where(cut, "true", "false")})
    table.loc[5, "hit_cap"] = "maybe"  # not a boolean: quarantined with its line
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    facts = load_facts(path, columns={"id": "trace_id", "steps": "iterations", "hit_cap": "censored"})
    assert len(facts) == 399 and str(facts["censored"].dtype) == "boolean"
    assert int(facts["censored"].sum()) == int(cut.sum() - cut[5])
    assert "censored is not a boolean" in facts.attrs["quarantined"][0]["reason"]
    assert facts["metadata"].isna().all()  # the mapped column is not moved into metadata
    fit = aiscale.fit_iterations(facts, families=["shifted_nb2"], censored="censored")
    assert fit.n_censored == int(facts["censored"].sum())
    with pytest.raises(ValueError, match="names column 'cut'.*Available columns.*censored"):
        aiscale.fit_iterations(facts, families=["shifted_nb2"], censored="cut")
