"""OpenAI Codex CLI rollouts (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``): one trace per rollout.

A rollout is JSONL: a ``session_meta`` line, then ``turn_context``, ``response_item`` and
``event_msg`` lines, each with a ``timestamp``. It becomes the trace ``<session id>``
(``<file stem>~<folder tag>`` when the rollout names no session):

- a root ``agent`` span from the first to the last line's timestamp;
- an ``llm`` span per model call. ``token_count`` events carry the cumulative
  ``total_token_usage`` and the call's ``last_token_usage``. Some CLI versions (0.104) write
  each event twice, and the first event of a turn has ``info: null``: an event whose
  cumulative total equals the previous one is the same call again and is skipped, and a
  call's usage is the *difference* of consecutive totals, so the calls sum exactly to the
  rollout's final total (``last_token_usage`` is kept in ``attributes`` when it differs).
  OpenAI counts ``input_tokens`` with the cached part and ``output_tokens`` with the
  reasoning part, as the canonical convention does; cache writes are not reported (null).
  Model and reasoning effort come from the latest ``turn_context`` before the call, the
  provider from ``session_meta.model_provider``. A call runs from the latest input (turn
  context, user message, tool output, or the previous call's end) to its ``token_count``;
- a ``tool`` span per ``function_call``, ``custom_tool_call`` and ``web_search_call``
  (``tool_arguments`` = the arguments or patch text), ending at its output's timestamp.

A rollout without any ``token_count`` usage (CLI 0.128 alpha) still loads its calls: each
run of model output (reasoning, assistant message, tool calls) between inputs is one call
with unknown usage and model (null tokens, so its cost is unknown, never zero).

Rows are spans; an unreadable line is one quarantined row. Files that are not rollouts
(Entire's ``metadata.json``, ``UPSTREAM-*.json``) are not recognised, so loading a whole
``~/.codex/sessions`` tree skips them.

Examples
--------
>>> import json, tempfile, pathlib
>>> usage = lambda i, o: {"input_tokens": i, "cached_input_tokens": 0, "output_tokens": o,
...                       "reasoning_output_tokens": 0, "total_tokens": i + o}
>>> lines = [{"timestamp": "2026-01-01T00:00:00Z", "type": "session_meta", "payload": {"id": "s1"}},
...          {"timestamp": "2026-01-01T00:00:01Z", "type": "turn_context", "payload": {"model": "gpt-5"}}]
>>> for t, total in [("02", usage(10, 2)), ("02", usage(10, 2)), ("05", usage(25, 5))]:
...     info = {"total_token_usage": total, "last_token_usage": usage(10, 2)}
...     lines.append({"timestamp": f"2026-01-01T00:00:{t}Z", "type": "event_msg",
...                   "payload": {"type": "token_count", "info": info}})
>>> path = pathlib.Path(tempfile.mkdtemp()) / "rollout.jsonl"
>>> _ = path.write_text("\\n".join(json.dumps(x) for x in lines))
>>> llm = next(read(path)).spans.query("kind == 'llm'")
>>> llm["input_tokens"].astype(int).tolist(), llm["output_tokens"].astype(int).tolist()
([10, 15], [2, 3])
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiscale.loaders._common import as_int, bad_record, frame, head_text, naive_as_utc
from aiscale.loaders.base import (
    Chunk,
    Quarantined,
    folder_tag,
    iter_json_lines,
    json_text,
    uncompressed_path,
)
from aiscale.schema import SPAN_COLUMNS, TRACE_COLUMNS

NAME = "codex"
READS_GZIP = True  # a gzip-compressed file is read as it is
PRIORITY = 30
_META = re.compile(r'"type"\s*:\s*"session_meta"')
_USAGE_KEYS = {"input_tokens": "input_tokens", "cached_input_tokens": "cache_read_tokens",
               "output_tokens": "output_tokens", "reasoning_output_tokens": "reasoning_tokens"}
_TOOL_CALLS = {"function_call", "custom_tool_call", "web_search_call", "local_shell_call"}
_TOOL_OUTPUTS = {"function_call_output", "custom_tool_call_output", "local_shell_call_output"}
_MODEL_OUTPUT = {"reasoning", *_TOOL_CALLS}
_INPUT_EVENTS = {"user_message", "task_started"}
_EXIT = re.compile(r'(?:Process exited with code |Exit code: |"exit_code"\s*:\s*)(-?\d+)')


def sniff(path: Path, head: bytes) -> bool:
    """A JSONL file whose first line is a Codex ``session_meta`` record."""
    text = head_text(head)
    return text.startswith("{") and bool(_META.search(text.split("\n", 1)[0][:600]))


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield one chunk: the rollout's spans and its trace row."""
    path = Path(path)
    rollout = _Rollout(path)
    bad: list[Quarantined] = []
    for number, value in iter_json_lines(path):
        if isinstance(value, Quarantined):
            bad.append(value)
        elif not isinstance(value, dict) or not isinstance(value.get("payload"), dict):
            bad.append(bad_record(path, number, "line is not a rollout record (an object with a `payload`)",
                                  value))
        else:
            rollout.add(number, value)
    spans, trace = rollout.finish()
    yield Chunk(spans=frame(spans, SPAN_COLUMNS), traces=frame([trace], TRACE_COLUMNS) if spans else None,
                quarantined=bad, rows_read=len(spans) + len(bad), unit="span")


class _Rollout:
    """Accumulates one rollout's lines into spans (a small state machine, one pass)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.meta: dict = {}
        self.context: dict = {}
        self.efforts: dict[str, int] = {}
        self.calls: list[dict] = []  # from token_count usage
        self.runs: list[dict] = []  # runs of model output, for rollouts without usage
        self.tools: dict[str, dict] = {}
        self.tool_order: list[dict] = []
        self.previous_total: dict | None = None
        self.repeated_events = 0
        self.null_events = 0
        self.resets = 0
        self.last_input: Any = None
        self.pending_output: dict | None = None  # the run of model output being gathered
        self.window: list = [None, None]  # (latest input before, last) model output since the last call
        self.first = self.last = None

    def add(self, row: int, line: dict) -> None:
        stamp = naive_as_utc(line.get("timestamp"))
        if stamp is not None:
            self.first = stamp if self.first is None else min(self.first, stamp)
            self.last = stamp if self.last is None else max(self.last, stamp)
        kind, payload = line.get("type"), line["payload"]
        if kind == "session_meta" and not self.meta:
            self.meta = payload
        elif kind == "turn_context":
            self.context = payload
            self._input(stamp)
        elif kind == "event_msg":
            self._event(row, stamp, payload)
        elif kind == "response_item":
            self._item(row, stamp, payload)

    def _input(self, stamp: Any) -> None:
        self.pending_output = None
        if stamp is not None:
            self.last_input = stamp

    def _event(self, row: int, stamp: Any, payload: dict) -> None:
        if payload.get("type") in _INPUT_EVENTS:
            self._input(stamp)
        elif payload.get("type") == "token_count":
            info = payload.get("info")
            if not isinstance(info, dict):
                self.null_events += 1
                return
            self._usage(row, stamp, info)

    def _item(self, row: int, stamp: Any, payload: dict) -> None:
        item = payload.get("type")
        if item in _TOOL_OUTPUTS:
            self._tool_output(stamp, payload)
            self._input(stamp)
        elif item == "message" and payload.get("role") != "assistant":
            self._input(stamp)
        elif item in _MODEL_OUTPUT or item == "message":
            if self.pending_output is None:
                self.pending_output = self._call(row, self._start(self.last_input, self.runs, stamp), stamp,
                                                 None, {}, self.runs)
            self.pending_output["end_time"] = stamp
            if self.window[1] is None:
                self.window[0] = self.last_input
            self.window[1] = stamp
            if item in _TOOL_CALLS:
                self._tool_call(row, stamp, payload)

    @staticmethod
    def _start(latest_input: Any, calls: list[dict], end: Any) -> Any:
        """A call starts at its latest input or the previous call's end, never after its own end."""
        starts = [s for s in (latest_input, calls[-1]["end_time"] if calls else None) if s is not None]
        start = max(starts) if starts else end
        return end if start is None or end is None or start > end else start

    def _call(self, row: int, start: Any, end: Any, usage: dict | None, extra: dict,
              calls: list[dict]) -> dict:
        model = self.context.get("model") if isinstance(self.context.get("model"), str) else None
        effort = self.context.get("effort") or _nested(self.context, "collaboration_mode", "settings",
                                                       "reasoning_effort")
        if usage is not None and isinstance(effort, str):
            self.efforts[effort] = self.efforts.get(effort, 0) + 1
        span = {"trace_id": None, "span_id": f"llm-{len(calls) + 1}", "parent_id": "session",
                "kind": "llm", "name": f"chat {model}" if model else "chat",
                "start_time": start, "end_time": end, "status": "ok", "provider": self.meta.get("model_provider"),
                "model": model, "source_row": row,
                "attributes": {"effort": effort, "turn_id": self.context.get("turn_id"), **extra}}
        span.update({column: (usage or {}).get(key) for key, column in _USAGE_KEYS.items()})
        calls.append(span)
        return span

    def _usage(self, row: int, stamp: Any, info: dict) -> None:
        total, last = _counts(info.get("total_token_usage")), _counts(info.get("last_token_usage"))
        if total is not None and total == self.previous_total:
            self.repeated_events += 1
            return
        if total is None and last is None:
            self.null_events += 1
            return
        usage, extra = last, {}
        if total is not None:
            before = self.previous_total or dict.fromkeys(total, 0)
            delta = {k: total[k] - before.get(k, 0) for k in total}
            if all(v >= 0 for v in delta.values()):
                usage = delta
            else:
                self.resets += 1
                extra["usage_note"] = "cumulative total fell (counter reset): last_token_usage used"
            self.previous_total = total
        if last is not None and usage != last:
            extra["last_token_usage"] = last
        self.pending_output = None
        latest_input, end = self.window if self.window[1] is not None else (self.last_input, stamp)
        self._call(row, self._start(latest_input, self.calls, end), end, usage, extra, self.calls)
        self.window = [None, None]

    def _tool_call(self, row: int, stamp: Any, payload: dict) -> None:
        item = payload.get("type")
        name = payload.get("name") or ("web_search" if item == "web_search_call" else item)
        arguments = payload.get("arguments", payload.get("input", payload.get("action")))
        call_id = payload.get("call_id") or payload.get("id")
        span = {"trace_id": None, "span_id": f"tool-{row}", "parent_id": "session", "kind": "tool",
                "name": f"execute_tool {name}", "start_time": stamp,
                "end_time": stamp if item == "web_search_call" else None,
                "status": "ok" if item == "web_search_call" else "unset", "tool_name": name,
                "tool_arguments": arguments if isinstance(arguments, str) else json_text(arguments),
                "source_row": row, "attributes": {"call_id": call_id, "item_type": item}}
        self.tool_order.append(span)
        if isinstance(call_id, str):
            self.tools[call_id] = span

    def _tool_output(self, stamp: Any, payload: dict) -> None:
        span = self.tools.get(payload.get("call_id"))
        if span is None:
            return
        span["end_time"] = stamp if span["start_time"] is None or stamp is None or stamp >= span["start_time"] \
            else span["start_time"]
        span["status"] = "ok"
        output = payload.get("output")
        code = _EXIT.search(output[:2000]) if isinstance(output, str) else None
        if code is not None:
            span["attributes"]["exit_code"] = int(code.group(1))

    def finish(self) -> tuple[list[dict], dict]:
        session = self.meta.get("id") if isinstance(self.meta.get("id"), str) else None
        trace_id = session or f"{uncompressed_path(self.path).stem}~{folder_tag(self.path.parent)}"
        root = {"trace_id": trace_id, "span_id": "session", "kind": "agent", "name": "codex session",
                "start_time": self.first, "end_time": self.last, "status": "unset",
                "source_row": 1, "attributes": {"cli_version": self.meta.get("cli_version")}}
        calls = self.calls or self.runs
        spans = [root, *calls, *self.tool_order] if (calls or self.tool_order) else []
        for span in spans:
            attributes = {k: v for k, v in span["attributes"].items() if v is not None}
            span.update(trace_id=trace_id, source=NAME, source_file=str(self.path),
                        attributes=json_text(attributes))
        return spans, self._trace(trace_id, session, [c["model"] for c in calls if c["model"]])

    def _trace(self, trace_id: str, session: str | None, models: list[str]) -> dict:
        git = self.meta.get("git") if isinstance(self.meta.get("git"), dict) else {}
        cwd = self.meta.get("cwd")
        final = self.previous_total
        sums = {k: sum(c[v] or 0 for c in self.calls) for k, v in _USAGE_KEYS.items()} if final else None
        metadata = {
            "source": NAME, "cli_version": self.meta.get("cli_version"),
            "originator": self.meta.get("originator"), "cwd": cwd,
            "project": Path(cwd).name if isinstance(cwd, str) and cwd else None,
            "git_branch": git.get("branch"), "git_commit": git.get("commit_hash"),
            "efforts": self.efforts or None, "final_total_token_usage": final,
            "calls_sum_to_final_total": None if final is None else all(
                sums[k] == final.get(k) for k in _USAGE_KEYS),
            "repeated_token_events": self.repeated_events, "null_token_events": self.null_events,
            "counter_resets": self.resets or None,
            "usage": None if self.calls else "no token_count usage in this rollout: calls have unknown usage",
        }
        variant = max(set(models), key=models.count) if models else None
        return {"trace_id": trace_id, "task_id": trace_id, "variant": variant, "started_at": self.first,
                "session_id": session,
                "metadata": json_text({k: v for k, v in metadata.items() if v is not None})}


def _counts(usage: Any) -> dict | None:
    """The four token counters of a usage object (None when it is not one)."""
    if not isinstance(usage, dict):
        return None
    counts = {key: as_int(usage.get(key)) for key in _USAGE_KEYS}
    if counts["input_tokens"] is None and counts["output_tokens"] is None:
        return None
    return {k: v or 0 for k, v in counts.items()}


def _nested(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value
