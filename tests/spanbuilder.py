"""Tiny hand-written traces for rollup and store tests (values chosen to compute by hand)."""

from __future__ import annotations

import pandas as pd

T0 = pd.Timestamp("2025-03-01 12:00:00", tz="UTC")


def span(trace_id, span_id, parent_id, kind, start_s, end_s, **extra):
    row = {"trace_id": trace_id, "span_id": span_id, "parent_id": parent_id, "kind": kind,
           "name": f"{kind}-{span_id}", "status": extra.pop("status", "ok"),
           "start_time": T0 + pd.Timedelta(seconds=start_s),
           "end_time": None if end_s is None else T0 + pd.Timedelta(seconds=end_s),
           "source": "test", "source_file": "hand.jsonl", "source_row": extra.pop("row", 0)}
    row.update(extra)
    return row


def agent_trace(trace_id="t1"):
    """Root agent, 3 main-loop LLM calls, a sub-agent with 1 LLM call, 3 tool calls (1 repeat)."""
    rows = [
        span(trace_id, "root", None, "agent", 0, 20, input_tokens=999, output_tokens=999),
        span(trace_id, "l1", "root", "llm", 1, 3, model="gpt-4o", provider="openai",
             input_tokens=100, output_tokens=10, cache_read_tokens=40, reported_cost_usd=0.01),
        span(trace_id, "t1", "root", "tool", 3, 4, tool_name="search", tool_arguments='{"q": "a"}'),
        span(trace_id, "l2", "root", "llm", 4, 6, model="gpt-4o", provider="openai",
             input_tokens=200, output_tokens=20, reasoning_tokens=5, reported_cost_usd=0.02),
        span(trace_id, "t2", "root", "tool", 6, 7, tool_name="search", tool_arguments='{"q": "a"}'),
        span(trace_id, "sub", "root", "agent", 7, 12),
        span(trace_id, "s1", "sub", "llm", 8, 9, model="gpt-4o-mini", provider="openai",
             input_tokens=50, output_tokens=5),
        span(trace_id, "t3", "sub", "tool", 9, 10, tool_name="search", tool_arguments='{"q": "b"}',
             status="error", error_type="Timeout"),
        span(trace_id, "l3", "root", "llm", 12, 15, model="gpt-4o", provider="openai",
             input_tokens=300, output_tokens=30),
    ]
    for number, row in enumerate(rows, start=1):
        row["source_row"] = number
    return pd.DataFrame(rows)


def daily_traces(n_days: int, prefix: str = "d") -> pd.DataFrame:
    """One agent trace a day for ``n_days`` days from T0, ids ``<prefix>0``, ``<prefix>1``, ..."""
    return pd.concat([shifted(agent_trace(f"{prefix}{day}"), days=day) for day in range(n_days)],
                     ignore_index=True)


def shifted(frame: pd.DataFrame, *, days: int) -> pd.DataFrame:
    """The same spans, ``days`` later."""
    return frame.assign(start_time=frame["start_time"] + pd.Timedelta(days=days),
                        end_time=frame["end_time"] + pd.Timedelta(days=days))


# costs whose shortest decimal and exact binary value round apart at 18 decimals (DuckDB and
# Spark cast them to decimal differently), classic 0.1 + 0.2, tiny and large values
AWKWARD_COSTS = (0.008504, 0.017466, 0.0099172, 0.0078562, 0.0131578, 0.1, 0.2, 0.3, 1e-12,
                 3.3e-17, 1234.5678, 0.123456789012345678, 7.0)


def costed_traces(costs=AWKWARD_COSTS, n_traces=5, seed=0):
    """LLM spans carrying ``reported_cost_usd``: each trace a shuffled run of ``costs``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_traces):
        for k, cost in enumerate(rng.permutation(np.asarray(costs, dtype="float64"))):
            rows.append(span(f"c{t}", f"l{k}", None, "llm", k, k + 1, model="m", row=k,
                             reported_cost_usd=float(cost)))
    return pd.DataFrame(rows)


def exact_sum_truth(costs):
    """The sum the rollup promises: each cost floored to a multiple of 2**-60, summed
    exactly (fractions), rounded to a float once."""
    import math
    from fractions import Fraction

    units = sum(math.floor(Fraction(c) * 2 ** 60) for c in costs)
    return float(Fraction(units, 2 ** 60))
