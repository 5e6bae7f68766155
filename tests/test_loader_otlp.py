"""The OTLP JSON loader, on fixtures made by the real OpenTelemetry SDK (tests/fixtures/).

Expected values are the ones written into tests/fixtures/make_otel_fixture.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.loaders import detect, otlp

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SDK = FIXTURES / "otel_sdk_genai.jsonl"  # protobuf JSON printer: base64 ids, enum names
COLLECTOR = FIXTURES / "otel_collector_genai.jsonl"  # Collector: hex ids, enum integers
T0 = pd.Timestamp("2025-06-15 15:06:40", tz="UTC")
GENAI, OPENINF, OPENLLMETRY = (f"{n:032x}" for n in (0xA01, 0xA02, 0xA03))


def _sid(n: int) -> str:
    return f"{0xB000 + n:016x}"


def _read(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    chunks = list(otlp.read(path))
    return (pd.concat([c.spans for c in chunks], ignore_index=True),
            pd.concat([c.traces for c in chunks], ignore_index=True))


@pytest.fixture(scope="module")
def sdk_spans() -> pd.DataFrame:
    spans, _ = _read(SDK)
    return spans.set_index("span_id")


def _attrs(spans: pd.DataFrame, span_id: str) -> dict:
    return json.loads(spans.loc[span_id, "attributes"])


def test_genai_chat_span_maps_every_attribute(sdk_spans):
    chat = sdk_spans.loc[_sid(2)]
    assert chat["trace_id"] == GENAI and chat["parent_id"] == _sid(1)
    assert (chat["kind"], chat["name"], chat["status"]) == ("llm", "chat gpt-4o", "unset")
    assert (chat["provider"], chat["model"]) == ("openai", "gpt-4o-2024-08-06")  # response model
    tokens = chat[["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                   "reasoning_tokens"]].tolist()
    assert tokens == [1200, 300, 800, 100, 120]
    assert chat["start_time"] == T0 + pd.Timedelta(seconds=0.1)
    assert chat["end_time"] == T0 + pd.Timedelta(seconds=1.6)
    assert (chat["source"], chat["source_file"], chat["source_row"]) == ("otlp", str(SDK), 1)
    attrs = _attrs(sdk_spans, _sid(2))
    assert attrs["gen_ai.request.model"] == "gpt-4o"  # kept: the column holds the response model
    assert attrs["gen_ai.request.temperature"] == 0.2 and attrs["gen_ai.request.max_tokens"] == 1024
    assert attrs["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert attrs["otel.resource"]["service.name"] == "weather-bot"
    assert attrs["otel.scope"] == {"name": "aiscale.fixture", "version": "1.0.0"}
    assert attrs["otel.span.kind"] == "SPAN_KIND_CLIENT"
    for moved in ("gen_ai.usage.input_tokens", "gen_ai.response.model", "gen_ai.provider.name"):
        assert moved not in attrs


def test_genai_deprecated_names_tools_and_errors(sdk_spans):
    old = sdk_spans.loc[_sid(4)]
    assert (old["provider"], old["model"]) == ("openai", "gpt-4o")
    assert (old["input_tokens"], old["output_tokens"]) == (1500, 200)
    assert pd.isna(old["cache_read_tokens"]) and pd.isna(old["reasoning_tokens"])
    tools = sdk_spans.loc[[_sid(3), _sid(5)]]
    assert tools["kind"].tolist() == ["tool", "tool"]
    assert tools["tool_name"].tolist() == ["get_weather", "get_weather"]
    assert tools["tool_arguments"].tolist() == ['{"city": "Paris"}'] * 2
    failed = sdk_spans.loc[_sid(6)]
    assert (failed["status"], failed["error_type"], failed["tool_name"]) == (
        "error", "TimeoutError", "search_docs")
    attrs = _attrs(sdk_spans, _sid(6))
    assert attrs["otel.status.message"] == "search_docs timed out after 3.8 s"
    assert attrs["otel.events"][0]["name"] == "exception"


def test_agent_totals_stay_in_attributes_not_token_columns(sdk_spans):
    root = sdk_spans.loc[_sid(1)]
    assert root["kind"] == "agent" and pd.isna(root["parent_id"])
    assert root[["input_tokens", "output_tokens"]].isna().all()
    assert _attrs(sdk_spans, _sid(1))["gen_ai.usage.input_tokens"] == 4700
    genai = sdk_spans[sdk_spans["trace_id"] == GENAI]
    assert genai["input_tokens"].sum() == 1200 + 1500 + 2000
    assert set(sdk_spans.loc[sdk_spans["input_tokens"].notna(), "kind"]) == {"llm"}


def test_trace_rows_from_convention_attributes():
    _, traces = _read(SDK)
    row = traces.set_index("trace_id").loc[GENAI]
    assert (row["task_id"], row["trial"], row["variant"]) == ("task-7", 2, "gpt-4o@v3")
    assert bool(row["success"]) is True and row["score"] == 0.75
    assert (row["user_id"], row["session_id"], row["started_at"]) == ("user-9", "sess-1", T0)
    oi = traces.set_index("trace_id").loc[OPENINF]
    assert (oi["session_id"], oi["user_id"]) == ("oi-sess", "oi-user")
    assert json.loads(oi["metadata"]) == {"experiment": "oi-1"}


def test_base64_and_hex_ids_give_the_same_rows():
    base64_spans, base64_traces = _read(SDK)
    hex_spans, hex_traces = _read(COLLECTOR)
    columns = [c for c in base64_spans.columns if c not in ("attributes", "source_file")]
    pd.testing.assert_frame_equal(base64_spans[columns], hex_spans[columns])
    pd.testing.assert_frame_equal(base64_traces, hex_traces)
    assert set(hex_spans["trace_id"]) == {GENAI, OPENINF, OPENLLMETRY}
    assert json.loads(hex_spans["attributes"][0])["otel.span.kind"] == "SPAN_KIND_CLIENT"


def test_openinference_spans(sdk_spans):
    oi = sdk_spans[sdk_spans["trace_id"] == OPENINF]
    assert sorted(oi["kind"]) == ["agent", "chain", "llm", "llm", "tool"]
    first = oi.loc[_sid(10)]
    assert (first["provider"], first["model"]) == ("anthropic", "claude-sonnet-4-20250514")
    assert first[["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                  "reasoning_tokens"]].tolist() == [600, 40, 400, 100, 10]
    assert first["reported_cost_usd"] == pytest.approx(0.0018)
    assert oi.loc[_sid(12), "reported_cost_usd"] == pytest.approx(0.0015)
    tool = oi.loc[_sid(11)]
    assert (tool["tool_name"], tool["tool_arguments"]) == ("calculator", '{"expression": "2+2"}')
    for parent in (_sid(8), _sid(9)):  # AGENT and CHAIN carry their children's totals
        assert oi.loc[parent, ["input_tokens", "output_tokens"]].isna().all()
        assert _attrs(sdk_spans, parent)["llm.token_count.prompt"] == 900
    assert oi["input_tokens"].sum() == 900 and oi["reported_cost_usd"].sum() == pytest.approx(0.0033)


def test_openllmetry_spans(sdk_spans):
    tl = sdk_spans[sdk_spans["trace_id"] == OPENLLMETRY]
    llm, tool, workflow = tl.loc[_sid(14)], tl.loc[_sid(15)], tl.loc[_sid(13)]
    assert (llm["kind"], llm["provider"], llm["model"]) == ("llm", "openai", "gpt-3.5-turbo-0125")
    assert (llm["input_tokens"], llm["output_tokens"], llm["cache_read_tokens"]) == (50, 25, 20)
    assert _attrs(sdk_spans, _sid(14))["gen_ai.usage.total_tokens"] == 75
    assert (tool["kind"], tool["tool_name"], tool["tool_arguments"]) == (
        "tool", "joke_tool", '{"topic": "otel"}')
    assert workflow["kind"] == "chain" and pd.isna(workflow["input_tokens"])
    assert _attrs(sdk_spans, _sid(13))["gen_ai.usage.total_tokens"] == 75


def _line(*spans: dict) -> str:
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                          "scopeSpans": [{"spans": list(spans)}]}]})


def _span(span_id: str, attrs: dict | None = None, **fields) -> dict:
    typed = [{"key": k, "value": {"intValue": v} if isinstance(v, int) else {"stringValue": v}}
             for k, v in (attrs or {}).items()]
    return {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": span_id, "name": "s",
            "startTimeUnixNano": "1750000000000000000", "endTimeUnixNano": "1750000001000000000",
            "attributes": typed, **fields}


def test_sources_that_exclude_cache_and_reasoning_are_normalised(tmp_path):
    path = tmp_path / "anthropic_style.jsonl"
    path.write_text(_line(_span("0000000000000001", {
        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.cache_read.input_tokens": 1000, "gen_ai.usage.cache_creation.input_tokens": 5,
        "gen_ai.usage.output_tokens": 3, "gen_ai.usage.reasoning.output_tokens": 40})) + "\n")
    spans, _ = _read(path)
    assert (spans["input_tokens"][0], spans["output_tokens"][0]) == (1015, 43)
    assert json.loads(spans["attributes"][0])["aiscale.tokens_normalised"] is True


BAD_LINES = {  # line number -> (content, reason pattern); line 1 is the SDK fixture's agent trace
    2: (None, r"invalid JSON"),  # the first line, truncated
    3: ("this is not json", r"invalid JSON"),
    4: (b'\xff\xfe{"resourceSpans": []}', r"not valid UTF-8"),
    5: ('{"spans": []}', r"no resourceSpans"),
    6: (_line(_span("00000000000000a6", {"gen_ai.operation.name": "chat",
                                         "gen_ai.usage.input_tokens": "abc"})),
        r"gen_ai.usage.input_tokens is not an integer"),
    7: (_line(_span("")), r"missing span_id"),
    8: (_line(_span("00000000000000a8", endTimeUnixNano="1749999999000000000")),
        r"end_time before start_time"),
    9: (_line(_span("000000000000b002", traceId="AAAAAAAAAAAAAAAAAAAKAQ==")), r"duplicate span_id"),
    10: (_line(_span("00000000000000aa", status={"code": 7})), r"unknown status code"),
    11: (_line(_span("00000000000000ab", {"openinference.span.kind": "BANANA"})),
         r"unknown openinference.span.kind"),
}


@pytest.mark.parametrize("block_bytes", [otlp.BLOCK_BYTES, 1])  # one block, or one per line
def test_bad_input_is_quarantined_with_file_line_and_reason(tmp_path, monkeypatch, block_bytes):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", block_bytes)
    first = SDK.read_bytes().split(b"\n")[0]
    content = [first]
    for number in sorted(BAD_LINES):
        text = BAD_LINES[number][0]
        text = first[:300] if text is None else text
        content.append(text if isinstance(text, bytes) else text.encode())
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(content) + b"\n\n")  # a trailing blank line is not a row
    store = aiscale.load([path], store=tmp_path / "store")
    load = store.last_load
    assert (load.rows_read, load.rows_loaded, load.rows_quarantined) == (7 + 10, 7, 10)
    quarantine = store.quarantine().sort_values("source_row")
    assert quarantine["source_file"].eq(str(path)).all()
    assert quarantine["source_row"].tolist() == sorted(BAD_LINES)
    for row in quarantine.itertuples():
        assert pd.Series([row.reason]).str.contains(BAD_LINES[row.source_row][1]).all(), row
    assert len(store.spans()) == 7


def test_load_through_the_store(tmp_path):
    store = aiscale.load([SDK], store=tmp_path / "store")
    assert store.last_load.files[0].format == "otlp"
    spans = store.spans()
    assert len(spans) == 15 and spans["span_id"].is_unique
    assert spans["input_tokens"].sum() == 4700 + 900 + 50
    assert set(store.traces()["trace_id"]) == {GENAI, OPENINF, OPENLLMETRY}
    again = aiscale.load([SDK], store=tmp_path / "store")
    assert again.last_load.rows_loaded == 0 and len(again.spans()) == 15


def test_pretty_printed_document_loads_like_a_line(tmp_path):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(json.loads(SDK.read_text().splitlines()[0]), indent=2))
    pretty, _ = _read(path)
    lines, _ = _read(SDK)
    columns = ["trace_id", "span_id", "kind", "input_tokens", "tool_arguments", "attributes"]
    expected = lines[lines["trace_id"] == GENAI][columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(pretty[columns], expected)


def test_sniff_recognises_otlp_and_nothing_else(tmp_path):
    assert detect(SDK).NAME == "otlp" and detect(COLLECTOR).NAME == "otlp"
    others = {"spans.jsonl": '{"trace_id": "t", "span_id": "s", "resourceSpans": []}\n',
              "table.csv": "resourceSpans,trace_id\n1,2\n",
              "logs.jsonl": '{"resourceLogs": [{"scopeLogs": []}]}\n'}
    for name, text in others.items():
        path = tmp_path / name
        path.write_text(text)
        assert not otlp.sniff(path, path.read_bytes()), name
    pretty = tmp_path / "pretty.json"
    pretty.write_text('{\n  "resourceSpans": [\n  ]\n}\n')
    assert otlp.sniff(pretty, pretty.read_bytes())


def test_fixture_facts_equal_hand_computed_values(tmp_path):
    facts = aiscale.load([SDK], store=tmp_path / "store").facts().set_index("trace_id")
    genai = facts.loc[GENAI]
    # 3 chat calls under the agent; get_weather {"city": "Paris"} issued twice; search_docs fails.
    assert genai[["n_llm_calls", "n_tool_calls", "iterations", "repeated_calls",
                  "n_errors"]].tolist() == [3, 3, 3, 1, 1]
    assert genai[["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                  "reasoning_tokens"]].tolist() == [1200 + 1500 + 2000, 300 + 200 + 150,
                                                    800 + 1500, 100 + 0, 120 + 50]
    assert genai["latency_s"] == pytest.approx(10.0)
    assert genai["llm_latency_s"] == pytest.approx(1.5 + 1.2 + 1.5)
    assert genai["tool_latency_s"] == pytest.approx(0.5 + 0.4 + 3.8)
    assert (genai["task_id"], genai["trial"], genai["variant"]) == ("task-7", 2, "gpt-4o@v3")
    oi = facts.loc[OPENINF]  # the AGENT and CHAIN totals (900 / 90) are not added again
    assert oi[["n_llm_calls", "iterations", "input_tokens", "output_tokens"]].tolist() == [
        2, 2, 600 + 300, 40 + 50]
    assert oi["reported_cost_usd"] == pytest.approx(0.0018 + 0.0015)
    assert oi["latency_s"] == pytest.approx(2.2)
    tl = facts.loc[OPENLLMETRY]
    assert tl[["n_llm_calls", "input_tokens", "output_tokens"]].tolist() == [1, 50, 25]
