"""SWE-bench leaderboard loader: each run reproduces its own published figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aiscale
from aiscale.loaders import UnknownFormatError, swebench_leaderboard

FILE = (Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
        / "swebench-bash-only-leaderboard" / "leaderboards.json")
BROKEN = ("claude-3-7-sonnet", "claude-sonnet-4", "Llama-4-Maverick")  # SOURCE.md: known mismatches


@pytest.fixture(scope="module")
def published() -> dict[str, dict]:
    """The runs with per-instance details, as the source publishes them (first board wins)."""
    runs: dict[str, dict] = {}
    for board in json.loads(FILE.read_text())["leaderboards"]:
        for run in board["results"]:
            if "per_instance_details" in run:
                runs.setdefault(run["folder"], run)
    return runs


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    store = aiscale.load([FILE], store=tmp_path_factory.mktemp("lb"))
    assert store.last_load.rows_read == store.last_load.rows_loaded
    return store.facts()


def _broken(folder: str) -> bool:
    return any(name in folder for name in BROKEN)


def test_each_run_once(facts, published):
    assert len(published) == 17
    assert len(facts) == 17 * 500 and facts["trace_id"].is_unique
    assert set(facts["variant"]) == set(published)
    assert facts["tool_latency_s"].isna().all() and facts["input_tokens"].isna().all()


def test_runs_reproduce_published_figures(facts, published):
    for folder, run in published.items():
        rows = facts[facts["variant"] == folder]
        assert rows["reported_cost_usd"].sum() == pytest.approx(float(run["cost"]), abs=1e-6), folder
        assert rows["iterations"].mean() == pytest.approx(float(run["instance_calls"]), abs=1e-9), folder
        assert (rows["n_llm_calls"] == rows["iterations"]).all()
        if not _broken(folder):
            assert 100 * rows["success"].mean() == pytest.approx(float(run["resolved"]), abs=1e-9), folder


def test_broken_labels_flagged(facts):
    meta = facts.drop_duplicates("variant").set_index("variant")["metadata"].map(json.loads)
    flagged = {v for v, m in meta.items() if m["labels_match_published"] is False}
    assert len(flagged) == 3 and all(_broken(v) for v in flagged)
    assert all(m["labels_match_published"] for v, m in meta.items() if v not in flagged)
    assert set(meta.map(lambda m: tuple(m["boards"]))) == {("bash-only", "Verified")}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "leaderboards.json"
    path.write_text(text)
    return path


def test_wrong_types_quarantine_the_instance(tmp_path):
    details = {"a": {"api_calls": 3, "cost": 0.5, "resolved": True},
               "b": {"api_calls": "many", "cost": 0.1, "resolved": False},
               "c": {"api_calls": 2, "cost": -1.0, "resolved": False},
               "d": "oops"}
    runs = [{"folder": "r1", "resolved": 25.0, "per_instance_details": details},
            {"folder": "r2", "per_instance_details": [1, 2]}]
    store = aiscale.load([_write(tmp_path, json.dumps({"leaderboards": [{"name": "x", "results": runs}]}))],
                         store=tmp_path / "s")
    reasons = sorted(store.quarantine()["reason"])
    assert len(reasons) == 4
    assert any("api_calls" in r for r in reasons) and any("negative" in r for r in reasons)
    assert any("per_instance_details" in r for r in reasons)
    assert [t.split("/", 1)[1] for t in store.facts()["trace_id"]] == ["a"]
    assert store.last_load.rows_read == 1 + 4


def test_truncated_and_empty(tmp_path):
    text = FILE.read_text()[:200_000]
    store = aiscale.load([_write(tmp_path, text)], store=tmp_path / "s")
    assert store.last_load.rows_quarantined == 1 and "truncated" in store.quarantine()["reason"].iloc[0]
    empty = _write(tmp_path, "")
    with pytest.raises(UnknownFormatError, match="empty"):
        aiscale.load([empty], store=tmp_path / "s2")
    assert "empty" in next(swebench_leaderboard.read(empty)).quarantined[0].reason
