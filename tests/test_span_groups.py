"""A load's summary from the rows counted as its chunks were staged, against counting its parts
again: chunks cut anywhere, repeated spans, spans without a time, models on spans that are no
call, calls without a model, several files, span-less fact rows and quarantined rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import aiscale
from aiscale import schema
from aiscale.store import loading
from aiscale.store.load_summary import StoreContents
from aiscale.store.span_groups import AddedRows

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "otlp-traces.jsonl"
RUNS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "swe-agent-v0-traj"


def _spans(rng: np.random.Generator, n: int) -> pa.Table:
    start = pd.Timestamp("2025-03-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 5 * 86_400, n), unit="s")
    frame = pd.DataFrame({
        "trace_id": [f"t{i}" for i in rng.integers(0, n // 4, n)],
        "span_id": [f"s{i}" for i in range(n)],
        "kind": rng.choice(["llm", "tool", "agent"], n, p=[0.6, 0.3, 0.1]),
        "model": rng.choice(["m1", "m2", "m3", None], n),  # a model on spans that are no call, too
        "start_time": start.where(rng.random(n) > 0.05),  # some spans without a time
        "status": "ok", "source_row": range(n)})
    return schema.conform(frame, "spans")


def _assert_same(counted: StoreContents, read: StoreContents) -> None:
    assert (counted.traces, counted.llm_calls, counted.days, counted.fact_rows) == (
        read.traces, read.llm_calls, read.days, read.fact_rows)
    assert (counted.first, counted.last) == (read.first, read.last)
    assert counted.lines() == read.lines()
    pd.testing.assert_frame_equal(counted.summary(), read.summary(), check_exact=True)


def test_chunks_cut_anywhere_count_as_their_parts_do(rng, tmp_path):
    spans = _spans(rng, 4_000)
    spans = pa.concat_tables([spans, spans.slice(100, 300)])  # spans repeated (a second file's copy)
    cuts = np.sort(rng.choice(np.arange(1, spans.num_rows), 9, replace=False))
    added = AddedRows()
    for low, high in zip([0, *cuts], [*cuts, spans.num_rows], strict=True):
        added.add_spans(spans.slice(low, high - low))
    parts = []
    for i, low in enumerate(range(0, spans.num_rows, 1_500)):
        parts.append(str(tmp_path / f"p{i}.parquet"))
        pq.write_table(spans.slice(low, 1_500), parts[-1])
    counted, read = StoreContents.from_rows([added]), StoreContents.read_parts(parts, [])
    _assert_same(counted, read)
    assert counted.traces == len(set(spans.column("trace_id").to_pylist())) and counted.days == 5
    assert counted.llm_calls == spans.column("kind").to_pylist().count("llm")


def test_nothing_added_counts_nothing():
    contents = StoreContents.from_rows([AddedRows()])
    assert (contents.traces, contents.llm_calls, contents.days, contents.first) == (0, 0, 0, None)
    assert contents.models.empty and contents.lines()[0].endswith("no span timestamps")


def test_a_load_of_several_files_counts_what_its_parts_hold(tmp_path, monkeypatch):
    lines = DEMO.read_text().splitlines(keepends=True)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("".join(lines[: len(lines) // 2]) + "{oops\n")  # one quarantined
    (tmp_path / "in" / "b.jsonl").write_text("".join(lines[len(lines) // 3:]))  # spans a.jsonl has too
    files = [tmp_path / "in" / "a.jsonl", tmp_path / "in" / "b.jsonl", RUNS]  # RUNS: span-less fact rows
    store = aiscale.TraceStore(tmp_path / "s")
    summary = store.load(files)
    assert summary.rows_quarantined == 1 and summary.contents.fact_rows == 2
    read = StoreContents.read_parts(store.parts("spans"), store.parts("facts"))  # all of it is this load's
    _assert_same(summary.contents, read)

    def uncounted(*args, **kwargs):  # a stage that does not count its rows: the store reads its parts
        record = stage_file(*args, **kwargs)
        record.pop("added", None)
        return record

    stage_file = loading.stage_file
    monkeypatch.setattr(loading, "stage_file", uncounted)
    again = aiscale.TraceStore(tmp_path / "s2").load(files)
    _assert_same(again.contents, read)
