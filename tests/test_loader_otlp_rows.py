"""The OTLP trace rows (``_otlp_rows._trace_table``) against the rule written out in pandas:
one row per trace in order of first appearance, its earliest start, and each trace field from
the first span that has it, root spans before the others; nulls anywhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aiscale.loaders._otlp_rows import _trace_table


def _spans(rng: np.random.Generator, n: int) -> pa.Table:
    def holes(values, share):
        return [None if rng.random() < share else v for v in values]
    return pa.table({
        "trace_id": pa.array(holes([f"t{int(i)}" for i in rng.integers(0, max(n // 4, 1), n)], 0.05), pa.string()),
        "parent_id": pa.array(holes(["p"] * n, 0.3), pa.string()),
        "start_time": pa.array(holes(rng.integers(0, 10**12, n).tolist(), 0.2), pa.timestamp("us", tz="UTC")),
        "task_id": pa.array(holes([f"task-{int(i)}" for i in rng.integers(0, 50, n)], 0.7), pa.string()),
        "score": pa.array(holes(rng.random(n).tolist(), 0.8), pa.float64())})


def _by_rule(spans: pa.Table) -> pd.DataFrame:
    frame = spans.to_pandas().reset_index(names="row")
    frame = frame[frame["trace_id"].notna()]
    traces = list(dict.fromkeys(frame["trace_id"]))
    out = {"trace_id": traces, "started_at": [], "task_id": [], "score": []}
    for trace in traces:
        rows = frame[frame["trace_id"] == trace]
        rows = rows.assign(child=rows["parent_id"].notna()).sort_values(["child", "row"], kind="stable")
        out["started_at"].append(rows["start_time"].min())
        for name in ("task_id", "score"):
            known = rows[name].dropna()
            out[name].append(known.iloc[0] if len(known) else None)
    return pd.DataFrame(out)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [0, 1, 7, 400])
def test_trace_rows_follow_the_rule(seed, n):
    spans = _spans(np.random.default_rng(seed), n)
    got = _trace_table(spans).select(["trace_id", "started_at", "task_id", "score"]).to_pandas()
    want = _by_rule(spans)
    assert got["trace_id"].tolist() == want["trace_id"].tolist()
    assert [None if pd.isna(v) else v for v in got["started_at"]] == \
        [None if pd.isna(v) else v for v in want["started_at"]]
    for name in ("task_id", "score"):
        assert [None if pd.isna(v) else v for v in got[name]] == [None if pd.isna(v) else v for v in want[name]]


def test_no_start_column_gives_null_starts():
    spans = pa.table({"trace_id": ["a", "b", "a"], "parent_id": [None, None, "x"]})
    assert _trace_table(spans).column("started_at").null_count == 2
