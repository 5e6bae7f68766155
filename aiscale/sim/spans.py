"""Turn per-trace and per-iteration draws into canonical span and trace frames (vectorised).

Each trace is a root ``agent`` span with its children one after another: per iteration the
failed LLM attempts, the LLM call, then the tool calls. The per-trace truth (iterations,
censoring, stuck loops, token sums, true cost and latency) is summed from the same arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale import schema
from aiscale.sim.laws import ERROR_TYPES, TOOLS, task_quantiles

AGENT_NAME = "sim-agent"
SOURCE = "aiscale.simulate"
_ARGS = {"search": ("query", "how to fix symbol_"), "read_file": ("path", "src/pkg/module_"),
         "edit_file": ("path", "src/pkg/module_"), "run_tests": ("target", "tests/test_"),
         "bash": ("command", "grep -rn symbol_")}
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass(frozen=True)
class SpanParts:
    """The draws of one chunk: ``traces`` per trace and ``iterations`` per iteration."""

    plan: object
    traces: dict
    iterations: dict


def hex_ids(raw: np.ndarray) -> pa.Array:
    """Lower-case hex strings of the rows of a ``(n, width)`` uint8 array, as an Arrow array.

    Examples
    --------
    >>> hex_ids(np.array([[0, 255]], dtype=np.uint8)).to_pylist()
    ['00ff']
    """
    n, width = raw.shape
    out = np.empty((n, width * 2), dtype=np.uint8)
    out[:, 0::2], out[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 15]
    offsets = np.arange(0, n * width * 2 + 1, width * 2, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                   pa.py_buffer(out.tobytes())])


def _strings(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _pick(variants, vi: np.ndarray, fn) -> np.ndarray:
    return np.array([fn(v) for v in variants])[vi]


def _children(parts: SpanParts, rng) -> dict:
    plan, tr, its = parts.plan, parts.traces, parts.iterations
    vs = plan.variants
    count = its["failures"] + 1 + its["tools"]
    si = np.repeat(np.arange(len(count)), count)
    j = np.arange(len(si)) - (np.cumsum(count) - count)[si]
    fails = its["failures"][si]
    kind = np.where(j < fails, 0, np.where(j == fails, 1, 2))  # 0 failed llm, 1 llm, 2 tool
    trace, vi = its["trace"][si], its["vi"][si]
    err = np.exp(rng.normal(_pick(vs, vi, lambda v: v.error_latency.mu),
                            _pick(vs, vi, lambda v: v.error_latency.sigma)))
    tool = np.exp(rng.normal(_pick(vs, vi, lambda v: v.tool_latency.mu),
                             _pick(vs, vi, lambda v: v.tool_latency.sigma)))
    other = np.round(np.where(kind == 0, err, tool) * 1e6).astype(np.int64)
    dur = np.where(kind == 1, its["llm_us"][si], other)
    stuck = its["stuck_phase"][si] & (kind == 2)
    tool_idx = np.where(stuck, tr["stuck_tool"][trace], rng.integers(0, len(TOOLS), len(si)))
    return dict(si=si, kind=kind, trace=trace, vi=vi, dur=dur, stuck=stuck, tool=tool_idx,
                k=np.where(stuck, tr["stuck_start"][trace], its["k"][si]),
                call=np.where(stuck, 0, j - fails - 1),
                error=rng.integers(0, len(ERROR_TYPES), len(si)))


def _timeline(t0: np.ndarray, ch: dict, gap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Child start times and root end times: children run back to back, ``gap`` apart."""
    step = ch["dur"] + gap
    before = np.cumsum(step) - step
    n_children = np.bincount(ch["trace"], minlength=len(t0))
    first = np.cumsum(n_children) - n_children
    start = t0[ch["trace"]] + gap + before - before[first][ch["trace"]]
    total = np.bincount(ch["trace"], weights=step, minlength=len(t0)).astype(np.int64)
    return start, t0 + total + gap, n_children


def _tool_arguments(tr: dict, ch: dict, mask: np.ndarray) -> pa.Array:
    names = _codes([_ARGS[t][0] for t in TOOLS], ch["tool"][mask])
    prefix = _codes([_ARGS[t][1] for t in TOOLS], ch["tool"][mask])
    task = pa.array(tr["task"][ch["trace"][mask]]).cast(pa.string())
    k, call = (pa.array(ch[c][mask]).cast(pa.string()) for c in ("k", "call"))
    return _strings('{"', names, '": "', prefix, task, "_", k, "_", call, '"}')


def _place(n_rows: int, root_pos, child_pos, root_values, child_values):
    out = np.empty(n_rows, dtype=np.result_type(root_values, child_values))
    out[root_pos], out[child_pos] = root_values, child_values
    return out


def assemble(parts: SpanParts, rng) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return ``(spans, traces, truth)`` frames for one chunk."""
    plan, tr = parts.plan, parts.traces
    ch = _children(parts, rng)
    gap = int(round(plan.gap_s * 1e6))
    start, root_end, n_children = _timeline(tr["t0"], ch, gap)
    n = len(tr["t0"])
    root_pos = np.cumsum(n_children) - n_children + np.arange(n)
    child_pos = np.arange(len(ch["kind"])) + ch["trace"] + 1
    spans = _span_frame(parts, ch, start, root_end, root_pos, child_pos, rng)
    return spans, _trace_frame(parts, spans), _truth_frame(parts, ch, spans, root_end)


def _codes(dictionary, codes: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Strings ``dictionary[codes]`` (null where not ``valid``), taken in Arrow."""
    index = pa.array(codes, type=pa.int32(), mask=None if valid is None else ~valid)
    return pc.take(pa.array(list(dictionary), type=pa.string()), index)


def _span_frame(parts: SpanParts, ch: dict, start, root_end, root_pos, child_pos, rng) -> pd.DataFrame:
    plan, tr, its = parts.plan, parts.traces, parts.iterations
    vs, n, n_sp = plan.variants, len(tr["t0"]), len(ch["kind"])
    rows, nv = n + n_sp, len(vs)
    place = lambda r, c: _place(rows, root_pos, child_pos, r, c)  # noqa: E731
    zero_roots = lambda c: place(np.zeros(n, np.int64), c)  # noqa: E731
    row_trace = place(np.arange(n), ch["trace"])
    kind = place(np.full(n, 3), ch["kind"])
    is_tool, is_llm = kind == 2, kind <= 1
    label = zero_roots(np.where(ch["kind"] == 2, 1 + nv + ch["tool"], 1 + ch["vi"]))
    timestamp = pa.timestamp("us", tz="UTC")
    span_ids = hex_ids(rng.integers(0, 256, (rows, 8), dtype=np.uint8))
    cols = {
        "trace_id": pc.take(hex_ids(rng.integers(0, 256, (n, 16), dtype=np.uint8)), row_trace),
        "span_id": span_ids,
        "parent_id": pc.take(span_ids, pa.array(root_pos[row_trace], mask=kind == 3)),
        "kind": _codes(["llm", "llm", "tool", "agent"], kind),
        "name": _codes([f"invoke_agent {AGENT_NAME}", *(f"chat {v.model}" for v in vs),
                        *(f"execute_tool {t}" for t in TOOLS)], label),
        "start_time": pa.array(place(tr["t0"], start), type=timestamp),
        "end_time": pa.array(place(root_end, start + ch["dur"]), type=timestamp),
        "status": _codes(["error", "ok"], kind != 0),
        "error_type": _codes(ERROR_TYPES, zero_roots(ch["error"]), kind == 0),
        "provider": _codes([v.provider for v in vs], zero_roots(ch["vi"]), is_llm),
        "model": _codes([v.response_model for v in vs], zero_roots(ch["vi"]), is_llm),
        "tool_name": _codes(TOOLS, zero_roots(ch["tool"]), is_tool),
        "attributes": _codes([f'{{"gen_ai.agent.name":"{AGENT_NAME}"}}',
                              *(f'{{"gen_ai.request.model":"{v.model}"}}' for v in vs),
                              *(['{"gen_ai.tool.type":"function"}'] * len(TOOLS))], label),
        "source": _codes([SOURCE], np.zeros(rows, np.int64)),
    }
    for column in schema.TOKEN_COLUMNS:
        values = zero_roots(np.where(ch["kind"] == 1, its[column.removesuffix("_tokens")][ch["si"]], 0))
        cols[column] = pa.array(values, type=pa.int64(), mask=~is_llm)  # failed calls billed 0
    arguments = _tool_arguments(tr, ch, ch["kind"] == 2)
    where = np.full(rows, -1, dtype=np.int64)
    where[child_pos[ch["kind"] == 2]] = np.arange(len(arguments))
    cols["tool_arguments"] = pc.take(arguments, pa.array(where, mask=where < 0))
    table = pa.table({f.name: cols.get(f.name, pa.nulls(rows, f.type)) for f in schema.SPANS},
                     schema=schema.SPANS)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _labels(prefix: str, values: np.ndarray, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(values.astype(str), width))


def _trace_frame(parts: SpanParts, spans: pd.DataFrame) -> pd.DataFrame:
    plan, tr = parts.plan, parts.traces
    roots = spans.loc[spans["parent_id"].isna()]
    user = np.floor(task_quantiles(plan.seed + 1, tr["task"]) * plan.n_users).astype(np.int64)
    users = _labels("user-", user, 3)
    day = (tr["t0"] - int(plan.start.timestamp()) * 1_000_000) // 86_400_000_000
    cols = {
        "trace_id": pa.array(roots["trace_id"].to_numpy(dtype=object), type=pa.string()),
        "task_id": pa.array(_labels("task-", tr["task"], 5)),
        "trial": pa.array(tr["trial"]),
        "variant": pa.array(np.array([v.name for v in plan.variants])[tr["vi"]]),
        "started_at": pa.array(tr["t0"], type=pa.timestamp("us", tz="UTC")),
        "success": pa.array(tr["success"]),
        "score": pa.array(tr["success"].astype(float)),
        "user_id": pa.array(users),
        "session_id": pa.array(np.char.add(np.char.add(users, "-day"), day.astype(str))),
        "metadata": pa.array(np.char.add(np.char.add('{"step_cap":', tr["cap"].astype(str)), "}")),
    }
    table = pa.table({f.name: cols.get(f.name, pa.nulls(len(roots), f.type)) for f in schema.TRACES},
                     schema=schema.TRACES)
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _iteration_cost(vs, its: dict) -> np.ndarray:
    price = {name: _pick(vs, its["vi"], lambda v, a=name: getattr(v.prices, a))
             for name in ("input", "cache_read", "cache_write", "output")}
    fresh = its["input"] - its["cache_read"] - its["cache_write"]
    return (price["input"] * fresh + price["cache_read"] * its["cache_read"]
            + price["cache_write"] * its["cache_write"] + price["output"] * its["output"])


def _truth_frame(parts: SpanParts, ch: dict, spans: pd.DataFrame, root_end) -> pd.DataFrame:
    plan, tr, its = parts.plan, parts.traces, parts.iterations
    n = len(tr["t0"])
    per_span = lambda w: np.bincount(ch["trace"], weights=w, minlength=n)  # noqa: E731
    per_iter = lambda w: np.bincount(its["trace"], weights=w, minlength=n)  # noqa: E731
    llm = ch["kind"] <= 1
    frame = pd.DataFrame({
        "trace_id": spans.loc[spans["parent_id"].isna(), "trace_id"].to_numpy(dtype=str),
        "task_id": _labels("task-", tr["task"], 5), "task_index": tr["task"], "trial": tr["trial"],
        "variant": np.array([v.name for v in plan.variants])[tr["vi"]],
        "started_at": pd.to_datetime(tr["t0"], unit="us", utc=True),
        "task_success_prob": tr["p_task"], "natural_iterations": tr["natural"],
        "censored": tr["censored"], "stuck": tr["stuck"],
        "stuck_start": np.where(tr["stuck"], tr["stuck_start"], 0),
        "after_drift": tr["after"], "output_factor": tr["factor"], "success": tr["success"],
        "iterations": tr["iterations"],
        "n_llm_calls": per_span(llm).astype(np.int64),
        "n_tool_calls": per_span(ch["kind"] == 2).astype(np.int64),
        "n_errors": per_span(ch["kind"] == 0).astype(np.int64),
        "repeated_calls": np.maximum(per_span(ch["stuck"]).astype(np.int64) - 1, 0),
    })
    for column in schema.TOKEN_COLUMNS:
        frame[column] = per_iter(its[column.removesuffix("_tokens")]).astype(np.int64)
    frame["cost_usd"] = per_iter(_iteration_cost(plan.variants, its))
    frame["latency_s"] = (root_end - tr["t0"]) / 1e6
    frame["llm_latency_s"] = per_span(np.where(llm, ch["dur"], 0)) / 1e6
    frame["tool_latency_s"] = per_span(np.where(llm, 0, ch["dur"])) / 1e6
    return frame
