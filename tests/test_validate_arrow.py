"""Span validation in Arrow against the pandas rules: the same rows kept, the same rows
quarantined for the same reasons, when columns hold broken values and when they do not (the
range checks that skip the per-row masks)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from aiscale import schema
from aiscale.loaders.validate import MAX_ID_CHARS, MAX_TOKENS_PER_SPAN, validate_spans
from aiscale.loaders.validate_arrow import validate_span_table


def _spans(n: int, **broken) -> pa.Table:
    """``n`` sound LLM spans of three traces; ``broken`` sets {column: {row: value}}."""
    columns = {
        "trace_id": [f"t{i % 3}" for i in range(n)], "span_id": [f"s{i}" for i in range(n)],
        "parent_id": [None] * 3 + [f"s{i % 3}" for i in range(3, n)], "kind": ["llm"] * n,
        "status": ["ok"] * n, "start_time": [1_000_000 * i for i in range(n)],
        "end_time": [1_000_000 * i + 500 for i in range(n)], "source_file": ["f.jsonl"] * n,
        "source_row": list(range(1, n + 1)), "reported_cost_usd": [0.001 * i for i in range(n)],
        **{c: [10 * i for i in range(n)] for c in schema.TOKEN_COLUMNS},
    }
    for column, rows in broken.items():
        for row, value in rows.items():
            columns[column][row] = value
    table = pa.table({k: v for k, v in columns.items() if k not in ("start_time", "end_time")})
    for column in ("start_time", "end_time"):
        table = table.append_column(column, pa.array(columns[column], pa.timestamp("us", tz="UTC")))
    return schema.conform_table(table, "spans")


def _outcome(good, bad) -> tuple[list, list]:
    rows = good["source_row"] if not isinstance(good, pa.Table) else good.column("source_row").to_pylist()
    return sorted(int(r) for r in rows), sorted((q.source_row, q.reason) for q in bad)


CASES = {
    "sound": {},
    "tokens": {"input_tokens": {1: -1, 4: MAX_TOKENS_PER_SPAN + 1}, "reasoning_tokens": {5: -3},
               "output_tokens": {6: MAX_TOKENS_PER_SPAN}},  # the bound itself is allowed
    "cost": {"reported_cost_usd": {2: -0.5, 3: float("inf"), 7: float("nan"), 8: float("-inf")}},
    "ids": {"trace_id": {1: " ", 2: "x" * (MAX_ID_CHARS + 1)}, "span_id": {3: None, 4: "é" * MAX_ID_CHARS,
                                                                         5: "é" * (MAX_ID_CHARS + 1)}},
    "other rules": {"kind": {1: "robot"}, "status": {2: "maybe"}, "end_time": {3: 0},
                    "parent_id": {4: "s4"}, "span_id": {6: "s5"}, "trace_id": {6: "t2"}},
    "unknown values": {c: {i: None for i in range(12)} for c in (*schema.TOKEN_COLUMNS, "reported_cost_usd")},
}


@pytest.mark.parametrize("case", list(CASES))
def test_arrow_rules_quarantine_what_the_pandas_rules_do(case):
    spans = _spans(12, **CASES[case])
    arrow = _outcome(*validate_span_table(spans))
    pandas = _outcome(*validate_spans(spans.to_pandas()))
    assert arrow == pandas
    assert (arrow[1] == []) == (case in ("sound", "unknown values"))  # each broken case quarantines


def test_a_value_at_each_bound_is_kept_and_one_past_it_is_not():
    kept = _spans(4, cache_read_tokens={0: 0, 1: MAX_TOKENS_PER_SPAN}, span_id={2: "i" * MAX_ID_CHARS})
    assert validate_span_table(kept)[0].num_rows == 4
    past = _spans(4, cache_read_tokens={1: MAX_TOKENS_PER_SPAN + 1})
    good, bad = validate_span_table(past)
    assert good.num_rows == 3 and [q.source_row for q in bad] == [2]
    assert np.all(["absurd" in q.reason for q in bad])
