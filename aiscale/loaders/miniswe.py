"""mini-swe-agent trajectories (``<id>.traj.json``) and their SWE-bench ``report.json`` files.

A trajectory (``trajectory_format`` "mini-swe-agent-1") becomes the trace ``<run>~<tag>/<instance_id>``,
where ``<run>`` is the folder holding ``trajs/`` (``<tag>``: six hex digits of its path, so two
runs in folders of the same name never merge) (layout ``<run>/trajs/<id>/<id>.traj.json``):

- a root ``agent`` span from the first to the last call's ``created`` time (second resolution;
  the last call's own duration and command are not included);
- an ``llm`` span per assistant message, starting at the response's ``created``: tokens from its
  ``usage`` (``prompt_tokens`` includes ``cached_tokens`` and ``completion_tokens`` includes
  ``reasoning_tokens`` here, as the canonical convention wants; checked against the per-call
  cost, which fits only this reading); cached -> ``cache_read_tokens``; cost from
  ``usage.cost``, else ``extra.cost``; model from the response; provider ``openrouter`` for
  OpenRouter responses (the upstream provider stays in ``attributes``). A reply without exactly
  one bash block is a ``FormatError`` span (mini-swe-agent asks again; nothing runs);
- a ``tool`` span ``bash`` per executed command, ``tool_arguments`` = the command, so identical
  commands issued again count as repeated calls.

Iterations are the LLM calls (``info.model_stats.api_calls``); the trace metadata keeps
``instance_cost``, ``api_calls``, the step and cost limits, and whether the per-call costs add
up to ``instance_cost``. The success label is not in the trajectory: ``logs/<id>/report.json``
(the SWE-bench harness report, flat or keyed by instance id) gives a trace row with ``success``
for the same trace id, so loading the whole folder joins them. Rows: spans, plus one row per
report entry; an unreadable trajectory is one quarantined row.

Examples
--------
>>> run_and_instance(Path("run1/trajs/a__b-1/a__b-1.traj.json"))
('run1', 'a__b-1')
>>> run_and_instance(Path("run1/logs/a__b-1/report.json"))
('run1', 'a__b-1')
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiscale.loaders._common import (
    as_float,
    as_int,
    bad_record,
    frame,
    head_text,
    read_document,
    unix_to_timestamp,
)
from aiscale.loaders.base import Chunk, folder_tag, json_text, uncompressed_path
from aiscale.schema import SPAN_COLUMNS, TRACE_COLUMNS

NAME = "mini-swe-agent"
READS_GZIP = True  # a gzip-compressed file is read as it is
PRIORITY = 30
ACTION_REGEX = r"```bash\s*\n(.*?)\n```"
_REPORT_KEYS = ('"patch_successfully_applied"', '"tests_status"', '"patch_exists"')


def sniff(path: Path, head: bytes) -> bool:
    """A mini-swe-agent trajectory, or a SWE-bench harness ``report.json``."""
    text = head_text(head)
    if not text.startswith("{"):
        return False
    if path.name.endswith("report.json"):
        return '"resolved"' in text and any(key in text for key in _REPORT_KEYS)
    if '"mini_version"' in text or '"mini-swe-agent-1"' in text:
        return True
    return path.name.endswith(".traj.json") and '"messages"' in text and '"model_stats"' in text


def run_and_instance(path: Path) -> tuple[str, str]:
    """The run (folder holding ``trajs/`` or ``logs/``) and instance id of a trajectory or report."""
    folder, instance = run_folder_and_instance(path)
    return folder.name, instance


def run_folder_and_instance(path: Path) -> tuple[Path, str]:
    """The run folder and instance id of a trajectory or report (see :func:`run_and_instance`)."""
    path = uncompressed_path(path)
    if path.name.endswith("report.json"):
        instance = path.parent.name
        run = path.parents[2] if path.parent.parent.name == "logs" else path.parents[1]
        return run, instance
    instance = path.name.removesuffix(".traj.json").removesuffix(".json")
    if path.parent.parent.name == "trajs":
        return path.parents[2], instance
    if path.parent.name == "trajs":
        return path.parents[1], instance
    return path.parent, instance


def run_key(path: Path) -> str:
    """The run part of trace ids: ``<run folder name>~<tag of its path>`` (two runs in folders
    of the same name never merge)."""
    folder, _ = run_folder_and_instance(path)
    return f"{folder.name}~{folder_tag(folder)}"


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield one chunk: a trajectory's spans and trace row, or a report's trace rows."""
    path = Path(path)
    document, problem = read_document(path)
    if problem is not None or not isinstance(document, dict):
        reason = problem or bad_record(path, None, "expected a JSON object")
        yield Chunk(quarantined=[reason], rows_read=1, unit="span")
        return
    if uncompressed_path(path).name.endswith("report.json"):
        yield _report(path, document)
        return
    try:
        spans, trace = _trajectory(path, document)
    except (ValueError, TypeError) as exc:
        yield Chunk(quarantined=[bad_record(path, None, f"unreadable trajectory: {exc}")], rows_read=1)
        return
    yield Chunk(spans=frame(spans, SPAN_COLUMNS), traces=frame([trace], TRACE_COLUMNS),
                rows_read=len(spans), unit="span")


def _report(path: Path, document: dict) -> Chunk:
    run, instance = run_key(path), run_and_instance(path)[1]
    entries = {instance: document} if "resolved" in document else document
    rows, bad = [], []
    for row, (instance_id, entry) in enumerate(entries.items(), start=1):
        resolved = entry.get("resolved") if isinstance(entry, dict) else None
        if not isinstance(resolved, bool):
            bad.append(bad_record(path, row, f"{instance_id}: `resolved` must be true or false", entry))
            continue
        # no metadata here: trace rows merge per column, and the trajectory's metadata must survive
        rows.append({"trace_id": f"{run}/{instance_id}", "task_id": instance_id, "success": resolved})
    return Chunk(traces=frame(rows, TRACE_COLUMNS), quarantined=bad, rows_read=len(rows) + len(bad),
                 unit="span")


def _trajectory(path: Path, document: dict) -> tuple[list[dict], dict]:
    messages = document.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise TypeError("`messages` must be a list of message objects")
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    agent = config.get("agent") if isinstance(config.get("agent"), dict) else {}
    run, instance = run_key(path), run_and_instance(path)[1]
    instance = document.get("instance_id") or instance
    trace_id = f"{run}/{instance}"
    regex = re.compile(agent.get("action_regex") or ACTION_REGEX, re.DOTALL)
    spans = _call_spans(messages, trace_id, regex)
    llm = [s for s in spans if s["kind"] == "llm"]
    starts = [s["start_time"] for s in llm if s["start_time"] is not None]
    stats = info.get("model_stats") if isinstance(info.get("model_stats"), dict) else {}
    root = {"trace_id": trace_id, "span_id": "agent", "kind": "agent", "name": "mini-swe-agent",
            "start_time": min(starts, default=None), "end_time": max(starts, default=None),
            "status": "unset", "attributes": json_text({
                "exit_status": info.get("exit_status"), "model_stats": stats,
                "latency_note": "first to last call's `created` (second resolution)"})}
    spans = [root, *spans]
    for span in spans:
        span.update(source=NAME, source_file=str(path), source_row=span.pop("_row", None))
    return spans, _trace(trace_id, instance, info, config, agent, llm, root["start_time"])


def _trace(trace_id: str, instance: str, info: dict, config: dict, agent: dict, llm: list[dict],
           started: Any) -> dict:
    stats = info.get("model_stats") if isinstance(info.get("model_stats"), dict) else {}
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    costs = [s["reported_cost_usd"] for s in llm]
    instance_cost = as_float(stats.get("instance_cost"))
    cost_check = None
    if instance_cost is not None and None not in costs:
        cost_check = abs(sum(costs) - instance_cost) <= 1e-6 * max(1.0, instance_cost)
    metadata = {"source": NAME, "exit_status": info.get("exit_status"), "mini_version": info.get("mini_version"),
                "instance_cost_usd": instance_cost, "api_calls": as_int(stats.get("api_calls")),
                "per_call_costs_sum_to_instance_cost": cost_check,
                "step_limit": agent.get("step_limit"), "cost_limit": agent.get("cost_limit"),
                "step_cap": as_int(agent.get("step_limit")) or None}  # 0 means no limit
    variant = model.get("model_name") or next((s["model"] for s in llm if s["model"]), None)
    return {"trace_id": trace_id, "task_id": instance, "variant": variant, "started_at": started,
            "metadata": json_text({k: v for k, v in metadata.items() if v is not None})}


def _call_spans(messages: list[dict], trace_id: str, regex: re.Pattern) -> list[dict]:
    spans = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        llm = _llm_span(message, trace_id, index)
        actions = regex.findall(message.get("content") or "") if isinstance(message.get("content"), str) else []
        spans.append(llm)
        if len(actions) != 1:
            llm.update(status="error", error_type="FormatError")
            continue
        reply = messages[index + 1].get("content") if index + 1 < len(messages) else None
        spans.append(_tool_span(actions[0], reply, trace_id, index, llm["start_time"]))
    return spans


def _llm_span(message: dict, trace_id: str, index: int) -> dict:
    extra = message.get("extra") if isinstance(message.get("extra"), dict) else {}
    response = extra.get("response") if isinstance(extra.get("response"), dict) else {}
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    prompt = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
    completion = (usage.get("completion_tokens_details")
                  if isinstance(usage.get("completion_tokens_details"), dict) else {})
    cost = usage.get("cost") if usage.get("cost") is not None else extra.get("cost")
    openrouter = "is_byok" in usage or str(response.get("id", "")).startswith("gen-")
    model = response.get("model")
    return {"trace_id": trace_id, "span_id": f"llm-{index}", "parent_id": "agent", "kind": "llm",
            "name": f"chat {model}", "start_time": unix_to_timestamp(response.get("created")),
            "status": "ok", "provider": "openrouter" if openrouter else response.get("provider"),
            "model": model, "input_tokens": _tokens(usage, "prompt_tokens"),
            "output_tokens": _tokens(usage, "completion_tokens"),
            "cache_read_tokens": _tokens(prompt, "cached_tokens"),
            "cache_write_tokens": _tokens(prompt, "cache_write_tokens"),
            "reasoning_tokens": _tokens(completion, "reasoning_tokens"),
            "reported_cost_usd": _number(cost, "cost"), "_row": index,
            "attributes": json_text({"message_index": index, "response_id": response.get("id"),
                                     "upstream_provider": response.get("provider")})}


def _tokens(usage: dict, key: str) -> int | None:
    value = usage.get(key)
    if value is not None and as_int(value) is None:
        raise TypeError(f"`{key}` must be an integer, but {value!r} was found")
    return as_int(value)


def _number(value: Any, name: str) -> float | None:
    if value is not None and as_float(value) is None:
        raise TypeError(f"`{name}` must be a number, but {value!r} was found")
    return as_float(value)


def _tool_span(command: str, reply: Any, trace_id: str, index: int, start: Any) -> dict:
    reply = reply if isinstance(reply, str) else ""
    code = re.match(r"\s*<returncode>(-?\d+)</returncode>", reply)
    timed_out = reply.lstrip().startswith("The last command") and "timed out" in reply[:2000]
    return {"trace_id": trace_id, "span_id": f"tool-{index}", "parent_id": "agent", "kind": "tool",
            "name": "execute_tool bash", "start_time": start, "status": "error" if timed_out else "ok",
            "error_type": "TimeoutError" if timed_out else None, "tool_name": "bash",
            "tool_arguments": command.strip(), "_row": index,
            "attributes": json_text({"returncode": int(code.group(1)) if code else None})}
