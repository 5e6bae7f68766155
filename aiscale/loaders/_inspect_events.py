"""The spans of one Inspect AI sample, from its events (helper of :mod:`aiscale.loaders.inspect_log`).

``model`` events become LLM spans, ``tool`` events tool spans, under a root agent span;
model calls made while a scorer runs (``span_begin`` of type ``scorer``/``scorers``, or the
older ``step`` events) go under an ``evaluator`` span. Not a loader (leading underscore).

Examples
--------
>>> canonical_usage("google", {"input_tokens": 47, "output_tokens": 1, "total_tokens": 451,
...                            "reasoning_tokens": 403})["output_tokens"]
404
>>> canonical_usage("openai", {"input_tokens": 63, "output_tokens": 263, "total_tokens": 326,
...                            "reasoning_tokens": 256})["output_tokens"]
263
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiscale.loaders._common import as_float, as_int, naive_as_utc
from aiscale.loaders.base import json_text

if TYPE_CHECKING:
    pass

# (input excludes cache, output excludes reasoning): the provider's usual reading, tried first
_USUAL = {"anthropic": (True, False), "google": (False, True), "vertex": (False, True)}
_SCORING = {"scorer", "scorers"}


def canonical_usage(provider: str | None, usage: dict) -> dict:
    """One call's Inspect usage in the canonical convention (input with cache, output with reasoning).

    Parameters
    ----------
    provider : str or None
        The provider prefix of the model name (``openai``, ``google``, ``anthropic``, ...).
    usage : dict
        Inspect's ``ModelUsage``: ``input_tokens``, ``output_tokens``, ``total_tokens``,
        ``input_tokens_cache_read``/``_write``, ``reasoning_tokens``.

    Returns
    -------
    dict
        The five canonical token columns. Of the four readings (input with or without the
        cache, output with or without reasoning), the one whose sum equals ``total_tokens``
        wins, the provider's usual one first; without a matching total, the usual one.
    """
    get = {k: as_int(usage.get(k)) for k in ("input_tokens", "output_tokens", "total_tokens", "reasoning_tokens",
                                             "input_tokens_cache_read", "input_tokens_cache_write")}
    inp, out, total = get["input_tokens"], get["output_tokens"], get["total_tokens"]
    cache = (get["input_tokens_cache_read"] or 0) + (get["input_tokens_cache_write"] or 0)
    thinking = get["reasoning_tokens"] or 0
    usual = _USUAL.get((provider or "").lower(), (False, False))
    readings = [usual, *[(a, b) for a in (False, True) for b in (False, True) if (a, b) != usual]]

    def total_of(reading: tuple[bool, bool]) -> int:
        return (inp or 0) + cache * reading[0] + (out or 0) + thinking * reading[1]

    chosen = next((r for r in readings if total is not None and total_of(r) == total), usual)
    return {"input_tokens": None if inp is None else inp + cache * chosen[0],
            "output_tokens": None if out is None else out + thinking * chosen[1],
            "cache_read_tokens": get["input_tokens_cache_read"],
            "cache_write_tokens": get["input_tokens_cache_write"], "reasoning_tokens": get["reasoning_tokens"]}


def split_model(name: Any) -> tuple[str | None, str | None]:
    """``"openai/gpt-5"`` -> ``("openai", "gpt-5")``; a name without a provider keeps None."""
    if not isinstance(name, str) or not name:
        return None, None
    provider, _, model = name.partition("/")
    return (provider, model) if model else (None, provider)


def _end(event: dict, start: Any) -> Any:
    import pandas as pd

    end = naive_as_utc(event.get("completed"))
    output = event.get("output") if isinstance(event.get("output"), dict) else {}
    seconds = as_float(event.get("working_time"))
    seconds = as_float(output.get("time")) if seconds is None else seconds  # older logs time the output
    if end is None and start is not None and seconds is not None:
        end = start + pd.Timedelta(seconds=seconds)
    return end if end is None or start is None or end >= start else start


class _Phase:
    """Whether an event runs inside a scorer, from span_begin ancestry or step begin/end."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[Any, Any]] = {}
        self.steps: list[str] = []

    def see(self, event: dict) -> None:
        if event.get("event") == "span_begin":
            self.spans[event.get("id")] = (event.get("type"), event.get("parent_id"))
        elif event.get("event") == "step":
            if event.get("action") == "begin":
                self.steps.append(str(event.get("type")))
            elif self.steps:
                self.steps.pop()

    def scoring(self, event: dict) -> bool:
        if any(step in _SCORING for step in self.steps):
            return True
        span, seen = event.get("span_id"), set()
        while span in self.spans and span not in seen:
            seen.add(span)
            kind, span = self.spans[span]
            if kind in _SCORING:
                return True
        return False


def sample_spans(sample: dict, trace_id: str, task: str | None) -> list[dict]:
    """The root, evaluator, LLM and tool spans of one sample (``source*`` columns not set)."""
    events = sample.get("events") if isinstance(sample.get("events"), list) else []
    phase, calls = _Phase(), []
    for index, event in enumerate(e for e in events if isinstance(e, dict)):
        phase.see(event)
        if event.get("event") == "model":
            calls.append(_model_span(event, trace_id, index, phase.scoring(event)))
        elif event.get("event") == "tool":
            calls.append(_tool_span(event, trace_id, index))
    if not any(c["kind"] == "llm" for c in calls):
        calls += _usage_spans(sample, trace_id)
    stamps = [naive_as_utc(e.get("timestamp")) for e in events if isinstance(e, dict)]
    stamps = [s for s in stamps if s is not None] + [c["end_time"] for c in calls if c["end_time"] is not None]
    root = {"trace_id": trace_id, "span_id": "sample", "kind": "agent", "name": f"inspect {task}",
            "start_time": naive_as_utc(sample.get("started_at")) or min(stamps, default=None),
            "end_time": naive_as_utc(sample.get("completed_at")) or max(stamps, default=None),
            **_status(sample), "attributes": json_text({"sample_uuid": sample.get("uuid")})}
    scorer = [c for c in calls if c["parent_id"] == "scorer"]
    spans = [root]
    if scorer:
        spans.append({"trace_id": trace_id, "span_id": "scorer", "parent_id": "sample", "kind": "evaluator",
                      "name": "scorer", "start_time": min(c["start_time"] for c in scorer),
                      "end_time": max((c["end_time"] for c in scorer if c["end_time"] is not None), default=None),
                      "status": "unset"})
    return spans + calls


def _status(sample: dict) -> dict:
    limit, error = sample.get("limit"), sample.get("error")
    if isinstance(error, dict) or (error is not None and error != ""):
        message = error.get("message") if isinstance(error, dict) else str(error)
        return {"status": "error", "error_type": str(message or "error").split("\n", 1)[0][:200]}
    if isinstance(limit, dict) and limit.get("type"):
        return {"status": "error", "error_type": f"limit:{limit['type']}"}
    return {"status": "ok"}


def _model_span(event: dict, trace_id: str, index: int, scoring: bool) -> dict:
    provider, model = split_model(event.get("model"))
    output = event.get("output") if isinstance(event.get("output"), dict) else {}
    usage = output.get("usage") if isinstance(output.get("usage"), dict) else None
    tokens = canonical_usage(provider, usage) if usage is not None else {}
    start = naive_as_utc(event.get("timestamp"))
    error = event.get("error")
    return {"trace_id": trace_id, "span_id": f"model-{index}", "parent_id": "scorer" if scoring else "sample",
            "kind": "llm", "name": f"chat {model}", "start_time": start, "end_time": _end(event, start),
            "status": "error" if error else "ok", "error_type": str(error)[:200] if error else None,
            "provider": provider, "model": model, **tokens,
            "attributes": json_text({"response_model": output.get("model"), "raw_usage": usage,
                                     "phase": "scorer" if scoring else "solver", "cache": event.get("cache")})}


def _tool_span(event: dict, trace_id: str, index: int) -> dict:
    start = naive_as_utc(event.get("timestamp"))
    error = event.get("error")
    arguments = event.get("arguments")
    return {"trace_id": trace_id, "span_id": f"tool-{index}", "parent_id": "sample", "kind": "tool",
            "name": f"execute_tool {event.get('function')}", "start_time": start, "end_time": _end(event, start),
            "status": "error" if error else "ok",
            "error_type": (error.get("type") if isinstance(error, dict) else str(error)) if error else None,
            "tool_name": event.get("function"),
            "tool_arguments": arguments if isinstance(arguments, str) else json_text(arguments),
            "attributes": json_text({"call_id": event.get("id"), "agent": event.get("agent")})}


def _usage_spans(sample: dict, trace_id: str) -> list[dict]:
    """Without model events: one LLM span per model of the sample's ``model_usage`` (no times)."""
    usage = sample.get("model_usage") if isinstance(sample.get("model_usage"), dict) else {}
    spans = []
    for index, (name, counts) in enumerate(usage.items()):
        provider, model = split_model(name)
        tokens = canonical_usage(provider, counts) if isinstance(counts, dict) else {}
        spans.append({"trace_id": trace_id, "span_id": f"usage-{index}", "parent_id": "sample", "kind": "llm",
                      "name": f"chat {model}", "status": "ok", "provider": provider, "model": model, **tokens,
                      "start_time": None, "end_time": None,
                      "attributes": json_text({"from": "sample model_usage (no model events)"})})
    return spans
