"""tau-bench results: a JSON list of conversations, one trace per (task_id, trial).

The file (e.g. ``historical_trajectories/gpt-4o-airline.json``) holds one object per
conversation: ``task_id``, ``trial``, ``reward``, ``traj`` (OpenAI chat messages) and
``info`` (the task, ``user_cost``, ``reward_info``). Each conversation becomes a trace with a
root ``agent`` span, an ``llm`` span per assistant message and a ``tool`` span per tool call
(``tool_name``, ``tool_arguments`` = the call's JSON text as exported; a result starting with
``Error`` marks the tool span as an error). ``success`` is ``reward == 1``.

The file has no timestamps, no agent tokens and no agent cost: those stay null, never 0.
``info.user_cost`` is the user simulator's LLM cost, not the agent's: it goes to the trace
metadata only. The variant (agent model) and domain come from the file name
``<model>-<domain>.json``; trace ids are ``<file stem>/<task_id>/<trial>``.

Rows are spans (a conversation that cannot be read counts as one quarantined row).

Examples
--------
>>> import json, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "gpt-4o-airline.json"
>>> _ = path.write_text(json.dumps([{"task_id": 0, "trial": 0, "reward": 1.0, "info": {},
...     "traj": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}]))
>>> chunk = next(read(path))
>>> chunk.spans["kind"].tolist(), chunk.traces["variant"].item(), bool(chunk.traces["success"].item())
(['agent', 'llm'], 'gpt-4o', True)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiscale.loaders._common import as_float, as_int, bad_record, frame, head_text, read_document
from aiscale.loaders.base import Chunk, export_stem, json_text
from aiscale.schema import SPAN_COLUMNS, TRACE_COLUMNS

NAME = "tau-bench"
PRIORITY = 30
READS_GZIP = True
CHUNK_RECORDS = 50
DOMAINS = ("airline", "retail")


class _BadRecord(ValueError):
    """A conversation that cannot be used; the message is the quarantine reason."""


def sniff(path: Path, head: bytes) -> bool:
    """A JSON list whose first object has ``task_id``, ``reward`` and ``traj``."""
    text = head_text(head)
    return text.startswith("[") and all(key in text for key in ('"task_id"', '"reward"', '"traj"'))


def identity(path: Path) -> tuple[str, str | None]:
    """Return (variant, domain) from a ``<model>-<domain>.json`` file name.

    Examples
    --------
    >>> identity(Path("gpt-4o-airline.json"))
    ('gpt-4o', 'airline')
    """
    stem = export_stem(path)
    for domain in DOMAINS:
        if stem.endswith(f"-{domain}"):
            return stem[: -len(domain) - 1], domain
    return stem, None


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield the conversations of a tau-bench results file as span and trace rows."""
    path = Path(path)
    records, problem = read_document(path)
    if not isinstance(records, list):
        found = type(records).__name__ if records is not None else "nothing readable"
        yield Chunk(quarantined=[problem or bad_record(
            path, None, f"expected a JSON list of tau-bench results, found {found}")], rows_read=1)
        return
    seen: set[str] = set()
    for start in range(0, len(records), CHUNK_RECORDS):
        yield _chunk(path, records, start, seen)
    if problem is not None:
        yield Chunk(quarantined=[problem], rows_read=1)


def _chunk(path: Path, records: list, start: int, seen: set[str]) -> Chunk:
    spans: list[dict] = []
    traces: list[dict] = []
    bad = []
    for row in range(start + 1, min(start + CHUNK_RECORDS, len(records)) + 1):
        record = records[row - 1]
        try:
            record_spans, trace = _conversation(path, record, row)
            if trace["trace_id"] in seen:
                raise _BadRecord(f"duplicate (task_id, trial) {trace['trace_id']!r}: an earlier record has it")
        except _BadRecord as exc:
            bad.append(bad_record(path, row, str(exc), record))
            continue
        seen.add(trace["trace_id"])
        spans += record_spans
        traces.append(trace)
    return Chunk(spans=frame(spans, SPAN_COLUMNS), traces=frame(traces, TRACE_COLUMNS),
                 quarantined=bad, rows_read=len(spans) + len(bad), unit="span")


def _key(record: dict, name: str) -> Any:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or value == "":
        raise _BadRecord(f"`{name}` must be an integer or a text, but {value!r} was found")
    return value


def _conversation(path: Path, record: Any, row: int) -> tuple[list[dict], dict]:
    if not isinstance(record, dict):
        raise _BadRecord(f"a result must be a JSON object, but a {type(record).__name__} was found")
    task_id, trial = _key(record, "task_id"), as_int(record.get("trial"))
    if trial is None:
        raise _BadRecord(f"`trial` must be an integer, but {record.get('trial')!r} was found")
    traj = record.get("traj")
    if not isinstance(traj, list) or not all(isinstance(m, dict) for m in traj):
        raise _BadRecord("`traj` must be a list of message objects")
    reward = record.get("reward")
    if reward is not None and as_float(reward) is None:
        raise _BadRecord(f"`reward` must be a number, but {reward!r} was found")
    info = record.get("info") if isinstance(record.get("info"), dict) else {}
    variant, domain = identity(path)
    trace_id = f"{export_stem(path)}/{task_id}/{trial}"
    spans = _spans(traj, trace_id, variant)
    task = info.get("task") if isinstance(info.get("task"), dict) else {}
    metadata = {"source": NAME, "domain": domain, "user_cost_usd": info.get("user_cost"),
                "user_cost_note": "user-simulator LLM cost, not the agent's",
                "reward_info": (info.get("reward_info") or {}).get("info")}
    trace = {"trace_id": trace_id, "task_id": f"{domain}/{task_id}" if domain else str(task_id),
             "trial": trial, "variant": variant,
             "success": None if reward is None else float(reward) == 1.0,
             "score": as_float(reward), "user_id": task.get("user_id"), "metadata": json_text(metadata)}
    for span in spans:
        span.update(source=NAME, source_file=str(path), source_row=row)
    return spans, trace


def _spans(traj: list[dict], trace_id: str, model: str) -> list[dict]:
    results = {m.get("tool_call_id"): m.get("content") for m in traj if m.get("role") == "tool"}
    spans = [{"trace_id": trace_id, "span_id": "agent", "kind": "agent", "name": "tau-bench agent",
              "status": "unset", "attributes": json_text({"n_messages": len(traj)})}]
    for index, message in enumerate(traj):
        if message.get("role") != "assistant":
            continue
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise _BadRecord(f"message {index}: `tool_calls` must be a list")
        spans.append({"trace_id": trace_id, "span_id": f"llm-{index}", "parent_id": "agent",
                      "kind": "llm", "name": f"chat {model}", "status": "ok", "model": model,
                      "attributes": json_text({"message_index": index, "n_tool_calls": len(calls)})})
        spans += [_tool_span(call, trace_id, f"tool-{index}-{number}", results)
                  for number, call in enumerate(calls)]
    return spans


def _tool_span(call: Any, trace_id: str, span_id: str, results: dict) -> dict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _BadRecord(f"{span_id}: a tool call needs `function.name` (text)")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, separators=(",", ":"), sort_keys=True)
    result = results.get(call.get("id"))
    failed = isinstance(result, str) and result.startswith("Error")
    return {"trace_id": trace_id, "span_id": span_id, "parent_id": "agent", "kind": "tool",
            "name": f"execute_tool {function['name']}", "status": "error" if failed else "ok",
            "error_type": "ToolError" if failed else None, "tool_name": function["name"],
            "tool_arguments": arguments,
            "attributes": json_text({"tool_call_id": call.get("id"), "has_result": result is not None})}
