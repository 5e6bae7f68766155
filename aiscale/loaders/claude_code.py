"""Claude Code sessions (``~/.claude/projects/<project>/<session>.jsonl``), subagents included.

A session file becomes one trace, its ``sessionId``; a folder of them (or the whole
``~/.claude/projects``) loads recursively, and files that are not sessions are skipped:

- a root ``agent`` span ``session`` from the first to the last timestamp of the session
  (and of its subagent files, when they began earlier: the 2.0.x warm-up agents do);
- an ``llm`` span per API call, the assistant lines sharing ``(message.id, requestId)``
  (the message id alone for proxied ``msg_bdrk_`` sessions without ``requestId``), from the
  line it answers to its last line. Tokens in the OpenTelemetry convention: input =
  ``input_tokens`` + cache writes + cache reads; ``cache_write_tokens`` =
  ``cache_creation_input_tokens`` (the 5-minute / 1-hour split stays in ``attributes``);
  output from the response's last line (earlier lines of CLI <= 2.1.6x carry a partial
  count). Some sessions log only the count of the response's start on every line (1-8 tokens
  for a whole tool call): where the call's text, thinking and tool calls hold more than
  :data:`CHARS_PER_TOKEN_AT_MOST` characters per logged token, the attribute
  ``output_tokens_lower_bound`` is true (``output_chars`` beside it): the count, kept as
  logged, and so the call's output cost are lower bounds. Reasoning is not reported
  separately: null. Model per call; provider ``anthropic``, or ``aws`` for Bedrock model ids
  (``...anthropic.claude-...-v1:0``);
- a ``tool`` span per ``tool_use`` block, from the assistant line to its ``tool_result``
  (``is_error`` makes it an error span; no result leaves it unset), ``tool_arguments`` =
  the input as JSON text;
- subagents in all three layouts (inline ``isSidechain`` lines of CLI 1.0.x, a flat
  ``agent-<id>.jsonl`` beside the session, ``<session>/subagents/agent-<id>.jsonl``) as an
  ``agent`` span ``agent:<id>`` under ``session`` holding their calls and tools. Their files
  are read on their own and join the session's trace by ``sessionId``; the usage that
  ``progress`` / ``agent_progress`` lines repeat is never read.

The trace row (written by the session file, not by subagent files) has ``session_id``,
``started_at`` and the variant: the main thread's model with the most calls, or the
metadata field named by the environment variable ``AISCALE_CLAUDE_CODE_VARIANT`` (one of
:data:`VARIANT_FIELDS`). Metadata: ``project`` (the encoded cwd, as the folder under
``projects/`` is named), ``cwd``, ``git_branch``, CLI versions, models, line counts.

Rows are spans; a line that is not JSON, or a usage line without ``message.id`` or with
bad counts, is one quarantined row.

Examples
--------
>>> encode_project("/Users/pete/my.app")
'-Users-pete-my-app'
>>> provider_of("claude-opus-4-6"), provider_of("converse/jp.anthropic.claude-haiku-4-5-20251001-v1:0")
('anthropic', 'aws')
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from aiscale.loaders._claude_code_lines import (
    Call,
    SessionLines,
    agent_file_times,
    first_timestamp,
    last_timestamp,
    read_session_lines,
)
from aiscale.loaders._common import as_int, frame, head_text
from aiscale.loaders.base import Chunk, json_text
from aiscale.schema import SPAN_COLUMNS, TRACE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

NAME = "claude-code"
PRIORITY = 25
ROOT = "agent"
VARIANT_ENV = "AISCALE_CLAUDE_CODE_VARIANT"
VARIANT_FIELDS = ("model", "project", "git_branch", "cli_version", "cwd")
_SESSION_TYPES = ("user", "assistant", "system", "progress", "queue-operation")
HEAD_BYTES = 65536  # what the registry passes to sniff (read_head's default)
SNIFF_LINES = 8
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def sniff(path: Path, head: bytes) -> bool:
    """A JSON-lines file whose first records are Claude Code session lines.

    A session line is an object with a ``sessionId`` and a ``type`` such as ``user`` or
    ``assistant``; sessions of CLI 1.0.x may open with ``summary`` lines (``leafUuid``) and
    later ones with a ``file-history-snapshot``.
    """
    text = head_text(head)
    if not text.startswith("{"):
        return False
    lines = text.split("\n")
    complete = lines if len(head) < HEAD_BYTES else lines[:-1]
    for line in complete[:SNIFF_LINES]:
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue  # a broken line is quarantined by read; the next ones decide
        if isinstance(record, dict) and _is_session_line(record):
            return True
    if not complete:  # one line longer than the head: judge by its opening keys
        compact = text[:4096].replace(" ", "")
        return '"sessionId":' in compact and any(f'"type":"{t}"' in compact for t in _SESSION_TYPES)
    return False


def _is_session_line(record: dict) -> bool:
    if record.get("type") in _SESSION_TYPES:
        return isinstance(record.get("sessionId"), str) and ("uuid" in record or "operation" in record)
    if record.get("type") == "summary":
        return isinstance(record.get("leafUuid"), str)
    return record.get("type") == "file-history-snapshot" and isinstance(record.get("snapshot"), dict)


def encode_project(cwd: str) -> str:
    """Claude Code's folder name for a working directory: every non-alphanumeric becomes ``-``."""
    return _NOT_ALNUM.sub("-", cwd)


def provider_of(model: str | None) -> str | None:
    """``aws`` for Bedrock model ids, ``anthropic`` otherwise (None without a model)."""
    if not model:
        return None
    return "aws" if "anthropic." in model else "anthropic"


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield one chunk: the spans of a session (or subagent) file and its trace row."""
    path = Path(path)
    lines = read_session_lines(path)
    trace_id = lines.session_id
    if trace_id is None:  # no user or assistant line: nothing to load (bad lines still count)
        yield Chunk(quarantined=lines.bad, rows_read=len(lines.bad))
        return
    times = _Times(lines)
    spans = [*_agent_spans(lines, times), *_call_spans(lines, times), *_tool_spans(lines, times)]
    traces = None
    if not lines.is_subagent_file:
        starts, ends = _subagent_times(path, lines.session_id)
        start = _session_start(lines, times, starts)
        spans.insert(0, _root_span(lines, times, start, _session_end(lines, times, ends)))
        traces = frame([_trace(path, lines, start)], TRACE_COLUMNS)
    for span in spans:
        span.update(trace_id=trace_id, source=NAME, source_file=str(path))
    yield Chunk(spans=frame(spans, SPAN_COLUMNS), traces=traces, quarantined=lines.bad,
                rows_read=len(spans) + len(lines.bad), unit="span")


class _Times:
    """Every timestamp text of the file parsed once, vectorised."""

    def __init__(self, lines: SessionLines):
        import pandas as pd

        texts = {lines.first_ts, lines.last_ts, *lines.uuid_ts.values()}
        texts |= {t for c in lines.calls.values() for t in (c.first_ts, c.last_ts)}
        texts |= {t.ts for t in lines.tools.values()} | {r.ts for r in lines.results.values()}
        texts |= {t for a in lines.agents.values() for t in (a.first_ts, a.last_ts)}
        keys = sorted(t for t in texts if isinstance(t, str))
        parsed = pd.to_datetime(pd.Series(keys, dtype=object), utc=True, errors="coerce", format="ISO8601")
        self._map = {k: (None if pd.isna(v) else v) for k, v in zip(keys, parsed, strict=True)}

    def __call__(self, text: str | None) -> pd.Timestamp | None:
        return self._map.get(text) if isinstance(text, str) else None


def _agent_span_id(agent: str | None) -> str:
    return ROOT if agent is None else f"agent:{agent}"


def _session_start(lines: SessionLines, times: _Times, subagent_starts: list[str]) -> pd.Timestamp | None:
    """The session's first timestamp, or its subagent files' when one began earlier."""
    import pandas as pd

    earlier = [pd.to_datetime(t, utc=True, errors="coerce") for t in subagent_starts]
    known = [t for t in [times(lines.first_ts), *earlier] if t is not None and not pd.isna(t)]
    return min(known, default=None)


def _session_end(lines: SessionLines, times: _Times, subagent_ends: list[str]) -> pd.Timestamp | None:
    """The session's last timestamp, or its subagent files' when one ended later (they run in parallel)."""
    import pandas as pd

    later = [pd.to_datetime(t, utc=True, errors="coerce") for t in subagent_ends]
    known = [t for t in [times(lines.last_ts), *later] if t is not None and not pd.isna(t)]
    return max(known, default=None)


def _root_span(lines: SessionLines, times: _Times, start: pd.Timestamp | None,
               end: pd.Timestamp | None) -> dict:
    counts = {"line_types": dict(sorted(lines.line_types.items())), "synthetic_messages": lines.synthetic,
              "cli_versions": lines.versions, "subagents": len(lines.agents)}
    return {"span_id": ROOT, "kind": "agent", "name": "claude-code session", "start_time": start,
            "end_time": end, "status": "unset", "source_row": 1,
            "attributes": json_text(counts)}


def _subagent_times(path: Path, session_id: str) -> tuple[list[str], list[str]]:
    """First and last timestamps of this session's subagent files, in either file layout."""
    files = sorted((path.parent / path.stem / "subagents").glob("agent-*.jsonl"))
    starts = [ts for session, ts in map(first_timestamp, files) if session == session_id and ts is not None]
    ends = [ts for session, ts in map(last_timestamp, files) if session == session_id and ts is not None]
    first, last = agent_file_times(str(path.parent), path.parent.stat().st_mtime_ns).get(session_id, (None, None))
    return starts + ([first] if first is not None else []), ends + ([last] if last is not None else [])


def _agent_spans(lines: SessionLines, times: _Times) -> list[dict]:
    return [{"span_id": _agent_span_id(a.agent_id), "parent_id": ROOT, "kind": "agent",
             "name": f"subagent {a.agent_id}", "start_time": times(a.first_ts), "end_time": times(a.last_ts),
             "status": "unset", "source_row": a.first_row,
             "attributes": json_text({"agent_id": a.agent_id, "layout": a.layout})}
            for a in lines.agents.values()]


def _call_span_id(call: Call) -> str:
    return f"llm:{call.message_id}" + (f":{call.request_id}" if call.request_id else "")


def _tokens(call: Call) -> dict:
    first, last = call.first_usage, call.last_usage
    values = {k: as_int(last.get(k)) for k in ("input_tokens", "cache_creation_input_tokens",
                                               "cache_read_input_tokens", "output_tokens")}
    fresh, write, read_ = (values["input_tokens"], values["cache_creation_input_tokens"],
                           values["cache_read_input_tokens"])
    total = None if fresh is None else fresh + (write or 0) + (read_ or 0)
    return {"input_tokens": total, "output_tokens": values["output_tokens"], "cache_read_tokens": read_,
            "cache_write_tokens": write, "reasoning_tokens": None,
            "_first_output": as_int(first.get("output_tokens"))}


CHARS_PER_TOKEN_AT_MOST = 10
"""More characters of text, thinking and tool calls per output token than any tokenizer gives
(English ~4, code ~3): the count is the one logged when the response began streaming."""


def output_is_lower_bound(output_tokens: int | None, output_chars: int) -> bool | None:
    """Whether a call's logged ``output_tokens`` is short of what its content needs (more than
    :data:`CHARS_PER_TOKEN_AT_MOST` characters per token): a lower bound, not the count; None
    when the count is unknown.

    Examples
    --------
    >>> output_is_lower_bound(1, 2539), output_is_lower_bound(600, 2539), output_is_lower_bound(None, 5)
    (True, False, None)
    """
    if output_tokens is None:
        return None
    return output_chars > CHARS_PER_TOKEN_AT_MOST * output_tokens


def _call_spans(lines: SessionLines, times: _Times) -> list[dict]:
    spans = []
    for call in lines.calls.values():
        tokens = _tokens(call)
        first_output = tokens.pop("_first_output")
        end = times(call.last_ts)
        asked = times(lines.uuid_ts.get(call.parent_uuid)) if call.parent_uuid else None
        first = times(call.first_ts)
        from_ask = asked is not None and first is not None and asked <= first
        start = asked if from_ask else first
        cache = call.last_usage.get("cache_creation")
        cache = cache if isinstance(cache, dict) else {}
        attributes = {"message_id": call.message_id, "request_id": call.request_id, "lines": call.n_lines,
                      "first_line_output_tokens": first_output, "stop_reason": call.stop_reason,
                      "output_chars": call.output_chars,
                      "output_tokens_lower_bound": output_is_lower_bound(tokens["output_tokens"], call.output_chars),
                      "cache_write_5m_tokens": as_int(cache.get("ephemeral_5m_input_tokens")),
                      "cache_write_1h_tokens": as_int(cache.get("ephemeral_1h_input_tokens")),
                      "service_tier": call.last_usage.get("service_tier"),
                      "server_tool_use": call.last_usage.get("server_tool_use"),
                      "agent_id": call.agent, "cli_version": call.version,
                      "proxy": "bedrock" if call.message_id.startswith("msg_bdrk_") else None,
                      "start": "the line it answers" if from_ask else "its first line"}
        spans.append({"span_id": _call_span_id(call), "parent_id": _agent_span_id(call.agent),
                      "kind": "llm", "name": f"chat {call.model}", "start_time": start,
                      "end_time": end if end is not None and start is not None and end >= start else None,
                      "status": "ok", "provider": provider_of(call.model), "model": call.model,
                      "source_row": call.first_row, **tokens,
                      "attributes": json_text({k: v for k, v in attributes.items() if v is not None})})
    return spans


def _tool_spans(lines: SessionLines, times: _Times) -> list[dict]:
    spans = []
    for tool in lines.tools.values():
        result = lines.results.get(tool.tool_id)
        start = times(tool.ts)
        end = times(result.ts) if result is not None else None
        status = "unset" if result is None else ("error" if result.is_error else "ok")
        call = lines.calls.get(tool.call_key)
        spans.append({
            "span_id": f"tool:{tool.tool_id}", "parent_id": _agent_span_id(tool.agent), "kind": "tool",
            "name": f"execute_tool {tool.name}", "start_time": start,
            "end_time": end if end is not None and start is not None and end >= start else None,
            "status": status, "error_type": "ToolError" if status == "error" else None,
            "tool_name": tool.name, "tool_arguments": json_text(tool.arguments), "source_row": tool.row,
            "attributes": json_text({"tool_use_id": tool.tool_id, "call_span_id": call and _call_span_id(call),
                                     "result_row": result and result.row,
                                     "duration_ms": result and result.duration_ms})})
    return spans


def _main_model(lines: SessionLines) -> str | None:
    main = Counter(c.model for c in lines.calls.values() if c.agent is None and c.model)
    every = Counter(c.model for c in lines.calls.values() if c.model)
    counts = main or every
    return max(counts, key=lambda m: (counts[m], m)) if counts else None


def _trace(path: Path, lines: SessionLines, start: pd.Timestamp | None) -> dict:
    cwd = lines.cwd
    project = encode_project(cwd) if cwd else (path.parent.name if path.parent.name.startswith("-") else None)
    models = Counter(c.model for c in lines.calls.values() if c.model)
    metadata = {"source": NAME, "project": project, "cwd": cwd,
                "git_branch": lines.branches[-1] if lines.branches else None,
                "git_branches": lines.branches if len(lines.branches) > 1 else None,
                "cli_version": lines.versions[-1] if lines.versions else None,
                "cli_versions": lines.versions if len(lines.versions) > 1 else None,
                "models": dict(models.most_common()), "slug": lines.slug,
                "other_session_ids": lines.session_ids[1:] or None,
                "subagents": sorted(lines.agents) or None}
    field = os.environ.get(VARIANT_ENV, "model")
    if field not in VARIANT_FIELDS:
        raise ValueError(f"The value for `{VARIANT_ENV}` must be one of {list(VARIANT_FIELDS)}, "
                         f"but {field!r} was passed.")
    variant = _main_model(lines) if field == "model" else metadata.get(field)
    return {"trace_id": lines.session_id, "variant": variant, "started_at": start,
            "session_id": lines.session_id,
            "metadata": json.dumps({k: v for k, v in metadata.items() if v is not None},
                                   separators=(",", ":"), sort_keys=True, ensure_ascii=False)}
