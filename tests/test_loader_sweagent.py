"""SWE-agent v0 loader: one span-less facts row per .traj with the file's own totals."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.loaders import UnknownFormatError, sweagent

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "swe-agent-v0-traj"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return aiscale.load([ROOT], store=tmp_path_factory.mktemp("swea"))


def test_totals_from_source_md(store):
    # SOURCE.md: pydicom-1458 api_calls 12, tokens 122,612 / 1,369, cost 1.26719;
    # test-repo api_calls 5, tokens 7,141 / 243, cost 0.01952
    facts = store.facts().set_index("task_id")
    assert len(facts) == 2 and store.spans().empty
    expected = {"pydicom__pydicom-1458": (12, 122_612, 1_369, 1.26719),
                "6e44b9__sweagenttestrepo-1c2844": (5, 7_141, 243, 0.01952)}
    for instance, (calls, sent, received, cost) in expected.items():
        row = facts.loc[instance]
        assert (row["iterations"], row["n_llm_calls"]) == (calls, calls)
        assert (row["input_tokens"], row["output_tokens"]) == (sent, received)
        assert row["reported_cost_usd"] == pytest.approx(cost, abs=1e-9)
        assert pd.isna(row["success"])  # the label is not in the file
        assert pd.isna(row["latency_s"])  # unknown: NaN, never 0


def test_steps_and_execution_time(store):
    facts = store.facts().set_index("task_id")
    path = next(ROOT.rglob("6e44b9__sweagenttestrepo-1c2844.traj"))
    steps = json.loads(path.read_text())["trajectory"]
    row = facts.loc["6e44b9__sweagenttestrepo-1c2844"]
    assert row["n_tool_calls"] == len(steps)
    assert row["tool_latency_s"] == pytest.approx(sum(s["execution_time"] for s in steps), abs=1e-9)
    assert pd.isna(facts.loc["pydicom__pydicom-1458", "tool_latency_s"])  # no execution_time there
    assert row["variant"] == path.parent.name and row["trace_id"].startswith(f"{path.parent.name}~") and row["trace_id"].endswith(f"/{path.stem}")


def test_repeated_actions(tmp_path):
    steps = [{"action": a} for a in ("ls", "open a.py", "ls\n", "ls", "submit")]
    path = tmp_path / "r" / "i-1.traj"
    path.parent.mkdir()
    path.write_text(json.dumps({"environment": "e", "trajectory": steps,
                                "info": {"model_stats": {"api_calls": 5}}}))
    facts = aiscale.load([path], store=tmp_path / "s").facts()
    assert facts["repeated_calls"].iloc[0] == 2


def test_bad_input(tmp_path):
    source = next(ROOT.rglob("pydicom__pydicom-1458.traj")).read_text()
    truncated, wrong, empty = (tmp_path / f"{n}.traj" for n in ("truncated", "wrong", "empty"))
    truncated.write_text(source[: len(source) // 3])
    document = json.loads(source)
    document["info"]["model_stats"]["tokens_sent"] = "lots"
    wrong.write_text(json.dumps(document))
    empty.write_text("")
    store = aiscale.load([truncated, wrong], store=tmp_path / "s", format="swe-agent-v0")
    assert (store.last_load.rows_read, store.last_load.rows_quarantined) == (2, 2)
    reasons = " ".join(store.quarantine()["reason"])
    assert "truncated" in reasons and "tokens_sent" in reasons
    with pytest.raises(UnknownFormatError, match="empty"):
        aiscale.load([empty], store=tmp_path / "s2")
    assert "empty" in next(sweagent.read(empty)).quarantined[0].reason


def test_the_run_states_a_cost_cap_not_a_step_cap(store):
    from aiscale.report.sections_loops import loop_caps

    facts = store.facts()
    meta = facts["metadata"].map(json.loads)
    assert [m.get("cost_cap_usd") for m in meta] == [3.0, 3.0]  # replay_config, or the run name's c-3.00
    assert all("step_cap" not in m for m in meta)  # v0 stops on cost: its step cap is unknown, not 0
    assert loop_caps(facts)["cap"].isna().all()
