"""One pass over a Claude Code session file: API calls, tool uses, tool results and agents.

Not a loader (the leading underscore keeps it out of the registry); :mod:`claude_code`
turns what this module collects into spans.

- An API response is written over several ``assistant`` lines (one per content block), each
  repeating ``message.id``, ``requestId`` and ``usage``: they are one :class:`Call`, keyed by
  ``(message.id, requestId)`` (``requestId`` is absent in proxied sessions, ids
  ``msg_bdrk_...``: the message id alone is the key). The call keeps the usage of its first
  and of its last line: CLI versions up to 2.1.6x write a partial ``output_tokens`` on early
  lines, so output comes from the last.
- ``progress`` lines (``agent_progress`` embeds a subagent's messages, usage included, that
  its own file also has) and other bookkeeping lines are counted, never read as calls.
- A line belongs to an agent: the main thread (``None``), a subagent file's ``agentId``, or,
  for inline sidechains (CLI 1.0.x), the uuid of the sidechain's first line (its chain root).
- ``<synthetic>`` messages (written by the CLI itself, not by an API call) are counted only.

Examples
--------
>>> import json, tempfile, pathlib
>>> line = {"type": "assistant", "sessionId": "s", "timestamp": "2026-01-01T00:00:00Z",
...         "requestId": "r1", "message": {"id": "m1", "model": "claude-opus-4-6",
...         "usage": {"input_tokens": 3, "output_tokens": 1}}}
>>> path = pathlib.Path(tempfile.mkdtemp()) / "s.jsonl"
>>> _ = path.write_text(json.dumps(line) + "\\n" + json.dumps(
...     {**line, "message": {**line["message"], "usage": {"input_tokens": 3, "output_tokens": 9}}}))
>>> lines = read_session_lines(path)
>>> [(c.message_id, c.n_lines, c.last_usage["output_tokens"]) for c in lines.calls.values()]
[('m1', 2, 9)]
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from aiscale.loaders._common import as_int
from aiscale.loaders.base import Quarantined, excerpt, iter_json_lines

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
SYNTHETIC_MODEL = "<synthetic>"


@dataclass
class Call:
    """One API call: the assistant lines sharing ``(message.id, requestId)``."""

    message_id: str
    request_id: str | None
    model: str | None
    agent: str | None
    first_row: int
    first_ts: str | None
    parent_uuid: str | None
    first_usage: dict
    last_usage: dict
    last_ts: str | None = None
    n_lines: int = 1
    stop_reason: str | None = None
    version: str | None = None
    output_chars: int = 0  # characters of the text, thinking and tool-call blocks of its lines


@dataclass
class ToolUse:
    """A ``tool_use`` content block and the call that issued it."""

    tool_id: str
    name: str | None
    arguments: Any
    row: int
    ts: str | None
    agent: str | None
    call_key: tuple[str, str | None]


@dataclass
class ToolResult:
    """A ``tool_result`` block in a user line."""

    ts: str | None
    is_error: bool
    row: int
    duration_ms: float | None = None


@dataclass
class Agent:
    """A subagent seen in this file: first and last timestamps of its lines."""

    agent_id: str
    layout: str
    first_ts: str | None
    last_ts: str | None
    first_row: int


@dataclass
class SessionLines:
    """Everything one session file holds that becomes spans, plus counts of the rest."""

    session_ids: list[str] = field(default_factory=list)
    cwd: str | None = None
    branches: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    slug: str | None = None
    line_types: Counter = field(default_factory=Counter)
    synthetic: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    calls: dict[tuple[str, str | None], Call] = field(default_factory=dict)
    tools: dict[str, ToolUse] = field(default_factory=dict)
    results: dict[str, ToolResult] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    uuid_ts: dict[str, str] = field(default_factory=dict)
    bad: list[Quarantined] = field(default_factory=list)

    @property
    def session_id(self) -> str | None:
        return self.session_ids[0] if self.session_ids else None

    @property
    def is_subagent_file(self) -> bool:
        """A file whose lines all belong to subagents (flat ``agent-*.jsonl`` or ``subagents/``)."""
        return bool(self.agents) and all(a.layout != "inline" for a in self.agents.values())


def _note(values: list[str], value: Any) -> None:
    if isinstance(value, str) and value and value not in values:
        values.append(value)


def _usage(path: Path, row: int, usage: Any) -> dict | Quarantined:
    if not isinstance(usage, dict):
        return Quarantined(str(path), row, "`message.usage` must be an object", excerpt(usage))
    for key in USAGE_KEYS:
        value = usage.get(key)
        if value is not None and (as_int(value) is None or as_int(value) < 0):
            return Quarantined(str(path), row, f"`message.usage.{key}` must be a whole number >= 0, "
                               f"but {value!r} was found", excerpt(usage))
    return usage


class _Reader:
    """Accumulates one file's lines into a :class:`SessionLines`."""

    def __init__(self, path: Path):
        self.path = path
        self.out = SessionLines()
        self.file_agent = path.stem[len("agent-"):] if path.stem.startswith("agent-") else None
        self.layout = "subagents-folder" if path.parent.name == "subagents" else "flat"
        self.chain_root: dict[str, str] = {}

    def line(self, row: int, value: Any) -> None:
        if isinstance(value, Quarantined):
            self.out.bad.append(value)
            return
        if not isinstance(value, dict):
            self.out.bad.append(Quarantined(str(self.path), row, "line is not a JSON object", excerpt(value)))
            return
        kind = value.get("type")
        self.out.line_types[str(kind)] += 1
        self._times(value)
        if kind not in ("user", "assistant"):
            return  # progress, summary, system, file-history-snapshot, queue-operation, ...
        self._context(value)
        agent = self._agent(row, value)
        message = value.get("message") if isinstance(value.get("message"), dict) else {}
        if kind == "assistant":
            self._assistant(row, value, message, agent)
        else:
            self._user(row, value, message)

    def _times(self, value: dict) -> None:
        out, ts = self.out, value.get("timestamp")
        if isinstance(ts, str):
            out.first_ts = ts if out.first_ts is None or ts < out.first_ts else out.first_ts
            out.last_ts = ts if out.last_ts is None or ts > out.last_ts else out.last_ts
            if isinstance(value.get("uuid"), str):
                out.uuid_ts[value["uuid"]] = ts

    def _context(self, value: dict) -> None:
        out = self.out
        _note(out.session_ids, value.get("sessionId"))
        _note(out.branches, value.get("gitBranch"))
        _note(out.versions, value.get("version"))
        out.cwd = out.cwd or (value.get("cwd") if isinstance(value.get("cwd"), str) else None)
        out.slug = out.slug or value.get("slug")

    def _agent(self, row: int, value: dict) -> str | None:
        """The agent a line belongs to (None: the main thread), registering new ones."""
        if not value.get("isSidechain"):
            return None
        uuid, parent = value.get("uuid"), value.get("parentUuid")
        agent_id = value.get("agentId") or self.file_agent
        layout = self.layout
        if not agent_id:  # inline sidechain (CLI 1.0.x): the chain's first line names it
            root = self.chain_root.get(parent) if parent else None
            agent_id = root or (uuid if isinstance(uuid, str) else f"line-{row}")
            layout = "inline"
        if isinstance(uuid, str):
            self.chain_root[uuid] = agent_id
        ts = value.get("timestamp") if isinstance(value.get("timestamp"), str) else None
        agent = self.out.agents.get(agent_id)
        if agent is None:
            self.out.agents[agent_id] = Agent(agent_id, layout, ts, ts, row)
        elif ts is not None:
            agent.first_ts = ts if agent.first_ts is None or ts < agent.first_ts else agent.first_ts
            agent.last_ts = ts if agent.last_ts is None or ts > agent.last_ts else agent.last_ts
        return agent_id

    def _assistant(self, row: int, value: dict, message: dict, agent: str | None) -> None:
        if message.get("model") == SYNTHETIC_MODEL:
            self.out.synthetic += 1
            return
        if "usage" not in message:
            return
        message_id = message.get("id")
        if not isinstance(message_id, str) or not message_id:
            self.out.bad.append(Quarantined(str(self.path), row, "assistant line with usage but no "
                                            "`message.id`: the call cannot be told apart from its repeats",
                                            excerpt(value)))
            return
        usage = _usage(self.path, row, message["usage"])
        if isinstance(usage, Quarantined):
            self.out.bad.append(usage)
            return
        request_id = value.get("requestId") if isinstance(value.get("requestId"), str) else None
        key, ts = (message_id, request_id), value.get("timestamp")
        call = self.out.calls.get(key)
        if call is None:
            call = self.out.calls[key] = Call(
                message_id, request_id, message.get("model"), agent, row, ts, value.get("parentUuid"),
                usage, usage, ts, version=value.get("version"))
        else:
            call.n_lines += 1
            call.last_usage, call.last_ts = usage, ts
        call.stop_reason = message.get("stop_reason") or call.stop_reason
        blocks = message.get("content") if isinstance(message.get("content"), list) else []
        call.output_chars += sum(map(block_chars, blocks))
        for block in blocks:
            if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("id"), str):
                self.out.tools.setdefault(block["id"], ToolUse(
                    block["id"], block.get("name"), block.get("input"), row, ts, agent, key))

    def _user(self, row: int, value: dict, message: dict) -> None:
        extra = value.get("toolUseResult") if isinstance(value.get("toolUseResult"), dict) else {}
        for block in message.get("content") if isinstance(message.get("content"), list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                tool_id = block.get("tool_use_id")
                if isinstance(tool_id, str):
                    duration = extra.get("durationMs") or extra.get("totalDurationMs")
                    self.out.results.setdefault(tool_id, ToolResult(
                        value.get("timestamp"), block.get("is_error") is True, row,
                        duration if isinstance(duration, (int, float)) else None))


def block_chars(block: Any) -> int:
    """Characters a content block of a response holds: its text, its thinking, or a tool call's
    name and input (as JSON); 0 for anything else (an image, a redacted thinking block).

    Examples
    --------
    >>> block_chars({"type": "tool_use", "name": "Read", "input": {"path": "a.py"}})
    20
    """
    if not isinstance(block, dict):
        return 0
    kind = block.get("type")
    if kind in ("text", "thinking"):
        return len(block[kind]) if isinstance(block.get(kind), str) else 0
    if kind == "tool_use":
        name = block.get("name") if isinstance(block.get("name"), str) else ""
        return len(name) + len(json.dumps(block.get("input"), ensure_ascii=False, default=str))
    return 0


def read_session_lines(path: Path) -> SessionLines:
    """Read a Claude Code ``.jsonl`` session (or subagent) file in one pass."""
    reader = _Reader(path)
    for row, value in iter_json_lines(path):
        reader.line(row, value)
    return reader.out


def first_timestamp(path: Path, max_lines: int = 20) -> tuple[str | None, str | None]:
    """``(sessionId, timestamp)`` of the first timestamped line among a file's first lines."""
    for row, value in iter_json_lines(path):
        if row > max_lines:
            break
        if isinstance(value, dict) and isinstance(value.get("timestamp"), str):
            session = value.get("sessionId")
            return (session if isinstance(session, str) else None), value["timestamp"]
    return None, None


def last_timestamp(path: Path, tail: int = 1 << 18) -> tuple[str | None, str | None]:
    """``(sessionId, timestamp)`` of the last timestamped line among a file's last ``tail`` bytes."""
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(size - tail, 0))
        rows = handle.read().split(b"\n")
    for raw in reversed(rows[1:] if size > tail else rows):
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict) and isinstance(value.get("timestamp"), str):
            session = value.get("sessionId")
            return (session if isinstance(session, str) else None), value["timestamp"]
    return None, None


@lru_cache(maxsize=64)
def agent_file_times(folder: str, modified_ns: int) -> dict[str, tuple[str | None, str | None]]:
    """Earliest first and latest last timestamp of the ``agent-*.jsonl`` files in a folder, per session id.

    Read once per folder (and modification time): a 2.0.x project folder holds every
    session's flat subagent files side by side.
    """
    times: dict[str, list[str | None]] = {}
    for path in sorted(Path(folder).glob("agent-*.jsonl")):
        for end, (session, ts) in enumerate((first_timestamp(path), last_timestamp(path))):
            if session is None or ts is None:
                continue
            known = times.setdefault(session, [None, None])
            known[end] = ts if known[end] is None else (min, max)[end](known[end], ts)
    return {session: (first, last) for session, (first, last) in times.items()}
