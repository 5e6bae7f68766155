"""The benchmark loaders tell their formats apart and claim nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiscale.loaders import miniswe, sweagent, swebench_leaderboard, tau2bench, taubench
from aiscale.loaders.base import read_head

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
MINE = (taubench, tau2bench, miniswe, sweagent, swebench_leaderboard)
EXPECTED = {
    "tau-bench-historical/gpt-4o-airline.json": "tau-bench",
    "tau2-bench-results/gpt-4.1_airline_default_gpt-4.1_1trials.json": "tau2-bench",
    "tau2-bench-results/qwen2.5_7b_airline_default_gpt-4.1-2025-04-14_1trials.json": "tau2-bench",
    "mini-swe-agent-gemini3-verified/trajs/astropy__astropy-13236/astropy__astropy-13236.traj.json":
        "mini-swe-agent",
    "mini-swe-agent-gemini3-verified/logs/astropy__astropy-13236/report.json": "mini-swe-agent",
    "swe-agent-v0-traj/gpt4__swe-bench-dev-easy_first_only__default__t-0.00__p-0.95__c-3.00__install-1/"
    "pydicom__pydicom-1458.traj": "swe-agent-v0",
    "swe-agent-v0-traj/gpt4__swe-agent-test-repo__default_from_url__t-0.00__p-0.95__c-3.00__install-1/"
    "6e44b9__sweagenttestrepo-1c2844.traj": "swe-agent-v0",
    "tau2-bench-results/claude-sonnet-4-5_airline_default_gpt4.1_1trials.json": "tau2-bench",
    "swebench-bash-only-leaderboard/leaderboards.json": "swebench-leaderboard",
}
OTHERS = {  # heads of formats other loaders own
    "otlp.jsonl": json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "ab"}]}]}]}),
    "phoenix.jsonl": json.dumps({"context": {"trace_id": "t", "span_id": "s"}, "span_kind": "LLM"}),
    "langfuse.json": json.dumps([{"id": "t", "observations": [{"type": "GENERATION"}], "scores": []}]),
    "langsmith.json": json.dumps([{"id": "r", "run_type": "llm", "trace_id": "t", "outputs": {}}]),
    "report.json": json.dumps({"model": "x", "total": 3}),
    "notes.traj.json": json.dumps({"steps": []}),
}


def _claims(path: Path) -> list[str]:
    head = read_head(path)
    return [m.NAME for m in MINE if m.sniff(path, head)]


@pytest.mark.parametrize("relative", sorted(EXPECTED))
def test_each_real_file_is_claimed_by_its_loader_only(relative):
    assert _claims(REAL / relative) == [EXPECTED[relative]]


def test_other_real_files_are_not_claimed():
    others = [p for p in REAL.rglob("*") if p.is_file() and "trajs" not in p.parts and "logs" not in p.parts
              and str(p.relative_to(REAL)) not in EXPECTED]
    assert any(p.name == "SOURCE.md" for p in others) and any(p.suffix == ".csv" for p in others)
    claimed = {str(p.relative_to(REAL)): _claims(p) for p in others}
    assert any(k.endswith("submission.json") for k in claimed)
    assert {k: v for k, v in claimed.items() if v} == {}


@pytest.mark.parametrize("name", sorted(OTHERS))
def test_other_formats_are_not_claimed(tmp_path, name):
    path = tmp_path / name
    path.write_text(OTHERS[name] + "\n")
    assert _claims(path) == []
