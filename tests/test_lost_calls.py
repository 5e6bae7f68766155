"""An LLM call the store quarantined leaves its trace's cost unknown, never 0 (nor the sum of
the calls that survived): the rollup counts it as an unpriced call, on both engines' path."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

import aiscale
from aiscale.loaders.validate import validate_spans

T0 = 1_750_000_000_000_000_000


def _line(trace: str, *spans: dict) -> str:
    for span in spans:
        span.setdefault("traceId", trace)
    return json.dumps({"resourceSpans": [{"resource": {"attributes": []},
                                          "scopeSpans": [{"spans": list(spans)}]}]})


def _span(n: int, attrs: list | None = None, parent: int | None = None) -> dict:
    span = {"spanId": f"{n:016x}", "name": f"s{n}", "startTimeUnixNano": str(T0 + n * 10**9),
            "endTimeUnixNano": str(T0 + n * 10**9 + 5 * 10**8), "attributes": attrs or []}
    if parent is not None:
        span["parentSpanId"] = f"{parent:016x}"
    return span


def _chat(n: int, tokens: int | str, parent: int = 1) -> dict:
    return _span(n, [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                     {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                     {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                     {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(tokens)}},
                     {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "10"}}], parent)


def _agent(n: int = 1) -> dict:
    return _span(n, [{"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}}])


ONLY = "a" * 32     # its one LLM call has an impossible token count
ONE_OF_TWO = "b" * 32  # one good call, one impossible
CLEAN = "c" * 32    # two good calls
NO_CALL = "d" * 32  # an agent span only: costs nothing, truly


def _store(tmp_path: Path) -> aiscale.TraceStore:
    path = tmp_path / "spans.jsonl"
    path.write_text("\n".join([
        _line(ONLY, _agent(), _chat(2, 10**20)),
        _line(ONE_OF_TWO, _agent(), _chat(2, 100), _chat(3, 10**20)),
        _line(CLEAN, _agent(), _chat(2, 100), _chat(3, 200)),
        _line(NO_CALL, _agent()),
    ]) + "\n")
    return aiscale.load([path], store=tmp_path / "store")


def test_a_trace_whose_only_llm_call_was_quarantined_has_unknown_cost(tmp_path):
    store = _store(tmp_path)
    facts = store.facts().set_index("trace_id")
    assert len(store.quarantine()) == 2
    assert pd.isna(facts.loc[ONLY, "cost_usd"])  # was 0.0: no LLM call left, so "free"
    assert facts.loc[ONLY, "unpriced_llm_calls"] == 1
    assert pd.isna(facts.loc[ONE_OF_TWO, "cost_usd"])  # was the cost of the surviving call
    assert facts.loc[ONE_OF_TWO, "unpriced_llm_calls"] == 1
    assert facts.loc[CLEAN, "cost_usd"] > 0 and facts.loc[CLEAN, "unpriced_llm_calls"] == 0
    assert facts.loc[NO_CALL, "cost_usd"] == 0.0


def test_the_facts_file_leaves_a_lost_calls_cost_empty_not_zero(tmp_path):
    store = _store(tmp_path)
    out = store.export_facts(tmp_path / "facts.csv")
    table = pd.read_csv(out, dtype={"trace_id": str}).set_index("trace_id")
    assert pd.isna(table.loc[ONLY, "cost_usd"]) and pd.isna(table.loc[ONE_OF_TWO, "cost_usd"])
    assert table.loc[NO_CALL, "cost_usd"] == 0.0
    assert store.lost_llm_calls().set_index("trace_id")["lost_llm_calls"].to_dict() == {ONLY: 1, ONE_OF_TWO: 1}


def test_a_duplicate_span_is_not_a_lost_call_the_first_copy_is_kept():
    spans = pd.DataFrame({"trace_id": ["t", "t"], "span_id": ["s", "s"], "kind": ["llm", "llm"],
                          "status": ["ok", "ok"], "source_file": ["f", "f"], "source_row": [1, 2]})
    good, bad = validate_spans(spans)
    assert len(good) == 1 and len(bad) == 1
    assert not bad[0].lost_llm_call


def test_a_span_breaking_a_rule_is_a_lost_call_only_when_it_was_an_llm_call():
    spans = pd.DataFrame({"trace_id": ["t", "t"], "span_id": ["a", "b"], "kind": ["llm", "tool"],
                          "status": ["ok", "ok"], "input_tokens": [-5, -5],
                          "source_file": ["f", "f"], "source_row": [1, 2]})
    _, bad = validate_spans(spans)
    assert [(q.trace_id, q.lost_llm_call) for q in bad] == [("t", True), (None, False)]
