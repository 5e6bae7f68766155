"""Gemini CLI chats (``~/.gemini/tmp/<project hash>/chats/session-*.json``): one trace per session.

A chat file is one JSON object: ``sessionId``, ``projectHash``, ``startTime``, ``lastUpdated``
and ``messages``. It becomes the trace ``<sessionId>``:

- a root ``agent`` span from ``startTime`` to ``lastUpdated``;
- an ``llm`` span per ``gemini`` message, running from the previous message (or its last
  tool call) to its own ``timestamp``; model from the message. Its ``tokens`` are
  ``{input, output, cached, thoughts, tool, total}`` with ``total = input + output + thoughts
  + tool``: ``input`` already includes ``cached`` (-> ``cache_read_tokens``); ``thoughts`` are
  reasoning, which the canonical convention counts inside ``output_tokens``
  (``output + thoughts``); ``tool`` (tool-use prompt tokens, billed as input) is added to
  ``input_tokens`` and kept as ``tool_prompt_tokens`` in ``attributes``. A message without
  ``tokens`` has unknown usage (null), never zero;
- a ``tool`` span per entry of its ``toolCalls`` (``args`` as JSON text), ending at the
  call's own ``timestamp``; ``status`` other than ``success`` is an error.

``logs.json`` beside the chats holds only user prompts and is not a chat (not recognised).
Rows are spans; a message that is not an object is one quarantined row.

Examples
--------
>>> import json, tempfile, pathlib
>>> chat = {"sessionId": "s", "projectHash": "p", "startTime": "2025-01-01T00:00:00Z", "messages": [
...     {"type": "gemini", "timestamp": "2025-01-01T00:00:03Z", "model": "gemini-2.5-pro",
...      "tokens": {"input": 100, "output": 5, "cached": 40, "thoughts": 20, "tool": 0, "total": 125}}]}
>>> path = pathlib.Path(tempfile.mkdtemp()) / "session-x.json"
>>> _ = path.write_text(json.dumps(chat))
>>> llm = next(read(path)).spans.query("kind == 'llm'").iloc[0]
>>> int(llm.input_tokens), int(llm.cache_read_tokens), int(llm.output_tokens), int(llm.reasoning_tokens)
(100, 40, 25, 20)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiscale.loaders._common import (
    as_int,
    bad_record,
    frame,
    head_text,
    naive_as_utc,
    read_document,
)
from aiscale.loaders.base import Chunk, folder_tag, json_text, uncompressed_path
from aiscale.schema import SPAN_COLUMNS, TRACE_COLUMNS

NAME = "gemini-cli"
READS_GZIP = True  # a gzip-compressed file is read as it is
PRIORITY = 30


def sniff(path: Path, head: bytes) -> bool:
    """A JSON object with ``sessionId``, ``projectHash`` and ``messages``."""
    text = head_text(head)
    return text.startswith("{") and all(key in text for key in ('"sessionId"', '"projectHash"', '"messages"'))


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield one chunk: the chat's spans and its trace row."""
    path = Path(path)
    document, problem = read_document(path)
    messages = document.get("messages") if isinstance(document, dict) else None
    if not isinstance(messages, list):
        reason = problem or bad_record(path, None, "expected a chat object with a `messages` list")
        yield Chunk(quarantined=[reason], rows_read=1)
        return
    trace_id = str(document.get("sessionId") or f"{uncompressed_path(path).stem}~{folder_tag(path.parent)}")
    spans, bad = [], [problem] if problem else []
    previous = naive_as_utc(document.get("startTime"))
    for row, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            bad.append(bad_record(path, row, "message is not a JSON object", message))
            continue
        stamp = naive_as_utc(message.get("timestamp"))
        if message.get("type") == "gemini":
            new, previous = _turn(message, row, trace_id, previous, stamp)
            spans += new
        elif stamp is not None:
            previous = stamp
    llm = [s for s in spans if s["kind"] == "llm"]
    start = naive_as_utc(document.get("startTime"))
    root = {"trace_id": trace_id, "span_id": "session", "kind": "agent", "name": "gemini-cli session",
            "start_time": start, "end_time": _latest(naive_as_utc(document.get("lastUpdated")), spans),
            "status": "unset", "source_row": None}
    spans = [root, *spans]
    for span in spans:
        span.update(source=NAME, source_file=str(path))
    models = [s["model"] for s in llm if s["model"]]
    trace = {"trace_id": trace_id, "task_id": trace_id, "session_id": document.get("sessionId"),
             "variant": max(set(models), key=models.count) if models else None, "started_at": start,
             "metadata": json_text({"source": NAME, "project": document.get("projectHash"),
                                    "project_hash": document.get("projectHash"),
                                    "messages": len(messages)})}
    yield Chunk(spans=frame(spans, SPAN_COLUMNS), traces=frame([trace], TRACE_COLUMNS), quarantined=bad,
                rows_read=len(spans) + len(bad), unit="span")


def _latest(stamp: Any, spans: list[dict]) -> Any:
    ends = [s["end_time"] for s in spans if s["end_time"] is not None]
    if stamp is not None:
        ends.append(stamp)
    return max(ends) if ends else None


def _turn(message: dict, row: int, trace_id: str, previous: Any, stamp: Any) -> tuple[list[dict], Any]:
    """The LLM span of one model turn and its tool spans; returns them and the turn's last time."""
    tokens = message.get("tokens") if isinstance(message.get("tokens"), dict) else {}
    counts = {key: as_int(tokens.get(key)) for key in ("input", "output", "cached", "thoughts", "tool", "total")}
    known = tokens and counts["input"] is not None
    output = None if counts["output"] is None else counts["output"] + (counts["thoughts"] or 0)
    llm = {"trace_id": trace_id, "span_id": f"llm-{row}", "parent_id": "session", "kind": "llm",
           "name": f"chat {message.get('model')}", "start_time": previous if previous and stamp and
           previous <= stamp else stamp, "end_time": stamp, "status": "ok", "provider": "google",
           "model": message.get("model"),
           "input_tokens": (counts["input"] + (counts["tool"] or 0)) if known else None,
           "output_tokens": output if known else None,
           "cache_read_tokens": counts["cached"] if known else None,
           "reasoning_tokens": counts["thoughts"] if known else None, "source_row": row,
           "attributes": json_text({"message_id": message.get("id"), "tool_prompt_tokens": counts["tool"],
                                    "total_tokens": counts["total"]})}
    spans, last = [llm], stamp
    calls = message.get("toolCalls") if isinstance(message.get("toolCalls"), list) else []
    for index, call in enumerate(c for c in calls if isinstance(c, dict)):
        end = naive_as_utc(call.get("timestamp")) or stamp
        begin = last if last is not None and end is not None and last <= end else end
        status = call.get("status")
        spans.append({"trace_id": trace_id, "span_id": f"tool-{row}-{index}", "parent_id": "session",
                      "kind": "tool", "name": f"execute_tool {call.get('name')}", "start_time": begin,
                      "end_time": end, "status": "ok" if status == "success" else "error" if status else "unset",
                      "error_type": None if status in (None, "success") else str(status),
                      "tool_name": call.get("name"), "tool_arguments": json_text(call.get("args")),
                      "source_row": row, "attributes": json_text({"call_id": call.get("id"),
                                                                  "display_name": call.get("displayName")})})
        last = end if end is not None else last
    return spans, last
