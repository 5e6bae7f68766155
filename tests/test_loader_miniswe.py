"""mini-swe-agent loader: the issue's Done-when figures, the leaderboard cross-check, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import aiscale
from aiscale.loaders import UnknownFormatError, miniswe

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
ROOT = REAL / "mini-swe-agent-gemini3-verified"
RUN = "20251118_mini-v1.15.0_gemini-3-pro-preview-20251118"


@pytest.fixture(scope="module")
def raw() -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(ROOT.glob("trajs/*/*.traj.json"))}


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    store = aiscale.load([ROOT], store=tmp_path_factory.mktemp("mini"))
    return store.facts().set_index("task_id")


def test_done_when_figures(facts, raw):
    assert len(facts) == len(raw) == 30
    assert int(facts["success"].sum()) == 21
    for instance, trajectory in raw.items():
        stats = trajectory["info"]["model_stats"]
        assert facts.loc[instance, "reported_cost_usd"] == pytest.approx(stats["instance_cost"], abs=1e-6)
        assert facts.loc[instance, "iterations"] == stats["api_calls"]
    assert facts["reported_cost_usd"].sum() == pytest.approx(14.620113, abs=1e-6)
    assert facts["iterations"].sum() == 1307


def test_trajectory_metadata_survives_the_join(facts, raw):
    for instance, trajectory in raw.items():
        meta = json.loads(facts.loc[instance, "metadata"])
        assert meta["instance_cost_usd"] == trajectory["info"]["model_stats"]["instance_cost"]
        assert meta["step_limit"] == 250 and meta["per_call_costs_sum_to_instance_cost"] is True


def test_success_comes_from_report_json(facts):
    for instance in facts.index:
        report = json.loads((ROOT / "logs" / instance / "report.json").read_text())
        assert bool(facts.loc[instance, "success"]) is report["resolved"]


def test_matches_the_leaderboard_run(facts, tmp_path):
    # SOURCE.md: per-instance values equal that run's per_instance_details in leaderboards.json
    board = json.loads((REAL / "swebench-bash-only-leaderboard" / "leaderboards.json").read_text())
    run = next(r for b in board["leaderboards"] for r in b["results"] if r.get("folder") == RUN)
    details = run["per_instance_details"]
    for instance, row in facts.iterrows():
        assert row["reported_cost_usd"] == pytest.approx(details[instance]["cost"], abs=1e-9)
        assert row["iterations"] == details[instance]["api_calls"]
        assert bool(row["success"]) is details[instance]["resolved"]


def test_token_convention(facts, raw):
    for instance, trajectory in raw.items():
        usage = [m["extra"]["response"]["usage"] for m in trajectory["messages"] if m["role"] == "assistant"]
        assert facts.loc[instance, "input_tokens"] == sum(u["prompt_tokens"] for u in usage)
        assert facts.loc[instance, "output_tokens"] == sum(u["completion_tokens"] for u in usage)
        cached = sum(u["prompt_tokens_details"]["cached_tokens"] or 0 for u in usage)
        assert facts.loc[instance, "cache_read_tokens"] == cached
    assert (facts["cache_read_tokens"] <= facts["input_tokens"]).all()
    assert (facts["reasoning_tokens"] <= facts["output_tokens"]).all()
    assert set(facts["variant"]) == {"google/gemini-3-pro-preview"}


def _trajectory(raw: dict, instance: str = "astropy__astropy-13236") -> dict:
    return json.loads(json.dumps(raw[instance]))


def _write(tmp_path: Path, trajectory: dict | str, instance: str = "x__y-1") -> Path:
    path = tmp_path / "run" / "trajs" / instance / f"{instance}.traj.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(trajectory, dict):
        trajectory = json.dumps({**trajectory, "instance_id": instance})
    path.write_text(trajectory)
    return path


def test_repeated_commands_format_errors_and_cost_fallback(tmp_path, raw):
    trajectory = _trajectory(raw)
    assistant = [m for m in trajectory["messages"] if m["role"] == "assistant"][:5]
    commands = ["ls -la", "cat setup.py", "ls -la", None, "ls -la"]
    messages = trajectory["messages"][:2]
    for message, command in zip(assistant, commands, strict=True):
        message["content"] = f"THOUGHT: x\n\n```bash\n{command}\n```" if command else "no command"
        messages += [message, {"role": "user", "content": "<returncode>0</returncode>\n<output></output>"}]
    assistant[1]["extra"]["cost"] = assistant[1]["extra"]["response"]["usage"].pop("cost")
    trajectory["messages"] = messages
    store = aiscale.load([_write(tmp_path, trajectory)], store=tmp_path / "s")
    row = store.facts().iloc[0]
    assert (row["n_llm_calls"], row["iterations"], row["n_tool_calls"]) == (5, 5, 4)
    assert row["repeated_calls"] == 2  # `ls -la` issued three times
    assert row["n_errors"] == 1  # the reply without a command is a FormatError
    expected = sum(m["extra"].get("cost", m["extra"]["response"]["usage"].get("cost")) for m in assistant)
    assert row["reported_cost_usd"] == pytest.approx(expected, abs=1e-12)
    assert row["trace_id"].startswith("run~") and row["trace_id"].endswith("/x__y-1")


def test_report_and_trajectory_join_on_trace_id(tmp_path, raw):
    _write(tmp_path, _trajectory(raw))
    report = tmp_path / "run" / "logs" / "x__y-1" / "report.json"
    report.parent.mkdir(parents=True)
    shutil.copy(ROOT / "logs" / "astropy__astropy-13236" / "report.json", report)
    store = aiscale.load([tmp_path / "run"], store=tmp_path / "s")
    facts = store.facts()
    assert len(facts) == 1 and bool(facts["success"].iloc[0]) is True
    assert facts["iterations"].iloc[0] == 46


def test_truncated_trajectory_is_one_quarantined_row(tmp_path, raw):
    text = json.dumps(_trajectory(raw))
    path = _write(tmp_path, text[: len(text) // 2])
    store = aiscale.load([path], store=tmp_path / "s")
    assert (store.last_load.rows_read, store.last_load.rows_quarantined) == (1, 1)
    assert store.spans().empty and "truncated" in store.quarantine()["reason"].iloc[0]


def test_wrong_types_quarantine_the_trajectory(tmp_path, raw):
    trajectory = _trajectory(raw)
    trajectory["messages"][2]["extra"]["response"]["usage"]["prompt_tokens"] = "many"
    good = _write(tmp_path, _trajectory(raw), "ok__ok-1")
    store = aiscale.load([_write(tmp_path, trajectory), good], store=tmp_path / "s")
    bad = store.quarantine()
    assert len(bad) == 1 and "prompt_tokens" in bad["reason"].iloc[0]
    assert bad["source_file"].iloc[0].endswith("x__y-1.traj.json")
    assert [t.split("/", 1)[1] for t in store.facts()["trace_id"]] == ["ok__ok-1"]
    summary = store.last_load
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined


def test_bad_report_and_empty_file(tmp_path):
    report = tmp_path / "run" / "logs" / "a__b-1" / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"resolved": "yes", "patch_exists": True, "tests_status": {}}))
    store = aiscale.load([report], store=tmp_path / "s")
    assert store.last_load.rows_quarantined == 1 and "resolved" in store.quarantine()["reason"].iloc[0]
    empty = _write(tmp_path, "")
    with pytest.raises(UnknownFormatError, match="empty"):
        aiscale.load([empty], store=tmp_path / "s2")
    assert "empty" in next(miniswe.read(empty)).quarantined[0].reason
