"""tau2-bench loader: agent cost per simulation, the leaderboard claim, the user simulator kept apart."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.loaders import UnknownFormatError, tau2bench

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "tau2-bench-results"
CLAUDE = "claude-sonnet-4-5_airline_default_gpt4.1_1trials"
GPT = "gpt-4.1_airline_default_gpt-4.1_1trials"
QWEN = "qwen2.5_7b_airline_default_gpt-4.1-2025-04-14_1trials"


@pytest.fixture(scope="module")
def raw() -> dict[str, dict]:
    return {stem: json.loads((REAL / f"{stem}.json").read_text()) for stem in (CLAUDE, GPT, QWEN)}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return aiscale.load([REAL], store=tmp_path_factory.mktemp("tau2"))


@pytest.fixture(scope="module")
def facts(store):
    return store.facts().set_index("trace_id")


def test_agent_cost_per_simulation_equals_agent_cost(facts, raw):
    for stem, document in raw.items():
        for sim in document["simulations"]:
            assert facts.loc[f"{stem}/{sim['id']}", "reported_cost_usd"] == pytest.approx(
                sim["agent_cost"], abs=1e-9), (stem, sim["id"])


def test_leaderboard_submission_reproduces(facts):
    # submission.json (PR #79): airline pass_1 72.0 and cost = mean agent_cost per simulation
    claim = json.loads((REAL / "claude-sonnet-4-5_aide-platform_2025-10-31.submission.json").read_text())
    airline = claim["results"]["airline"]
    claude = facts[facts.index.str.startswith(CLAUDE)]
    assert len(claude) == 50
    assert 100 * claude["success"].mean() == pytest.approx(airline["pass_1"], abs=1e-9)
    assert claude["reported_cost_usd"].mean() == pytest.approx(airline["cost"], abs=1e-9)


def test_pass1_per_file_from_source_table(facts):
    # SOURCE.md table: pass^1 0.72 / 0.50 / 0.18 over 50 / 20 / 50 simulations
    for stem, n, rate in [(CLAUDE, 50, 0.72), (GPT, 20, 0.50), (QWEN, 50, 0.18)]:
        rows = facts[facts.index.str.startswith(stem)]
        assert len(rows) == n and rows["success"].mean() == pytest.approx(rate, abs=1e-12)


def test_user_simulator_is_not_the_agent(store, facts, raw):
    spans = store.spans()
    assert not (spans.loc[spans["kind"] == "llm", "model"].str.startswith("gpt-4.1")
                & spans["trace_id"].str.startswith(CLAUDE)).any()
    users = spans[spans["name"] == "user_simulator"]
    assert (users["kind"] == "other").all() and users["reported_cost_usd"].isna().all()
    assert users["input_tokens"].isna().all()
    for stem, document in raw.items():
        model_turns = sum(m["role"] == "assistant" and m.get("usage") is not None
                          for s in document["simulations"] for m in s["messages"])
        prompt = sum(m["usage"]["prompt_tokens"] for s in document["simulations"] for m in s["messages"]
                     if m["role"] == "assistant" and m.get("usage"))
        rows = facts[facts.index.str.startswith(stem)]
        assert rows["n_llm_calls"].sum() == model_turns
        assert rows["input_tokens"].sum() == prompt
        user_cost = {f"{stem}/{s['id']}": s["user_cost"] for s in document["simulations"]}
        meta = rows["metadata"].map(json.loads)
        assert all(meta[t]["user_cost_usd"] == c for t, c in user_cost.items())


def test_latency_termination_and_timestamps(facts, raw):
    sims = {f"{stem}/{s['id']}": s for stem, d in raw.items() for s in d["simulations"]}
    latency = facts.loc[list(sims), "latency_s"]
    wall = [(pd.Timestamp(sims[t]["end_time"]) - pd.Timestamp(sims[t]["start_time"])).total_seconds()
            for t in latency.index]
    assert abs(latency.to_numpy() - wall).max() < 1e-6
    duration = [sims[t]["duration"] for t in latency.index]  # the source's own clock
    assert abs(latency.to_numpy() - duration).max() < 0.05
    meta = facts.loc[list(sims), "metadata"].map(json.loads)
    reasons = meta[meta.index.str.startswith(QWEN)].map(lambda m: m["termination_reason"]).value_counts()
    assert reasons["agent_error"] == 9 and reasons["too_many_errors"] == 1  # SOURCE.md pitfalls
    assert meta.map(lambda m: "UTC" in m["timestamps"]).all()
    first = sims[next(iter(sims))]
    assert str(facts.loc[next(iter(sims)), "started_at"].tz_localize(None)) == first["start_time"].replace("T", " ")


def test_tool_spans_have_arguments(store, raw):
    spans = store.spans()
    tools = spans[spans["kind"] == "tool"]
    calls = sum(len(m.get("tool_calls") or []) for d in raw.values() for s in d["simulations"]
                for m in s["messages"])
    assert len(tools) == calls
    assert tools["tool_arguments"].map(lambda a: isinstance(json.loads(a), dict)).all()
    assert (tools["end_time"] >= tools["start_time"]).all()


def test_submission_file_is_not_claimed(store):
    skipped = [f.path for f in store.last_load.files if f.status == "skipped"]
    assert any(p.endswith("submission.json") for p in skipped)


def _copy(tmp_path: Path, document: dict | str, name: str = "r.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document, indent=1))
    return path


def test_truncated_file_keeps_complete_simulations(tmp_path, raw):
    text = json.dumps({**raw[GPT], "simulations": raw[GPT]["simulations"][:4]}, indent=1)
    path = _copy(tmp_path, text[: int(len(text) * 0.8)])
    store = aiscale.load([path], store=tmp_path / "s", format="tau2-bench")
    summary = store.last_load
    assert summary.rows_quarantined == 1 and "truncated" in store.quarantine()["reason"].iloc[0]
    assert 1 <= len(store.traces()) < 4
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined


def test_wrong_types_quarantine_the_simulation(tmp_path, raw):
    sims = [dict(s) for s in raw[GPT]["simulations"][:3]]
    sims[1]["messages"] = "lost"
    sims[2]["messages"] = [dict(m) for m in sims[2]["messages"]]
    sims[2]["messages"][2]["usage"] = "many"
    path = _copy(tmp_path, {**raw[GPT], "simulations": sims})
    store = aiscale.load([path], store=tmp_path / "s")
    bad = store.quarantine().sort_values("source_row")
    assert bad["source_row"].tolist() == [2, 3]
    assert "messages" in bad["reason"].iloc[0] and "usage" in bad["reason"].iloc[1]
    assert len(store.traces()) == 1


def test_empty_file(tmp_path):
    path = _copy(tmp_path, "")
    with pytest.raises(UnknownFormatError, match="empty"):
        aiscale.load([path], store=tmp_path / "s")
    assert "empty" in next(tau2bench.read(path)).quarantined[0].reason
