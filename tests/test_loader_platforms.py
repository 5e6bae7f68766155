"""Platform loaders (Phoenix, LangSmith, Langfuse) on fixtures made by the real libraries.

Expected values are hand-computed from the fixture scenario (tests/fixtures/platforms/
_scenario.py): per agent trace the loopback OpenAI server answered two calls with usage
prompt 120 (100 cached) / completion 30 (10 reasoning) and prompt 200 / completion 20; the
export's reported price is $0.15/M input and $0.60/M output; gpt-4o-mini's list price is
$0.15/M input, $0.075/M cached input, $0.60/M output. Latencies are read from the raw
fixture timestamps independently of the loaders.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import aiscale
from aiscale import schema
from aiscale.loaders import UnknownFormatError, detect

FIX = Path(__file__).resolve().parent / "fixtures" / "platforms"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
INPUT, OUTPUT, CACHE_READ, REASONING = 320, 50, 100, 10
REPORTED = (120 + 200) * 0.15e-6 + (30 + 20) * 0.60e-6  # 7.8e-5
PRICED = (220 * 0.15 + 100 * 0.075 + 50 * 0.60) / 1e6  # 7.05e-5


def load(tmp_path: Path, *names: str | Path) -> aiscale.TraceStore:
    paths = [name if isinstance(name, Path) else FIX / name for name in names]
    return aiscale.load(paths, store=tmp_path / "store")


def check_agent_trace(row: pd.Series, *, reported: float | None) -> None:
    assert (row.n_llm_calls, row.n_tool_calls, row.iterations) == (2, 1, 2)
    assert (row.input_tokens, row.output_tokens) == (INPUT, OUTPUT)
    assert (row.cache_read_tokens, row.reasoning_tokens) == (CACHE_READ, REASONING)
    assert row.cost_usd == pytest.approx(PRICED, rel=1e-9)
    if reported is None:
        assert pd.isna(row.reported_cost_usd)
    else:
        assert row.reported_cost_usd == pytest.approx(reported, rel=1e-9)


# -- Phoenix ---------------------------------------------------------------------------------
def _phoenix_roots() -> pd.DataFrame:
    frame = pq.read_table(FIX / "phoenix_spans.parquet").to_pandas().reset_index(drop=True)
    return frame[frame["parent_id"].isna()].set_index("context.trace_id")


@pytest.mark.parametrize("name", ["phoenix_spans.parquet", "phoenix_spans.jsonl"])
def test_phoenix_facts_match_hand_computed(tmp_path, name):
    store = load(tmp_path, name)
    assert store.last_load.files[0].format == "phoenix"
    assert store.last_load.rows_read == store.last_load.rows_loaded == 10
    facts = store.facts().set_index("trace_id")
    roots = _phoenix_roots()
    agents = roots[roots["span_kind"] == "AGENT"]
    assert len(agents) == 2
    for trace_id, root in agents.iterrows():
        row = facts.loc[trace_id]
        check_agent_trace(row, reported=None)  # OpenInference reported no cost
        expected = (root.end_time - root.start_time).total_seconds()
        assert row.latency_s == pytest.approx(expected, abs=2e-3)  # JSONL keeps milliseconds
        assert row.session_id == root["attributes.session.id"]
        assert row.user_id == "u1"


def test_phoenix_agent_totals_are_kept_not_counted(tmp_path):
    store = load(tmp_path, "phoenix_spans.parquet")
    spans = store.spans()
    agent = spans[spans["kind"] == "agent"].iloc[0]
    assert pd.isna(agent.input_tokens)
    assert json.loads(agent.attributes)["llm.token_count.prompt"] == INPUT
    per_trace = spans[spans.kind == "llm"].groupby("trace_id")["input_tokens"].sum()
    facts = store.facts().set_index("trace_id")
    assert (facts.loc[per_trace.index, "input_tokens"] == per_trace).all()


def test_phoenix_streamed_call_without_usage_is_flagged(tmp_path):
    store = load(tmp_path, "phoenix_spans.jsonl")
    spans = store.spans()
    streamed = spans[(spans.kind == "llm") & spans.input_tokens.isna()]
    assert len(streamed) == 1
    assert json.loads(streamed.iloc[0].attributes)["aiscale.usage_missing"] is True
    facts = store.facts().set_index("trace_id").loc[streamed.iloc[0].trace_id]
    assert facts.n_llm_calls == 1 and pd.isna(facts.input_tokens) and pd.isna(facts.cost_usd)


# -- LangSmith -------------------------------------------------------------------------------
def _langsmith_roots() -> dict[str, dict]:
    runs = [json.loads(line) for line in (FIX / "langsmith_sdk_runs.jsonl").read_text().splitlines()]
    return {r["trace_id"]: r for r in runs if r["parent_run_id"] is None}


def _seconds(run: dict) -> float:
    start, end = (datetime.fromisoformat(run[k]) for k in ("start_time", "end_time"))
    return (end - start).total_seconds()


def test_langsmith_sdk_runs_facts(tmp_path):
    store = load(tmp_path, "langsmith_sdk_runs.jsonl")
    facts = store.facts().set_index("trace_id")
    roots = _langsmith_roots()
    assert sorted(facts.index) == sorted(roots)
    for trace_id, root in roots.items():
        check_agent_trace(facts.loc[trace_id], reported=None)
        assert facts.loc[trace_id].latency_s == pytest.approx(_seconds(root), abs=1e-6)


def test_langsmith_export_root_totals_trials_and_feedback(tmp_path):
    store = load(tmp_path, "langsmith_export.parquet")
    export = pd.read_parquet(FIX / "langsmith_export.parquet")
    assert export.loc[export.parent_run_id.isna(), "prompt_tokens"].eq(INPUT).all()  # root carries totals
    facts = store.facts().sort_values("started_at")
    for _, row in facts.iterrows():
        check_agent_trace(row, reported=REPORTED)
    assert facts["task_id"].tolist() == ["0b6f6e6c-0000-4000-8000-000000000001"] * 2
    assert facts["trial"].tolist() == [0, 1]
    assert facts["success"].tolist() == [True, False]
    assert facts["score"].tolist() == [1.0, 0.0]


# -- Langfuse --------------------------------------------------------------------------------
LANGFUSE = ["langfuse_observations_api.json", "langfuse_observations.csv", "langfuse_traces.jsonl",
            "langfuse_scores.csv"]


def test_langfuse_exports_facts_and_outcomes(tmp_path):
    store = load(tmp_path, *LANGFUSE)
    reads = {Path(f.path).name: (f.format, f.rows_read, f.rows_loaded) for f in store.last_load.files}
    assert reads == {"langfuse_observations_api.json": ("langfuse", 5, 5),
                     "langfuse_observations.csv": ("langfuse", 4, 4),
                     "langfuse_traces.jsonl": ("langfuse", 3, 3),
                     "langfuse_scores.csv": ("langfuse", 4, 4)}
    facts = store.facts().set_index("trace_id")
    for trace in ("lf-trace-a", "lf-trace-c"):  # camelCase API JSON and snake_case CSV alike
        row = facts.loc[trace]
        check_agent_trace(row, reported=REPORTED)
        assert (row.latency_s, row.llm_latency_s) == (5.0, 2.0)
        assert row.tool_latency_s == pytest.approx(0.2)
        assert row.user_id == "u1"
    assert (facts.loc["lf-trace-a", "success"], facts.loc["lf-trace-a", "score"]) == (True, 0.8)
    assert (facts.loc["lf-trace-c", "success"], facts.loc["lf-trace-c", "score"]) == (False, 0.0)
    streamed = facts.loc["lf-trace-b"]
    assert streamed.n_llm_calls == 1 and pd.isna(streamed.input_tokens) and pd.isna(streamed.success)
    assert streamed.session_id == "s2" and streamed.latency_s == 1.5


@pytest.mark.parametrize("module, args, expected", [
    # Langfuse usage details count cache and reasoning apart (total = sum of every key) ...
    ("langfuse", ({"input": 20, "input_cached_tokens": 100, "output": 20,
                   "output_reasoning_tokens": 10, "total": 150},), (120, 30, 100, None, 10)),
    # ... unless the total shows they were counted inside input/output
    ("langfuse", ({"input": 120, "cache_read_input_tokens": 100, "output": 30, "total": 150},),
     (120, 30, 100, None, None)),
    # Anthropic-style: cache reads and writes apart from input, no total
    ("langfuse", ({"input": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 40,
                   "output": 5},), (150, 5, 100, 40, None)),
])
def test_usage_normalised_to_canonical_convention(module, args, expected):
    from aiscale.loaders import langfuse

    assert langfuse.usage_columns(*args) == expected


def test_langsmith_cache_counted_apart_is_added(tmp_path):
    """A run whose prompt_tokens exclude cache reads (prompt < cache) gets them added."""
    run = {"id": "r1", "trace_id": "t1", "parent_run_id": None, "run_type": "llm", "name": "x",
           "dotted_order": "a", "start_time": "2025-01-01T00:00:00+00:00",
           "end_time": "2025-01-01T00:00:02+00:00", "prompt_tokens": 10, "completion_tokens": 5,
           "total_tokens": 115, "prompt_token_details": {"cache_read": 100},
           "extra": {"metadata": {"ls_provider": "anthropic", "ls_model_name": "claude-3-5-haiku"}}}
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(run) + "\n")
    facts = load(tmp_path, path).facts()
    assert (facts.input_tokens.item(), facts.cache_read_tokens.item(), facts.output_tokens.item()) == (
        110, 100, 5)


# -- detection -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("phoenix_spans.parquet", "phoenix"), ("phoenix_spans.jsonl", "phoenix"),
    ("langsmith_sdk_runs.jsonl", "langsmith"), ("langsmith_export.parquet", "langsmith"),
    *[(n, "langfuse") for n in LANGFUSE],
])
def test_detection_tells_formats_apart(name, expected):
    assert detect(FIX / name).NAME == expected


def test_detection_leaves_other_formats_alone(tmp_path):
    from aiscale.loaders import langfuse, langsmith, phoenix
    from aiscale.loaders.base import read_head

    others = sorted((Path(__file__).parent / "fixtures").glob("otel_*.jsonl"))
    others += sorted(p for p in REAL.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl", ".traj", ".csv"))
    canonical = tmp_path / "spans.parquet"
    pq.write_table(schema.conform(pd.DataFrame({"trace_id": ["t"], "span_id": ["s"], "kind": ["llm"]}),
                                  "spans"), canonical)
    others.append(canonical)
    assert len(others) > 10
    for path in others:
        head = read_head(path)
        assert not any(m.sniff(path, head) for m in (phoenix, langsmith, langfuse)), path


def test_mixed_and_unknown_files_get_clear_errors(tmp_path):
    mixed = tmp_path / "mixed.jsonl"
    phoenix_line = (FIX / "phoenix_spans.jsonl").read_text().splitlines()[0]
    langsmith_line = (FIX / "langsmith_sdk_runs.jsonl").read_text().splitlines()[0]
    mixed.write_text(phoenix_line + "\n" + langsmith_line + "\n")
    with pytest.raises(UnknownFormatError, match=r"mixes records of several formats \(langsmith at "
                                                 r"record 2, phoenix at record 1\)"):
        aiscale.load([mixed], store=tmp_path / "s1")
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("a,b\n1,2\n")
    with pytest.raises(UnknownFormatError, match="no loader recognises this file"):
        aiscale.load([unknown], store=tmp_path / "s2")


# -- quarantine ------------------------------------------------------------------------------
def _with_bad_lines(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    shutil.copy(FIX / name, path)
    with open(path, "a") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return path


def test_bad_rows_quarantined_with_file_and_line(tmp_path):
    good = json.loads((FIX / "phoenix_spans.jsonl").read_text().splitlines()[1])
    negative = {**good, "context.span_id": "ffff000000000001", "attributes.llm.token_count.prompt": -5,
                "span_kind": "LLM"}
    phoenix = _with_bad_lines(tmp_path, "phoenix_spans.jsonl", [
        '{"context.span_id": "x", "name": ', json.dumps({**good, "context.span_id": None}), json.dumps(negative)])
    run = json.loads((FIX / "langsmith_sdk_runs.jsonl").read_text().splitlines()[1])
    backwards = {**run, "id": "bad-run", "end_time": "2000-01-01T00:00:00+00:00"}
    langsmith = _with_bad_lines(tmp_path, "langsmith_sdk_runs.jsonl", ["[1, 2]", json.dumps(backwards)])
    scores = _with_bad_lines(tmp_path, "langfuse_scores.csv", [
        "sc9,,,success,1,True,BOOLEAN,API,2025-06-15T12:00:10+00:00,",
        "sc10,lf-trace-a,,success,7,True,BOOLEAN,API,2025-06-15T12:00:10+00:00,"])
    store = aiscale.load([phoenix, langsmith, scores], store=tmp_path / "store")
    summary = store.last_load
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined
    q = store.quarantine()
    found = {(Path(f).name, int(r)): reason
             for f, r, reason in zip(q.source_file, q.source_row, q.reason, strict=True)}
    assert found[("phoenix_spans.jsonl", 11)].startswith("invalid JSON")
    assert found[("phoenix_spans.jsonl", 12)] == "missing span_id"
    assert found[("phoenix_spans.jsonl", 13)] == "input_tokens is negative"
    assert found[("langsmith_sdk_runs.jsonl", 9)] == "line is not a JSON object"
    assert found[("langsmith_sdk_runs.jsonl", 10)] == "end_time before start_time"
    assert found[("langfuse_scores.csv", 5)] == "missing trace_id"
    assert found[("langfuse_scores.csv", 6)] == "boolean score is not 0 or 1"
    assert len(found) == 7 == summary.rows_quarantined
    per_file = {Path(f.path).name: (f.rows_read, f.rows_loaded) for f in summary.files}
    assert per_file == {"phoenix_spans.jsonl": (13, 10), "langsmith_sdk_runs.jsonl": (10, 8),
                        "langfuse_scores.csv": (6, 4)}


def test_llm_span_wrapping_an_llm_span_is_counted_once(tmp_path):
    """A framework LLM span over the instrumented client's LLM span (same usage) is one call."""
    rows = [json.loads(line) for line in (FIX / "phoenix_spans.jsonl").read_text().splitlines()]
    inner = next(r for r in rows if r["span_kind"] == "LLM" and r["attributes.llm.token_count.prompt"])
    outer = {**inner, "context.span_id": inner["context.span_id"][::-1], "name": "ChatOpenAI"}
    inner_copy = {**inner, "parent_id": outer["context.span_id"]}
    rows = [outer if r is inner else r for r in rows] + [inner_copy]
    path = tmp_path / "wrapped.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    wrapped = load(tmp_path, path).facts().set_index("trace_id").loc[inner["context.trace_id"]]
    check_agent_trace(wrapped, reported=None)
    spans = aiscale.TraceStore(tmp_path / "store").spans()
    outer_span = spans[spans.span_id == outer["context.span_id"]].iloc[0]
    assert outer_span.kind == "other"
    wrapped_usage = json.loads(outer_span.attributes)["aiscale.wrapped_llm_usage"]
    assert wrapped_usage["input_tokens"] == inner["attributes.llm.token_count.prompt"]


def test_phoenix_jsonl_with_iso_times_matches_parquet(tmp_path):
    frame = pd.read_parquet(FIX / "phoenix_spans.parquet").reset_index(drop=True)
    iso = tmp_path / "iso.jsonl"
    frame.to_json(iso, orient="records", lines=True, date_format="iso", date_unit="us")
    from_iso = aiscale.load([iso], store=tmp_path / "a").facts()
    from_parquet = aiscale.load([FIX / "phoenix_spans.parquet"], store=tmp_path / "b").facts()
    columns = ["trace_id", "input_tokens", "output_tokens", "iterations", "latency_s", "llm_latency_s"]
    pd.testing.assert_frame_equal(from_iso[columns], from_parquet[columns])


def test_langsmith_error_run_is_an_error_span(tmp_path):
    run = {"id": "r1", "trace_id": "r1", "parent_run_id": None, "run_type": "tool", "name": "search",
           "dotted_order": "a", "start_time": "2025-01-01T00:00:00+00:00",
           "end_time": "2025-01-01T00:00:01.5+00:00", "inputs": {"q": "x"},
           "error": "ValueError('boom')\n\nTraceback (most recent call last): ..."}
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(run) + "\n")
    store = load(tmp_path, path)
    span = store.spans().iloc[0]
    assert (span.status, span.error_type, span.tool_name) == ("error", "ValueError('boom')", "search")
    facts = store.facts().iloc[0]
    assert (facts.n_errors, facts.n_tool_calls, facts.latency_s) == (1, 1, 1.5)
