"""Gemini CLI loader: the hand-measured counts of the gemini-cli-sessions SOURCE.md, the token
convention (input with cached, thoughts as reasoning inside output, tool tokens kept), bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.loaders import detect, gemini_cli

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "gemini-cli-sessions"
ROOT = REAL / "codemie-code-gemini-chats"


def _measured() -> dict[str, dict]:
    """SOURCE.md's measured chats: file name -> its JSON measurement."""
    text = (ROOT / "SOURCE.md").read_text()
    found = re.findall(r"^- `(session-[^`]+\.json)`: (\{.*\})$", text, re.MULTILINE)
    return {name: json.loads(body) for name, body in found}


MEASURED = _measured()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return aiscale.load([REAL], store=tmp_path_factory.mktemp("gemini") / "s")


@pytest.fixture(scope="module")
def facts(store):
    return store.facts().set_index("trace_id")


def test_folder_loads_chats_and_skips_logs_json(store):
    assert len(MEASURED) == 2
    summary = store.last_load.summary()
    loaded = summary[summary["status"] == "loaded"]
    assert sorted(Path(p).name for p in loaded["path"]) == sorted(MEASURED)
    assert set(loaded["format"]) == {"gemini-cli"}
    assert sorted(Path(p).name for p in summary.loc[summary["status"] == "skipped", "path"]) == [
        "SOURCE.md", "logs.json"]
    assert store.last_load.rows_read == store.last_load.rows_loaded + store.last_load.rows_quarantined
    assert store.last_load.rows_quarantined == 0


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_counts_equal_source_md(facts, store, name):
    truth = MEASURED[name]
    row = facts.loc[truth["sessionId"]]
    tokens = truth["token_totals"]
    assert row["n_llm_calls"] == truth["messages_with_tokens"] == truth["types"]["gemini"]
    assert row["n_tool_calls"] == truth["toolCalls"]
    assert row["input_tokens"] == tokens["input"] + tokens["tool"]
    assert row["cache_read_tokens"] == tokens["cached"]
    assert row["reasoning_tokens"] == tokens["thoughts"]
    assert row["output_tokens"] == tokens["output"] + tokens["thoughts"]
    assert row["input_tokens"] + row["output_tokens"] == tokens["total"]
    spans = store.spans(columns=["trace_id", "kind", "model"], priced=False)
    models = spans.loc[(spans["kind"] == "llm") & (spans["trace_id"] == truth["sessionId"]), "model"]
    assert models.value_counts().to_dict() == truth["models"]
    assert row["variant"] == next(iter(truth["models"]))
    assert row["started_at"] == pd.Timestamp(truth["startTime"])
    assert json.loads(row["metadata"])["project_hash"]


def test_cost_is_priced_or_null_never_zero(facts):
    for _, row in facts.iterrows():
        if row["unpriced_llm_calls"] > 0:
            assert pd.isna(row["cost_usd"])
        else:
            assert row["cost_usd"] > 0


def test_tool_spans_and_timing(store):
    spans = store.spans()
    tools = spans[spans["kind"] == "tool"]
    assert (tools["status"] == "ok").all() and tools["tool_arguments"].str.startswith("{").all()
    assert (spans["start_time"] <= spans["end_time"]).all()
    # the 2025-12-01 turn that read, wrote and re-read a file: its tools run one after another
    three = tools[tools["span_id"].str.startswith("tool-11-")].sort_values("span_id")
    assert three["tool_name"].tolist() == ["read_file", "write_file", "read_file"]
    assert (three["start_time"].iloc[1:].values == three["end_time"].iloc[:-1].values).all()


def _chat(tmp_path: Path, messages: list) -> Path:
    path = tmp_path / "chats" / "session-test.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"sessionId": "s-1", "projectHash": "abc", "startTime": "2025-01-01T00:00:00Z",
                                "lastUpdated": "2025-01-01T00:01:00Z", "messages": messages}))
    return path


def test_tool_tokens_missing_tokens_and_failed_tool(tmp_path):
    messages = [
        {"type": "user", "timestamp": "2025-01-01T00:00:01Z", "content": "hi"},
        {"type": "gemini", "timestamp": "2025-01-01T00:00:05Z", "model": "gemini-2.5-pro",
         "tokens": {"input": 100, "output": 10, "cached": 30, "thoughts": 7, "tool": 5, "total": 122},
         "toolCalls": [{"id": "t1", "name": "run_shell_command", "args": {"command": "ls"},
                        "status": "error", "timestamp": "2025-01-01T00:00:09Z"}]},
        {"type": "gemini", "timestamp": "2025-01-01T00:00:12Z", "model": "gemini-2.5-pro"},
        "not a message",
    ]
    store = aiscale.load([_chat(tmp_path, messages)], store=tmp_path / "s")
    spans = store.spans().set_index("span_id")
    first, second = spans.loc["llm-2"], spans.loc["llm-3"]
    assert (first["input_tokens"], first["output_tokens"], first["reasoning_tokens"]) == (105, 17, 7)
    assert json.loads(first["attributes"])["tool_prompt_tokens"] == 5
    assert pd.isna(second["input_tokens"]) and pd.isna(second["output_tokens"])  # unknown, not zero
    assert spans.loc["tool-2-0", "status"] == "error" and spans.loc["tool-2-0", "error_type"] == "error"
    assert second["start_time"] == spans.loc["tool-2-0", "end_time"]
    bad = store.quarantine()
    assert bad["source_row"].tolist() == [4] and "not a JSON object" in bad["reason"].iloc[0]
    facts = store.facts().iloc[0]
    assert facts["unpriced_llm_calls"] >= 1 and pd.isna(facts["cost_usd"])


def test_truncated_chat_is_quarantined(tmp_path):
    path = _chat(tmp_path, [{"type": "gemini", "timestamp": "2025-01-01T00:00:05Z"}])
    path.write_text(path.read_text()[:-20])
    store = aiscale.load([path], store=tmp_path / "s")
    assert store.last_load.rows_quarantined == 1 and "truncated" in store.quarantine()["reason"].iloc[0]


def test_sniffing():
    chat = ROOT / "session-2025-12-01T21-45-5b959dae.json"
    assert detect(chat) is gemini_cli
    assert not gemini_cli.sniff(ROOT / "logs.json", (ROOT / "logs.json").read_bytes())
