"""tau2 messages to spans: agent LLM calls, user-simulator turns, tool calls (see ``tau2bench``).

Examples
--------
>>> import pandas as pd
>>> msgs = [{"role": "user", "timestamp": "2025-01-01T00:00:01", "cost": 0.1,
...          "usage": {"prompt_tokens": 5, "completion_tokens": 1}}]
>>> [s["kind"] for s in message_spans(msgs, "t", pd.Timestamp("2025-01-01", tz="UTC"), "a", "u")]
['other']
"""

from __future__ import annotations

from typing import Any

from aiscale.loaders._common import as_float, as_int, naive_as_utc
from aiscale.loaders.base import json_text


def provider_of(model: str | None) -> str | None:
    """The provider prefix of a LiteLLM model name (``ollama_chat/qwen2.5:7b`` -> ``ollama_chat``)."""
    if isinstance(model, str) and "/" in model:
        return model.split("/", 1)[0]
    return None


def message_spans(messages: list[dict], trace_id: str, start: Any, agent_llm: str | None,
                  user_llm: str | None) -> list[dict]:
    """Spans of one simulation's messages, in order; each runs from the previous message's time."""
    spans: list[dict] = []
    previous = start
    open_calls: dict[str, dict] = {}
    opening = True  # no user message yet: an assistant message without usage is the fixed greeting
    for index, message in enumerate(messages):
        stamp = naive_as_utc(message.get("timestamp"))
        role = message.get("role")
        if role == "assistant":
            spans.append(_assistant(message, index, trace_id, previous, stamp, agent_llm, opening))
        elif role == "user":
            opening = False
            spans.append(_user(message, index, trace_id, previous, stamp, user_llm))
        elif role == "tool":
            call = open_calls.pop(str(message.get("id")), None)
            if call is not None:
                _close_tool(call, message, stamp)
            else:
                spans.append(_orphan_result(message, index, trace_id, stamp))
        for number, call in enumerate(message.get("tool_calls") or []):
            span = _tool_call(call, f"tool-{index}-{number}", trace_id, stamp, role)
            spans.append(span)
            open_calls[str(call.get("id"))] = span
        previous = stamp or previous
    return spans


def _base(trace_id: str, span_id: str, kind: str, name: str, start: Any, end: Any) -> dict:
    return {"trace_id": trace_id, "span_id": span_id, "parent_id": "agent", "kind": kind,
            "name": name, "start_time": start, "end_time": end, "status": "ok"}


def _usage(message: dict) -> dict:
    usage = message.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise TypeError(f"`usage` must be an object, but {usage!r} was found")
    return usage or {}


def _assistant(message: dict, index: int, trace_id: str, start: Any, end: Any,
               agent_llm: str | None, opening: bool = False) -> dict:
    """An assistant turn is an LLM call, with or without recorded usage; the greeting is not.

    The greeting is tau2's fixed first message (before any user message, no usage, no
    response, no cost). Any later assistant turn without usage is a call whose tokens and
    cost are unknown: null, flagged ``usage_missing``, never 0.
    """
    usage, raw = _usage(message), message.get("raw_data")
    cost = message.get("cost")
    if cost is not None and as_float(cost) is None:
        raise TypeError(f"message {index}: `cost` must be a number, but {cost!r} was found")
    no_usage = not usage and not raw
    if opening and no_usage and not as_float(cost):
        span = _base(trace_id, f"msg-{index}", "other", "assistant greeting (not an LLM call)", start, end)
        span["attributes"] = json_text({"message_index": index, "cost": cost})
        return span
    raw_usage = raw.get("usage") if isinstance(raw, dict) and isinstance(raw.get("usage"), dict) else {}
    model = raw.get("model") if isinstance(raw, dict) and isinstance(raw.get("model"), str) else agent_llm
    span = _base(trace_id, f"llm-{index}", "llm", f"chat {model}", start, end)
    errors = message.get("errors")
    span.update(
        provider=provider_of(agent_llm), model=model, reported_cost_usd=as_float(cost),
        input_tokens=_count(usage, "prompt_tokens", index), output_tokens=_count(usage, "completion_tokens", index),
        cache_read_tokens=as_int(raw_usage.get("cache_read_input_tokens")),
        cache_write_tokens=as_int(raw_usage.get("cache_creation_input_tokens")),
        status="error" if errors else "ok", error_type="AgentMessageError" if errors else None,
        attributes=json_text({"message_index": index, "turn_idx": message.get("turn_idx"),
                              "errors": errors or None, "requested_model": agent_llm,
                              "usage_missing": True if no_usage else None}),
    )
    return span


def _count(usage: dict, key: str, index: int) -> int | None:
    value = usage.get(key)
    if value is not None and as_int(value) is None:
        raise TypeError(f"message {index}: `usage.{key}` must be an integer, but {value!r} was found")
    return as_int(value)


def _user(message: dict, index: int, trace_id: str, start: Any, end: Any, user_llm: str | None) -> dict:
    span = _base(trace_id, f"user-{index}", "other", "user_simulator", start, end)
    span["attributes"] = json_text({"message_index": index, "role": "user_simulator",
                                    "model": user_llm, "usage": _usage(message) or None,
                                    "cost_usd": message.get("cost"),
                                    "note": "user-simulator LLM: not the agent's tokens or cost"})
    return span


def _tool_call(call: Any, span_id: str, trace_id: str, start: Any, role: Any) -> dict:
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise TypeError(f"{span_id}: a tool call must be an object with a `name` (text)")
    arguments = call.get("arguments")
    by_agent = call.get("requestor", role) == "assistant"
    span = _base(trace_id, span_id, "tool" if by_agent else "other",
                 f"execute_tool {call['name']}" if by_agent else f"user_tool {call['name']}", start, None)
    span.update(tool_name=call["name"],
                tool_arguments=arguments if isinstance(arguments, str) else json_text(arguments),
                attributes=json_text({"tool_call_id": call.get("id"), "requestor": call.get("requestor")}))
    return span


def _close_tool(span: dict, message: dict, end: Any) -> None:
    span["end_time"] = end
    if message.get("error") is True:
        span.update(status="error", error_type="ToolError")


def _orphan_result(message: dict, index: int, trace_id: str, end: Any) -> dict:
    span = _base(trace_id, f"result-{index}", "other", "tool result without a call", end, end)
    span["attributes"] = json_text({"message_index": index, "tool_call_id": message.get("id")})
    return span
