"""Generated traces written in every input format, with the facts they must give (fuzz tests).

A :class:`Run` is a few traces, each a list of LLM calls (tokens, cost, an optional tool
call). ``WRITERS[format](run, folder)`` writes it as that format's source records and returns
a :class:`Written`: the files, the source records (each a JSON-able object, one per source
row) and the trace id each model trace gets in the store. The expected facts are counted
from the run itself, never from aiscale: ``expected(run)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from hypothesis import strategies as st

from aiscale import schema

T0 = pd.Timestamp("2025-05-01 09:00:00", tz="UTC")
# text that must survive and stay inert: markup, quotes, non-ASCII, JSON and SQL specials
TEXT = st.text(alphabet=st.sampled_from(list("ab<>&\"'é中 \\/{}$;-")), min_size=1, max_size=12)
SAFE_ID = st.text(alphabet="abcdefghijk0123456789", min_size=3, max_size=10)


@dataclass(frozen=True)
class Call:
    input: int
    output: int
    cost: float
    tool: str | None
    args: str | None


@dataclass(frozen=True)
class Trace:
    id: str
    success: bool
    calls: tuple[Call, ...]


def untagged(trace_id: str) -> str:
    """A stored trace id without the folder tag loaders add (``run~1a2b3c/x`` -> ``run/x``)."""
    return re.sub(r"~[0-9a-f]{6}(?=/)", "", trace_id)


@dataclass
class Written:
    files: list[Path]
    records: list = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # model trace id -> store trace id


calls = st.builds(Call, input=st.integers(0, 10**6), output=st.integers(0, 10**5),
                  cost=st.integers(0, 10**6).map(lambda c: c / 1e6),
                  tool=st.one_of(st.none(), st.sampled_from(["search", "bash", "lookup<x>"])),
                  args=st.sampled_from(['{"q": "a"}', '{"q": "b"}', "ls -la", "echo '<b>'"]))
traces = st.builds(Trace, id=SAFE_ID, success=st.booleans(),
                   calls=st.lists(calls, min_size=1, max_size=4).map(tuple))
runs = st.lists(traces, min_size=1, max_size=4, unique_by=lambda t: t.id)


def expected(run: list[Trace], *, one_tool: bool = False) -> pd.DataFrame:
    """Facts counted by hand from the run: calls, tools, tokens, cost, repeats, success.

    ``one_tool``: the format names every tool call the same (mini-swe-agent's ``bash``).
    """
    rows = []
    for trace in run:
        tools = [("bash" if one_tool else c.tool, c.args) for c in trace.calls if c.tool]
        rows.append({"trace": trace.id, "n_llm_calls": len(trace.calls), "n_tool_calls": len(tools),
                     "input_tokens": sum(c.input for c in trace.calls),
                     "output_tokens": sum(c.output for c in trace.calls),
                     "reported_cost_usd": sum(c.cost for c in trace.calls),
                     "repeated_calls": len(tools) - len(set(tools)), "success": trace.success})
    return pd.DataFrame(rows).set_index("trace")


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return at(seconds).isoformat()


def _span_plan(trace: Trace) -> list[dict]:
    """Root agent span, then per call an LLM span and maybe a tool span; 1 s each."""
    spans = [{"id": "root", "parent": None, "kind": "agent", "start": 0.0, "end": 10.0 * len(trace.calls) + 1}]
    for i, call in enumerate(trace.calls):
        spans.append({"id": f"llm{i}", "parent": "root", "kind": "llm", "start": 10.0 * i + 1,
                      "end": 10.0 * i + 2, "call": call})
        if call.tool:
            spans.append({"id": f"tool{i}", "parent": "root", "kind": "tool", "start": 10.0 * i + 3,
                          "end": 10.0 * i + 4, "tool": call.tool, "args": call.args})
    return spans


def write_canonical(run: list[Trace], folder: Path) -> Written:
    rows = []
    for trace in run:
        for s in _span_plan(trace):
            call = s.get("call")
            rows.append({"trace_id": trace.id, "span_id": s["id"], "parent_id": s["parent"],
                         "kind": s["kind"], "name": f"{s['kind']} <{s['id']}>", "status": "ok",
                         "start_time": at(s["start"]), "end_time": at(s["end"]),
                         "model": "gpt-4o" if call else None,
                         "input_tokens": call.input if call else None,
                         "output_tokens": call.output if call else None,
                         "reported_cost_usd": call.cost if call else None,
                         "tool_name": s.get("tool"), "tool_arguments": s.get("args")})
    spans, outcomes = folder / "spans.parquet", folder / "run.traces.parquet"
    pq.write_table(schema.conform(pd.DataFrame(rows), "spans"), spans)
    pq.write_table(schema.conform(pd.DataFrame({"trace_id": [t.id for t in run],
                                                "success": [t.success for t in run]}), "traces"), outcomes)
    return Written([spans, outcomes], rows, {t.id: t.id for t in run})


def _write_lines(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_phoenix(run: list[Trace], folder: Path) -> Written:
    kinds = {"agent": "AGENT", "llm": "LLM", "tool": "TOOL"}
    records = []
    for trace in run:
        for s in _span_plan(trace):
            call = s.get("call")
            record = {"name": s["id"], "span_kind": kinds[s["kind"]], "parent_id": s["parent"],
                      "start_time": iso(s["start"]), "end_time": iso(s["end"]), "status_code": "OK",
                      "context.span_id": f"{trace.id}-{s['id']}", "context.trace_id": trace.id,
                      "attributes.llm.model_name": "gpt-4o" if call else None}
            if s["parent"]:
                record["parent_id"] = f"{trace.id}-{s['parent']}"
            if call:
                record.update({"attributes.llm.token_count.prompt": call.input,
                               "attributes.llm.token_count.completion": call.output,
                               "attributes.llm.cost.total": call.cost})
            if s["kind"] == "tool":
                record.update({"attributes.tool.name": s["tool"], "attributes.input.value": s["args"]})
            records.append(record)
    return Written([_write_lines(folder / "phoenix.jsonl", records)], records, {t.id: t.id for t in run})


def write_langsmith(run: list[Trace], folder: Path) -> Written:
    kinds = {"agent": "chain", "llm": "llm", "tool": "tool"}
    records = []
    for trace in run:
        for s in _span_plan(trace):
            call = s.get("call")
            record = {"id": f"{trace.id}-{s['id']}", "trace_id": trace.id, "run_type": kinds[s["kind"]],
                      "parent_run_id": f"{trace.id}-{s['parent']}" if s["parent"] else None,
                      "name": s.get("tool") or s["id"], "start_time": iso(s["start"]),
                      "end_time": iso(s["end"]), "status": "success", "dotted_order": s["id"]}
            if call:
                record.update(prompt_tokens=call.input, completion_tokens=call.output,
                              total_tokens=call.input + call.output, total_cost=call.cost,
                              extra={"metadata": {"ls_provider": "openai", "ls_model_name": "gpt-4o"}})
            if s["kind"] == "tool":
                record["inputs"] = json.loads(s["args"]) if s["args"].startswith("{") else {"cmd": s["args"]}
            if s["parent"] is None:
                record["feedback_stats"] = {"correctness": {"n": 1, "avg": float(trace.success)}}
            records.append(record)
    return Written([_write_lines(folder / "runs.jsonl", records)], records, {t.id: t.id for t in run})


def write_langfuse(run: list[Trace], folder: Path) -> Written:
    kinds = {"agent": "AGENT", "llm": "GENERATION", "tool": "TOOL"}
    records = []
    for trace in run:
        for s in _span_plan(trace):
            call = s.get("call")
            record = {"id": f"{trace.id}-{s['id']}", "trace_id": trace.id, "type": kinds[s["kind"]],
                      "parent_observation_id": f"{trace.id}-{s['parent']}" if s["parent"] else None,
                      "name": s.get("tool") or s["id"], "start_time": iso(s["start"]),
                      "end_time": iso(s["end"]), "level": "DEFAULT"}
            if call:
                record.update(provided_model_name="gpt-4o", total_cost=call.cost,
                              usage_details={"input": call.input, "output": call.output,
                                             "total": call.input + call.output})
            if s["kind"] == "tool":
                record["input"] = s["args"]
            records.append(record)
    return Written([_write_lines(folder / "observations.jsonl", records)], records,
                   {t.id: t.id for t in run})


def _otlp_value(value) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def otlp_hex(text: str, width: int) -> str:
    return text.encode().hex()[:width].rjust(width, "0")


def write_otlp(run: list[Trace], folder: Path) -> Written:
    records, ids = [], {}
    for n, trace in enumerate(run):
        trace_hex = f"{n + 1:032x}"
        ids[trace.id] = trace_hex
        for k, s in enumerate(_span_plan(trace)):
            call = s.get("call")
            attrs = {"gen_ai.operation.name": {"agent": "invoke_agent", "llm": "chat",
                                               "tool": "execute_tool"}[s["kind"]]}
            if call:
                attrs.update({"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": call.input,
                              "gen_ai.usage.output_tokens": call.output, "gen_ai.usage.cost": call.cost})
            if s["kind"] == "tool":
                attrs.update({"gen_ai.tool.name": s["tool"], "gen_ai.tool.call.arguments": s["args"]})
            if s["parent"] is None:
                attrs["aiscale.outcome.success"] = trace.success
            span = {"traceId": trace_hex, "spanId": f"{k + 1:016x}", "name": s["id"],
                    "parentSpanId": "0000000000000001" if s["parent"] else "",
                    "startTimeUnixNano": str(at(s["start"]).value),
                    "endTimeUnixNano": str(at(s["end"]).value),
                    "attributes": [{"key": key, "value": _otlp_value(v)} for key, v in attrs.items()]}
            records.append({"resourceSpans": [{"resource": {"attributes": []},
                                               "scopeSpans": [{"scope": {"name": "fuzz"}, "spans": [span]}]}]})
    return Written([_write_lines(folder / "otlp.jsonl", records)], records, ids)


def _chat_messages(trace: Trace) -> list[dict]:
    traj = [{"role": "user", "content": "task"}]
    for i, call in enumerate(trace.calls):
        tool_calls = [{"id": f"c{i}", "type": "function",
                       "function": {"name": call.tool, "arguments": call.args}}] if call.tool else []
        traj.append({"role": "assistant", "content": f"step {i}", "tool_calls": tool_calls or None})
        if call.tool:
            traj.append({"role": "tool", "tool_call_id": f"c{i}", "content": "ok"})
    return traj


def write_taubench(run: list[Trace], folder: Path) -> Written:
    records = [{"task_id": n, "trial": 0, "reward": float(t.success), "info": {},
                "traj": _chat_messages(t)} for n, t in enumerate(run)]
    path = folder / "fuzz-model-airline.json"
    path.write_text(json.dumps(records))
    return Written([path], records, {t.id: f"{path.stem}/{n}/0" for n, t in enumerate(run)})


def _tau2_messages(trace: Trace) -> list[dict]:
    messages, clock = [{"role": "user", "content": "task", "timestamp": iso(0)}], 0
    for i, call in enumerate(trace.calls):
        clock += 2
        message = {"role": "assistant", "content": f"step {i}", "timestamp": iso(clock), "cost": call.cost,
                   "usage": {"prompt_tokens": call.input, "completion_tokens": call.output}}
        if call.tool:
            message["tool_calls"] = [{"id": f"c{i}", "name": call.tool, "arguments": {"a": call.args},
                                      "requestor": "assistant"}]
        messages.append(message)
        if call.tool:
            clock += 1
            messages.append({"role": "tool", "id": f"c{i}", "content": "ok", "timestamp": iso(clock)})
    return messages


def write_tau2(run: list[Trace], folder: Path) -> Written:
    sims = [{"id": t.id, "task_id": str(n), "trial": 0, "start_time": iso(0),
             "end_time": iso(100), "reward_info": {"reward": float(t.success)},
             "messages": _tau2_messages(t)} for n, t in enumerate(run)]
    path = folder / "tau2-results.json"
    path.write_text(json.dumps({"info": {"agent_info": {"llm": "gpt-4o"}, "user_info": {"llm": "u"}},
                                "tasks": [], "simulations": sims}))
    return Written([path], sims, {t.id: f"{path.stem}/{t.id}" for t in run})


def miniswe_document(trace: Trace) -> dict:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    for i, call in enumerate(trace.calls):
        command = call.args if call.tool else None
        content = f"think\n```bash\n{command}\n```" if command else "no action here"
        usage = {"prompt_tokens": call.input, "completion_tokens": call.output, "cost": call.cost}
        messages.append({"role": "assistant", "content": content,
                         "extra": {"response": {"id": f"r{i}", "created": 1746090000 + 10 * i,
                                                "model": "gpt-4o", "usage": usage}}})
        messages.append({"role": "user", "content": "<returncode>0</returncode>\nok"})
    return {"trajectory_format": "mini-swe-agent-1", "messages": messages,
            "info": {"mini_version": "1.0", "model_stats": {"api_calls": len(trace.calls)},
                     "config": {"model": {"model_name": "gpt-4o"}, "agent": {}}}}


def write_miniswe(run: list[Trace], folder: Path) -> Written:
    files, records = [], []
    for trace in run:
        path = folder / "run1" / "trajs" / trace.id / f"{trace.id}.traj.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        document = miniswe_document(trace)
        path.write_text(json.dumps(document))
        files.append(path)
        records.append(document)
    return Written(files, records, {t.id: f"run1/{t.id}" for t in run})


def write_sweagent(run: list[Trace], folder: Path) -> Written:
    files, records = [], []
    for trace in run:
        steps = [{"action": c.args, "observation": "ok"} for c in trace.calls if c.tool]
        document = {"environment": "swe_main", "trajectory": steps, "info": {"model_stats": {
            "api_calls": len(trace.calls), "tokens_sent": sum(c.input for c in trace.calls),
            "tokens_received": sum(c.output for c in trace.calls),
            "instance_cost": sum(c.cost for c in trace.calls)}}}
        path = folder / "gpt4__fuzz" / f"{trace.id}.traj"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(document))
        files.append(path)
        records.append(document)
    return Written(files, records, {t.id: f"gpt4__fuzz/{t.id}" for t in run})


def write_leaderboard(run: list[Trace], folder: Path) -> Written:
    details = {t.id: {"api_calls": len(t.calls), "cost": sum(c.cost for c in t.calls),
                      "resolved": t.success} for t in run}
    board = {"leaderboards": [{"name": "bash-only", "results": [
        {"name": "fuzz run", "folder": "fuzzrun", "per_instance_details": details}]}]}
    path = folder / "leaderboards.json"
    path.write_text(json.dumps(board))
    return Written([path], list(details.values()), {t.id: f"fuzzrun/{t.id}" for t in run})


def claude_code_lines(trace: Trace) -> list[dict]:
    """A Claude Code session: per call one assistant line per content block (usage repeated,
    a partial output count on all but the last), the tool result, and a progress line that
    repeats a subagent's usage (which must not be counted)."""
    base = {"sessionId": trace.id, "cwd": "/fuzz/pro ject é", "gitBranch": "main <b>", "version": "2.1.0",
            "isSidechain": False, "userType": "external"}
    lines = [{**base, "type": "user", "uuid": "u0", "parentUuid": None, "timestamp": iso(0),
              "message": {"role": "user", "content": "go <b>"}}]
    parent = "u0"
    for i, call in enumerate(trace.calls):
        usage = {"input_tokens": call.input - call.input // 2 - call.input // 4,
                 "cache_read_input_tokens": call.input // 2, "cache_creation_input_tokens": call.input // 4,
                 "output_tokens": call.output}
        blocks = [{"type": "text", "text": "<i>ok</i>"}]
        if call.tool:
            blocks.append({"type": "tool_use", "id": f"toolu_{i}", "name": call.tool, "input": {"arg": call.args}})
        for n, block in enumerate(blocks):
            shown = usage if n == len(blocks) - 1 else {**usage, "output_tokens": min(1, call.output)}
            lines.append({**base, "type": "assistant", "uuid": f"a{i}-{n}", "parentUuid": parent,
                          "timestamp": iso(10 * i + 1 + n), "requestId": f"req_{i}",
                          "message": {"id": f"msg_{i}", "model": "claude-sonnet-4-5-20250929",
                                      "role": "assistant", "content": [block], "usage": shown}})
            parent = f"a{i}-{n}"
        if call.tool:
            lines.append({**base, "type": "user", "uuid": f"r{i}", "parentUuid": parent, "timestamp": iso(10 * i + 4),
                          "message": {"role": "user", "content": [
                              {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": "<b>done</b>"}]}})
            parent = f"r{i}"
        lines.append({**base, "type": "progress", "uuid": f"p{i}", "parentUuid": parent, "timestamp": iso(10 * i + 5),
                      "data": {"type": "agent_progress", "message": {"type": "assistant", "message": {
                          "id": f"msg_sub{i}", "usage": {"input_tokens": 999, "output_tokens": 999}}}}})
    return lines


def write_claude_code(run: list[Trace], folder: Path) -> Written:
    """One session file per trace (``records[i]``: the lines of ``files[i]``)."""
    files, records = [], []
    for trace in run:
        lines = claude_code_lines(trace)
        path = folder / "-fuzz-project" / f"{trace.id}.jsonl"
        path.parent.mkdir(exist_ok=True)
        files.append(_write_lines(path, lines))
        records.append(lines)
    return Written(files, records, {t.id: t.id for t in run})


WRITERS = {"canonical": write_canonical, "phoenix": write_phoenix, "langsmith": write_langsmith,
           "langfuse": write_langfuse, "otlp": write_otlp, "tau-bench": write_taubench,
           "tau2-bench": write_tau2, "mini-swe-agent": write_miniswe, "swe-agent-v0": write_sweagent,
           "swebench-leaderboard": write_leaderboard,
           "claude-code": write_claude_code}

_SPAN_FACTS = ["n_llm_calls", "n_tool_calls", "input_tokens", "output_tokens", "reported_cost_usd",
               "repeated_calls"]
#: which facts each format knows (the others are null or not in the source)
CHECKED = {"canonical": [*_SPAN_FACTS, "success"], "phoenix": _SPAN_FACTS,
           "langsmith": [*_SPAN_FACTS, "success"], "langfuse": _SPAN_FACTS,
           "otlp": [*_SPAN_FACTS, "success"],
           "tau-bench": ["n_llm_calls", "n_tool_calls", "repeated_calls", "success"],
           "tau2-bench": [*_SPAN_FACTS, "success"], "mini-swe-agent": _SPAN_FACTS,
           "swe-agent-v0": _SPAN_FACTS, "swebench-leaderboard": ["n_llm_calls", "reported_cost_usd", "success"],
           "claude-code": ["n_llm_calls", "n_tool_calls", "input_tokens", "output_tokens", "repeated_calls"]}
