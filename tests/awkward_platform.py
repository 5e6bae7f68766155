"""Seeded JSONL exports of LangSmith runs, Langfuse observations and Phoenix spans with awkward values.

Every value a platform loader has a rule for, and the ones it must carry through untouched:
ids in unicode, numbers, empty or missing, and too long; times as ISO text with offsets (some
beyond ±14:00), naive, numbers in every unit, words, out of range, ends before starts; counts
and costs as numbers, text, booleans, fractions, huge integers, ``NaN``, ``Infinity`` and ``1e400``; nested
inputs, feedback and usage objects; strings holding quotes, backslashes, emoji, U+2028 and
``"attributes.x":``; LLM spans wrapping LLM spans, repeated spans, and lines that are no
records at all (broken JSON, arrays, blanks, CRLF, surrounding spaces). Used to check that the
fast loaders give what the previous ones gave (``tests/test_loader_platform_equivalence.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

WORDS = ["plain", "é ü 漢字", "emoji 😀🚀", "quote \" and \\ backslash", "line\u2028sep", "nbsp\u00a0",
         '"attributes.llm.model_name": "x"', "", "tab\tand\nnewline", "x" * 300]
HUGE = "@@1e400@@"  # written as the bare number 1e400 (Python would write Infinity)
BAD_LINES = ['{"id": "cut', "[1, 2, 3]", '"just a string"', "   ", "", "{not json}", "null", "{}"]


def _pick(rng: np.random.Generator, values: list):
    return values[int(rng.integers(len(values)))]


def _time(rng: np.random.Generator, base: float, bad: float = 0.03):
    """A time near ``base`` (seconds since 1970) in one of the spellings exports use, or a bad one."""
    if rng.random() < bad:
        return _pick(rng, ["yesterday", HUGE, 12, -5, "1899-01-01T00:00:00Z", "2150-01-01T00:00:00Z",
                           "2025-06-15T12:00:00+15:00", True, "", 1e30])
    t = base + float(rng.uniform(0, 5))
    kind = int(rng.integers(7))
    iso = np.datetime64(int(t * 1e6), "us").astype(str)
    return [iso + "+00:00", iso + "Z", iso, iso.replace("T", " ") + "+05:30", round(t, 3),
            int(t * 1000), int(t * 1e9)][kind]


def _count(rng: np.random.Generator, bad: float = 0.03):
    if rng.random() < bad:
        return _pick(rng, ["12", "lots", True, 1.5, 10**20, 2**63, -5, float("nan"), float("inf"), HUGE, [], {}])
    return None if rng.random() < 0.1 else int(rng.integers(0, 5000))


def _nested(rng: np.random.Generator, depth: int = 0):
    if depth > 3 or rng.random() < 0.3:
        return _pick(rng, [_pick(rng, WORDS), int(rng.integers(-10**6, 10**6)), 10**30, 0.1, None, True, []])
    return {_pick(rng, ["a", "b.c", "é", "attributes.k", "$x"]): _nested(rng, depth + 1) for _ in range(2)}


def _ids(rng: np.random.Generator, n: int, prefix: str) -> list:
    ids = [f"{prefix}-{i:06d}" for i in range(n)]
    for i in rng.choice(n, size=n // 50, replace=False):
        ids[i] = _pick(rng, [f"{prefix}-é-😀-{i}", int(i) * 7 + 1, "", None, "y" * 600, f"{prefix} {i}"])
    return ids


def _traces(rng: np.random.Generator, rows: int) -> list[tuple]:
    """``(trace, span, parent, kind)`` per row: traces of ~10 spans, with wrappers and repeats."""
    out = []
    traces = _ids(rng, rows // 8, "t")
    spans = _ids(rng, rows, "s")
    while len(out) < rows:
        trace = _pick(rng, traces)
        root = spans[len(out)]
        out.append((trace, root, None, "agent"))
        for _ in range(int(rng.integers(1, 12))):
            if len(out) >= rows:
                break
            kind = _pick(rng, ["llm", "llm", "llm", "tool", "chain", "retrieval", "other"])
            parent = out[-1][1] if kind == "llm" and out[-1][3] == "llm" and rng.random() < 0.4 else root
            if rng.random() < 0.02:
                parent = _pick(rng, ["", "missing-parent", spans[len(out)]])  # orphan or its own parent
            out.append((trace, spans[len(out)], parent, kind))
        if rng.random() < 0.05:
            out.append(out[-1])  # a span repeated
    return out[:rows]


def langsmith_run(rng: np.random.Generator, trace, span, parent, kind: str, base: float) -> dict:
    run_type = {"llm": _pick(rng, ["llm", "LLM"]), "tool": "tool", "chain": "chain", "agent": "chain",
                "retrieval": "retriever", "other": _pick(rng, ["prompt", "parser", "embedding", "weird"])}[kind]
    run = {"id": span, "trace_id": trace, "parent_run_id": parent, "run_type": run_type,
           "name": _pick(rng, WORDS), "dotted_order": f"x.{span}", "start_time": _time(rng, base),
           "end_time": _time(rng, base + 5) if rng.random() < 0.95 else None,
           "status": _pick(rng, ["success", "error", "pending", "SUCCESS", None, "other"]),
           "inputs": _pick(rng, [_nested(rng), "text input", 42, None]), "outputs": {"output": _nested(rng)},
           "extra": {"metadata": {"ls_provider": _pick(rng, ["openai", "anthropic", None]),
                                  "ls_model_name": _pick(rng, ["gpt-4o-mini", "claude-3-5-haiku", None, "é"]),
                                  "user_id": _pick(rng, ["u1", "u2", None]),
                                  "thread_id": _pick(rng, ["th1", None]), "session_id": _pick(rng, ["s1", None])}}}
    if rng.random() < 0.1:
        run["error"] = _pick(rng, ["ValueError('boom')\n\nTraceback ...", "", "x" * 300])
    if rng.random() < 0.5:
        run.update(prompt_tokens=_count(rng), completion_tokens=_count(rng), total_tokens=_count(rng),
                   prompt_token_details={"cache_read": _count(rng), "cache_creation": _count(rng)},
                   completion_token_details={"reasoning": _count(rng)})
    elif rng.random() < 0.6:
        usage = {"input_tokens": _count(rng), "output_tokens": _count(rng), "total_tokens": _count(rng),
                 "input_token_details": {"cache_read": _count(rng)},
                 "output_token_details": {"reasoning": _count(rng)}}
        (run["outputs"] if rng.random() < 0.5 else run["extra"]["metadata"])["usage_metadata"] = usage
    if rng.random() < 0.5:
        run.update(total_cost=_pick(rng, [0.0012, None, "0.5", "cheap", HUGE, 3]),
                   prompt_cost=_pick(rng, [0.001, None]), completion_cost=_pick(rng, [0.0002, None]))
    if parent is None:
        run["reference_example_id"] = _pick(rng, ["ex-1", "ex-2", "ex-3", None, ""])
        run["feedback_stats"] = _pick(rng, [
            None, {}, {"correctness": {"n": 1, "avg": _pick(rng, [0, 1, 0.5, True, "1", None, 10**30])}},
            {"helpful": {"avg": 0.8}, "score": {"avg": 1.0}}, {"zeta": {"avg": 0.2}, "alpha/~\"": {"avg": 0}},
            {"correct": "not an object"}, [1, 2]])
    return run


def langfuse_observation(rng: np.random.Generator, trace, span, parent, kind: str, base: float) -> dict:
    kind_name = {"llm": "GENERATION", "tool": "TOOL", "chain": "CHAIN", "agent": "AGENT",
                 "retrieval": "RETRIEVER", "other": _pick(rng, ["SPAN", "EVENT", "EMBEDDING", "weird"])}[kind]
    camel = rng.random() < 0.5
    usage = _pick(rng, [
        {"input": _count(rng), "output": _count(rng), "total": _count(rng)},
        {"input": 20, "input_cached_tokens": 100, "output": 20, "output_reasoning_tokens": 10, "total": 150},
        {"input": 120, "cache_read_input_tokens": 100, "output": 30, "total": 150},
        {"input": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 40, "output": 5},
        {"input": 1.5, "output": "7"}, {}, None, {"input": 10**20}])
    observation = {("traceId" if camel else "trace_id"): trace, "id": span,
                   ("parentObservationId" if camel else "parent_observation_id"): parent, "type": kind_name,
                   ("startTime" if camel else "start_time"): _time(rng, base),
                   ("endTime" if camel else "end_time"): _time(rng, base + 5), "name": _pick(rng, WORDS),
                   ("usageDetails" if camel else "usage_details"): usage,
                   "level": _pick(rng, ["DEFAULT", "ERROR", "error", "WARNING"]),
                   ("statusMessage" if camel else "status_message"): _pick(rng, WORDS),
                   "input": _pick(rng, [_nested(rng), "a string input", None, 5]), "output": _nested(rng),
                   "model": _pick(rng, ["gpt-4o-mini", None, "é-model"]),
                   # one user and session per trace (unknown on some rows): the previous loader took
                   # a trace's first one in an order its query did not fix
                   ("userId" if camel else "user_id"): None if rng.random() < 0.3 else f"u-{trace}",
                   ("sessionId" if camel else "session_id"): None if rng.random() < 0.3 else f"s-{trace}"}
    if rng.random() < 0.3:
        observation["usage"] = {"input": _count(rng), "output": _count(rng)}
    if rng.random() < 0.5:
        observation[_pick(rng, ["total_cost", "totalCost", "calculated_total_cost"])] = _pick(
            rng, [1.2e-05, None, "x", HUGE, 0])
    if rng.random() < 0.2:
        observation["costDetails" if camel else "cost_details"] = {"total": _pick(rng, [3.6e-05, "n/a"])}
    return observation


def phoenix_span(rng: np.random.Generator, trace, span, parent, kind: str, base: float) -> dict:
    span_kind = {"llm": _pick(rng, ["LLM", "llm"]), "tool": "TOOL", "chain": "CHAIN", "agent": "AGENT",
                 "retrieval": _pick(rng, ["RETRIEVER", "RERANKER"]), "other": _pick(rng, ["UNKNOWN", "weird"])}[kind]
    row = {"context.trace_id": trace, "context.span_id": span, "parent_id": parent, "name": _pick(rng, WORDS),
           "span_kind": span_kind if rng.random() < 0.9 else None, "start_time": _time(rng, base),
           "end_time": _time(rng, base + 5), "status_code": _pick(rng, ["OK", "ERROR", "UNSET", "ok", None]),
           "status_message": _pick(rng, WORDS),
           "events": _pick(rng, [[], [{"name": "exception", "attributes": {
               "exception.type": _pick(rng, ["ValueError", None]), "exception.message": "boom"}}], "not a list"]),
           "attributes.openinference.span.kind": span_kind.upper(),
           "attributes.llm.model_name": _pick(rng, ["gpt-4o-mini", None, "é"]),
           "attributes.llm.provider": _pick(rng, ["openai", None]), "attributes.llm.system": "openai",
           "attributes.llm.token_count.prompt": _count(rng), "attributes.llm.token_count.completion": _count(rng),
           "attributes.llm.token_count.total": _count(rng),
           "attributes.llm.token_count.prompt_details.cache_read": _count(rng),
           "attributes.llm.token_count.completion_details.reasoning": _count(rng),
           "attributes.llm.cost.total": _pick(rng, [None, 0.0001, "x", HUGE]),
           "attributes.tool.name": _pick(rng, ["search", None]),
           "attributes.input.value": _pick(rng, [json.dumps(_nested(rng)), "plain", None]),
           "attributes.session.id": _pick(rng, ["s1", None]), "attributes.user.id": _pick(rng, ["u1", None]),
           "attributes.metadata": _pick(rng, [None, json.dumps({"k": "é"}), "text"]),
           "attributes.deep": _nested(rng)}
    return row


RECORDS: dict[str, Callable] = {"langsmith": langsmith_run, "langfuse": langfuse_observation,
                                "phoenix": phoenix_span}


def write_awkward(name: str, path: Path, *, rows: int = 10_000, seed: int = 20) -> Path:
    """Write ``rows`` lines of platform ``name`` to ``path`` (a few are no records at all)."""
    rng = np.random.default_rng(seed)
    base = 1_750_000_000.0
    lines = []
    for i, (trace, span, parent, kind) in enumerate(_traces(rng, rows)):
        if rng.random() < 0.01:
            lines.append(_pick(rng, BAD_LINES))
            continue
        record = RECORDS[name](rng, trace, span, parent, kind, base + i)
        text = json.dumps(record, ensure_ascii=bool(rng.random() < 0.5)).replace(f'"{HUGE}"', "1e400")
        if rng.random() < 0.02:
            text = _pick(rng, ["  " + text, text + "  ", text + "\r", "\t" + text + " \r"])
        lines.append(text)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\n".join(lines) + "\n")
    return path
