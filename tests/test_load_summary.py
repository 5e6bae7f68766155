"""What a load added, counted from its parts in one read: traces, LLM calls, days and models,
against counts made by hand (a call without a model, spans without a time, a model named on a
span that is no LLM call)."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from aiscale import schema
from aiscale.store.load_summary import StoreContents


def _spans() -> pd.DataFrame:
    t = pd.Timestamp
    rows = [  # trace, kind, model, start
        ("a", "agent", "m1", t("2025-01-01 10:00", tz="UTC")),  # a model on a span that is no call
        ("a", "llm", "m1", t("2025-01-01 10:01", tz="UTC")),
        ("a", "llm", "m1", t("2025-01-02 09:00", tz="UTC")),
        ("a", "llm", "m2", t("2025-01-02 09:30", tz="UTC")),
        ("b", "llm", "m1", t("2025-01-03 00:00", tz="UTC")),
        ("b", "llm", None, t("2025-01-03 00:05", tz="UTC")),  # a call without a model
        ("c", "tool", None, None),  # no start time
        ("c", "llm", "m2", None),
    ]
    frame = pd.DataFrame(rows, columns=["trace_id", "kind", "model", "start_time"])
    return frame.assign(span_id=[f"s{i}" for i in range(len(frame))], status="ok", source_row=range(len(frame)))


def test_a_loads_contents_are_counted_as_by_hand(tmp_path):
    spans = schema.conform(_spans(), "spans")
    pq.write_table(spans.slice(0, 3), tmp_path / "one.parquet")
    pq.write_table(spans.slice(3), tmp_path / "two.parquet")
    contents = StoreContents.read_parts([str(tmp_path / "one.parquet"), str(tmp_path / "two.parquet")], [])
    assert (contents.traces, contents.llm_calls, contents.days, contents.fact_rows) == (3, 6, 3, 0)
    assert (contents.first, contents.last) == (pd.Timestamp("2025-01-01 10:00", tz="UTC"),
                                               pd.Timestamp("2025-01-03 00:05", tz="UTC"))
    models = contents.summary()
    assert models["model"].tolist() == ["m1", "m2"]  # most calls first
    assert models[["sessions", "calls", "days"]].values.tolist() == [[2, 3, 3], [2, 2, 1]]
    assert models["first"].tolist() == [pd.Timestamp("2025-01-01 10:01", tz="UTC"),
                                        pd.Timestamp("2025-01-02 09:30", tz="UTC")]
    assert models["last"].tolist() == [pd.Timestamp("2025-01-03 00:00", tz="UTC"),
                                       pd.Timestamp("2025-01-02 09:30", tz="UTC")]
    assert [str(d) for d in models[["sessions", "calls", "days"]].dtypes] == ["int64"] * 3
