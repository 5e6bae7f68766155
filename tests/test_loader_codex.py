"""Codex CLI loader: every hand-measured count in the codex-sessions SOURCE.md files, Entire's own
totals, the usage-less rollout, duplicated and null usage events, bad lines."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.loaders import codex, detect

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "codex-sessions"
_MEASURED = re.compile(r"^- `(?P<file>[^`]+\.jsonl)`: (?P<body>.*)$", re.MULTILINE)
_TOOL_ITEMS = ("response_item/function_call", "response_item/custom_tool_call", "response_item/web_search_call")


def _dict_after(body: str, label: str) -> dict | None:
    """The Python literal that follows ``label`` in a SOURCE.md measurement line."""
    start = body.index(label) + len(label)
    text = body[start:].lstrip()
    if text.startswith("None"):
        return None
    depth = 0
    for end, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return ast.literal_eval(text[:end + 1])
    raise AssertionError(f"no literal after {label!r}")


def _measured() -> dict[Path, dict]:
    """SOURCE.md's measured rollouts: file -> events, repeats, final total, models, efforts, line types."""
    out = {}
    for source in sorted(REAL.glob("*/SOURCE.md")):
        for match in _MEASURED.finditer(source.read_text()):
            body = match["body"]
            events = re.search(r"(\d+) token_count events \((\d+) with info, (\d+) repeat", body)
            out[source.parent / match["file"]] = {
                "with_info": int(events[2]), "repeats": int(events[3]),
                "final": _dict_after(body, "final total_token_usage"),
                "models": _dict_after(body, "models"), "effort": _dict_after(body, "effort"),
                "lines": _dict_after(body, "line types"),
            }
    return out


MEASURED = _measured()


def test_source_md_was_read():
    # 2 Entire checkpoints + 2 CodeMie rollouts + 6 localpush rollouts
    assert len(MEASURED) == 10 and all(path.is_file() for path in MEASURED)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return aiscale.load([REAL], store=tmp_path_factory.mktemp("codex") / "s")


@pytest.fixture(scope="module")
def facts(store):
    facts = store.facts()
    files = store.spans(columns=["trace_id", "source_file"], priced=False).drop_duplicates("trace_id")
    return facts.merge(files, on="trace_id").set_index("source_file")


def test_whole_tree_loads_and_skips_what_is_not_a_session(store):
    summary = store.last_load.summary()
    loaded = summary[summary["status"] == "loaded"]
    assert set(loaded["format"]) == {"codex"}
    assert {Path(p) for p in loaded["path"]} == set(MEASURED)
    skipped = {Path(p).name for p in summary.loc[summary["status"] == "skipped", "path"]}
    assert skipped == {"SOURCE.md", "metadata.json", "UPSTREAM-README.md", "UPSTREAM-manifest.json"}
    assert store.last_load.rows_read == store.last_load.rows_loaded + store.last_load.rows_quarantined
    assert store.last_load.rows_quarantined == 0


@pytest.mark.parametrize("path", sorted(MEASURED), ids=lambda p: p.name[:40])
def test_calls_tokens_and_models_equal_source_md(facts, store, path):
    truth, row = MEASURED[path], facts.loc[str(path)]
    calls = truth["with_info"] - truth["repeats"]
    tools = sum(truth["lines"].get(item, 0) for item in _TOOL_ITEMS)
    assert row["n_tool_calls"] == tools
    if truth["with_info"]:
        assert row["n_llm_calls"] == calls
    final = truth["final"]
    if final is None:  # the 0.128 alpha rollout: no usage at all, never zeros
        assert row["n_llm_calls"] > 0 and row["unpriced_llm_calls"] == row["n_llm_calls"]
        assert pd.isna(row["cost_usd"])
        for column in ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"):
            assert pd.isna(row[column])
        return
    assert row["input_tokens"] == final["input_tokens"]
    assert row["cache_read_tokens"] == final["cached_input_tokens"]
    assert row["output_tokens"] == final["output_tokens"]
    assert row["reasoning_tokens"] == final["reasoning_output_tokens"]
    assert row["input_tokens"] + row["output_tokens"] == final["total_tokens"]
    assert row["variant"] == next(iter(truth["models"]))
    spans = store.spans(columns=["source_file", "kind", "model"], priced=False)
    llm = spans[(spans["kind"] == "llm") & (spans["source_file"] == str(path))]
    assert set(llm["model"]) == set(truth["models"])
    metadata = json.loads(row["metadata"])
    assert metadata["calls_sum_to_final_total"] is True
    assert metadata["repeated_token_events"] == truth["repeats"]
    if sum(truth["models"].values()) == calls:  # CLI 0.104 writes a turn_context per request
        assert metadata["efforts"] == truth["effort"]
    assert row["cost_usd"] > 0 and row["unpriced_llm_calls"] == 0


def test_a_duplicated_event_is_one_call(facts):
    # SOURCE.md: 0.104 writes every token_count twice; summing last_token_usage naively doubles usage
    path = next(p for p in MEASURED if p.name.startswith("rollout-2026-02-23T20-34-25"))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    naive = sum(x["payload"]["info"]["last_token_usage"]["input_tokens"] for x in lines
                if x["type"] == "event_msg" and x["payload"].get("type") == "token_count" and x["payload"]["info"])
    assert naive > facts.loc[str(path), "input_tokens"] == MEASURED[path]["final"]["input_tokens"]


def _entire(folder: str) -> dict:
    return json.loads((REAL / "agentv-entire-codex" / folder / "0" / "metadata.json").read_text())


def test_entire_metadata_totals(facts, store):
    # SOURCE.md: Entire's input_tokens is the non-cached input; a3 covers the whole rollout
    usage = _entire("a3-92ff332928")["token_usage"]
    row = facts.loc[str(REAL / "agentv-entire-codex" / "a3-92ff332928" / "0" / "full.jsonl")]
    assert row["n_llm_calls"] == usage["api_call_count"]
    assert row["input_tokens"] == usage["input_tokens"] + usage["cache_read_tokens"]
    assert row["cache_read_tokens"] == usage["cache_read_tokens"]
    assert row["output_tokens"] == usage["output_tokens"]


def test_entire_checkpoint_slice_is_a_run_of_calls(store):
    # 8d: Entire's totals cover 10 of the 40 calls: some 10 consecutive calls, ended before its checkpoint
    meta = _entire("8d-1ecb6dc628")
    usage, n = meta["token_usage"], meta["token_usage"]["api_call_count"]
    path = (REAL / "agentv-entire-codex" / "8d-1ecb6dc628" / "0" / "full.jsonl").as_posix()
    spans = store.spans()
    llm = spans[(spans["kind"] == "llm") & (spans["source_file"] == path)].sort_values("start_time")
    windows = llm[["input_tokens", "cache_read_tokens", "output_tokens"]].rolling(n).sum().dropna()
    match = windows[(windows["input_tokens"] == usage["input_tokens"] + usage["cache_read_tokens"])
                    & (windows["cache_read_tokens"] == usage["cache_read_tokens"])
                    & (windows["output_tokens"] == usage["output_tokens"])]
    assert len(match) == 1
    assert llm.loc[match.index[0], "end_time"] <= pd.Timestamp(meta["created_at"][:26] + "Z")


def test_spans_are_well_formed(store):
    spans = store.spans()
    llm, tools = spans[spans["kind"] == "llm"], spans[spans["kind"] == "tool"]
    assert (llm["start_time"] <= llm["end_time"]).all()
    assert set(llm["parent_id"]) == set(tools["parent_id"]) == {"session"}
    assert (llm["provider"].dropna() == "openai").all()
    calls = tools[tools["tool_name"] != "web_search"]  # a redacted web search has no action
    assert calls["tool_arguments"].notna().all() and len(calls) > 900
    roots = spans[spans["kind"] == "agent"].set_index("trace_id")
    first = llm.groupby("trace_id")["start_time"].min()
    assert (roots.loc[first.index, "start_time"] <= first).all()


def _line(stamp: str, kind: str, payload: dict) -> str:
    return json.dumps({"timestamp": f"2026-01-01T00:00:{stamp}Z", "type": kind, "payload": payload})


def _usage(inp: int, out: int, cached: int = 0, reasoning: int = 0) -> dict:
    return {"input_tokens": inp, "cached_input_tokens": cached, "output_tokens": out,
            "reasoning_output_tokens": reasoning, "total_tokens": inp + out}


def _token_count(stamp: str, total: dict | None, last: dict | None = None) -> str:
    info = None if total is None else {"total_token_usage": total, "last_token_usage": last or total}
    return _line(stamp, "event_msg", {"type": "token_count", "info": info})


def _rollout(tmp_path: Path, lines: list[str], model: str = "gpt-5-codex") -> Path:
    head = [_line("00", "session_meta", {"id": "sess-1", "cwd": "/home/u/proj", "cli_version": "0.1",
                                         "model_provider": "openai"}),
            _line("01", "turn_context", {"model": model, "effort": "high"})]
    path = tmp_path / "sessions" / "2026" / "01" / "01" / "rollout-x.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(head + lines) + "\n")
    return path


def test_usage_is_the_difference_of_totals(tmp_path):
    lines = [_token_count("02", None),  # info: null
             _token_count("03", _usage(100, 10, 40, 4)), _token_count("03", _usage(100, 10, 40, 4)),
             # last_token_usage disagrees with the totals: the totals win, last is kept
             _token_count("05", _usage(250, 30, 140, 9), last=_usage(149, 20, 100, 5))]
    spans = next(codex.read(_rollout(tmp_path, lines))).spans
    llm = spans[spans["kind"] == "llm"]
    assert llm["input_tokens"].tolist() == [100, 150]
    assert llm["cache_read_tokens"].tolist() == [40, 100]
    assert llm["output_tokens"].tolist() == [10, 20] and llm["reasoning_tokens"].tolist() == [4, 5]
    assert json.loads(llm["attributes"].iloc[1])["last_token_usage"]["input_tokens"] == 149
    assert llm["model"].tolist() == ["gpt-5-codex"] * 2 and llm["cache_write_tokens"].isna().all()


def test_a_counter_reset_falls_back_to_the_call_usage(tmp_path):
    lines = [_token_count("02", _usage(100, 10)), _token_count("04", _usage(30, 3))]
    spans = next(codex.read(_rollout(tmp_path, lines))).spans
    llm = spans[spans["kind"] == "llm"]
    assert llm["input_tokens"].tolist() == [100, 30]
    assert "counter reset" in llm["attributes"].iloc[1]


def test_unknown_model_costs_null_not_zero(tmp_path):
    path = _rollout(tmp_path, [_token_count("02", _usage(100, 10))], model="no-such-model-xyz")
    row = aiscale.load([path], store=tmp_path / "s").facts().iloc[0]
    assert row["input_tokens"] == 100 and row["unpriced_llm_calls"] == 1 and pd.isna(row["cost_usd"])


def test_tool_spans_end_at_their_output(tmp_path):
    lines = [_line("02", "response_item", {"type": "function_call", "name": "shell", "call_id": "c1",
                                           "arguments": "{\"cmd\": \"ls\"}"}),
             _token_count("03", _usage(100, 10)),
             _line("07", "response_item", {"type": "function_call_output", "call_id": "c1",
                                           "output": "Process exited with code 2\nOutput:\n"})]
    spans = next(codex.read(_rollout(tmp_path, lines))).spans.set_index("kind")
    tool, llm = spans.loc["tool"], spans.loc["llm"]
    assert tool["tool_name"] == "shell" and tool["tool_arguments"] == "{\"cmd\": \"ls\"}"
    assert (tool["end_time"] - tool["start_time"]).total_seconds() == 5
    assert json.loads(tool["attributes"])["exit_code"] == 2
    assert llm["end_time"] == tool["start_time"]  # the call ends with its last output item


def test_bad_line_is_quarantined_with_its_line_number(tmp_path):
    path = _rollout(tmp_path, ['{"timestamp": "2026-01-01T00:00:02Z", "type": "event_', "[1, 2]",
                               _token_count("03", _usage(100, 10))])
    store = aiscale.load([path], store=tmp_path / "s")
    bad = store.quarantine().sort_values("source_row")
    assert bad["source_row"].tolist() == [3, 4]
    assert "invalid JSON" in bad["reason"].iloc[0] and "payload" in bad["reason"].iloc[1]
    summary = store.last_load
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined == 2 + 2
    assert store.facts()["input_tokens"].iloc[0] == 100


def test_sniffing():
    path = next(iter(MEASURED))
    assert detect(path) is codex
    metadata = REAL / "agentv-entire-codex" / "a3-92ff332928" / "0" / "metadata.json"
    assert not codex.sniff(metadata, metadata.read_bytes())


def test_a_rollout_without_session_id_gets_a_tagged_file_id(tmp_path):
    lines = [_line("00", "session_meta", {"cwd": "/p"}), _token_count("02", _usage(10, 1))]
    ids = set()
    for folder in ("a", "b"):  # the same file name in two folders: two traces, never merged
        path = tmp_path / folder / "rollout-x.jsonl"
        path.parent.mkdir()
        path.write_text("\n".join(lines) + "\n")
        ids |= set(next(codex.read(path)).spans["trace_id"])
    assert len(ids) == 2 and all(i.startswith("rollout-x~") for i in ids)
