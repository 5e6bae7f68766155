"""tau-bench loader: the published pass^k table and the file's own counts, plus bad input."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.loaders import UnknownFormatError, taubench

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
FILE = REAL / "tau-bench-historical" / "gpt-4o-airline.json"


@pytest.fixture(scope="module")
def raw() -> list[dict]:
    return json.loads(FILE.read_text())


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return aiscale.load([REAL / "tau-bench-historical"], store=tmp_path_factory.mktemp("tau"))


def test_two_hundred_traces_fifty_tasks_four_trials(store):
    facts = store.facts()
    assert len(facts) == 200
    assert facts["task_id"].nunique() == 50
    assert set(facts.groupby("task_id")["trial"].apply(lambda t: tuple(sorted(t)))) == {(0, 1, 2, 3)}
    assert facts["success"].mean() == pytest.approx(0.42, abs=1e-12)
    assert set(facts["variant"]) == {"gpt-4o"}


def test_published_pass_hat_k(store):
    # README leaderboard, airline, "TC (gpt-4o)": pass^1..4 = 0.420, 0.273, 0.220, 0.200 (SOURCE.md)
    facts = store.facts()
    successes = facts.groupby("task_id")["success"].sum().astype(int)
    for k, published in [(1, 0.420), (2, 0.27333), (3, 0.220), (4, 0.200)]:
        value = (successes.map(lambda c, k=k: comb(c, k)) / comb(4, k)).mean()
        assert value == pytest.approx(published, abs=5e-6)


def test_spans_match_messages_and_tool_calls(store, raw):
    spans = store.spans()
    assistant = sum(m["role"] == "assistant" for r in raw for m in r["traj"])
    calls = sum(len(m.get("tool_calls") or []) for r in raw for m in r["traj"])
    assert (spans["kind"] == "llm").sum() == assistant == 2454
    assert (spans["kind"] == "tool").sum() == calls == 1164
    assert (spans["kind"] == "agent").sum() == 200
    tools = spans[spans["kind"] == "tool"]
    assert tools["tool_arguments"].map(lambda a: isinstance(json.loads(a), dict)).all()
    assert store.last_load.rows_read == store.last_load.rows_loaded == len(spans)


def test_no_tokens_cost_or_times_and_user_cost_kept_apart(store, raw):
    facts = store.facts()
    for column in ("input_tokens", "output_tokens", "reported_cost_usd", "latency_s"):
        assert facts[column].isna().all(), column
    spans = store.spans()
    assert spans["start_time"].isna().all()
    user_cost = {f"gpt-4o-airline/{r['task_id']}/{r['trial']}": r["info"]["user_cost"] for r in raw}
    meta = facts.set_index("trace_id")["metadata"].map(json.loads)
    assert all(meta[t]["user_cost_usd"] == c for t, c in user_cost.items())


def test_iterations_count_assistant_turns(store, raw):
    facts = store.facts().set_index("trace_id")
    for record in raw[:20]:
        turns = sum(m["role"] == "assistant" for m in record["traj"])
        assert facts.loc[f"gpt-4o-airline/{record['task_id']}/{record['trial']}", "iterations"] == turns


def _write(tmp_path: Path, text: str, name: str = "gpt-4o-airline.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_truncated_file_keeps_complete_records(tmp_path, raw):
    text = json.dumps(raw[:5], indent=1)
    path = _write(tmp_path, text[: len(text) * 3 // 4])
    store = aiscale.load([path], store=tmp_path / "s")
    summary = store.last_load
    assert summary.rows_quarantined == 1
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined
    kept = store.traces()
    assert 1 <= len(kept) < 5
    assert "truncated" in store.quarantine()["reason"].iloc[0]


def test_wrong_types_quarantine_the_record(tmp_path, raw):
    records = [dict(raw[0]), dict(raw[1], trial="first"), dict(raw[2], traj="none"), 7, dict(raw[0])]
    store = aiscale.load([_write(tmp_path, json.dumps(records))], store=tmp_path / "s")
    bad = store.quarantine().sort_values("source_row")
    assert bad["source_row"].tolist() == [2, 3, 4, 5]
    assert "trial" in bad["reason"].iloc[0] and "traj" in bad["reason"].iloc[1]
    assert "duplicate" in bad["reason"].iloc[3]
    assert len(store.traces()) == 1
    assert store.last_load.rows_read == store.last_load.rows_loaded + 4


def test_empty_file(tmp_path):
    path = _write(tmp_path, "")
    with pytest.raises(UnknownFormatError, match="empty"):
        aiscale.load([path], store=tmp_path / "s")
    chunk = next(taubench.read(path))
    assert chunk.rows_read == 1 and "empty" in chunk.quarantined[0].reason


def test_not_a_list_is_one_quarantined_row(tmp_path):
    path = _write(tmp_path, json.dumps({"task_id": 1, "reward": 1, "traj": []}))
    store = aiscale.load([path], store=tmp_path / "s", format="tau-bench")
    assert store.last_load.rows_quarantined == 1 and store.traces().empty
    assert isinstance(store.spans(), pd.DataFrame)
