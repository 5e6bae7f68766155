"""A file's spans as one Parquet part per day: every row kept in its order within the day,
row groups filled across chunks, the rows held back bounded in bytes, the open files bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiscale import schema
from aiscale.store import day_parts
from aiscale.store.day_parts import DayParts

DAY_US = 86_400_000_000


def _chunk(number: int, days: list[int | None], rng: np.random.Generator) -> pa.Table:
    """Spans of the given days (None: no start time), in the order given, numbered by chunk."""
    starts = [None if d is None else d * DAY_US + int(rng.integers(DAY_US)) for d in days]
    return schema.conform_table(pa.table({
        "trace_id": [f"t{number}-{i % 7}" for i in range(len(days))],
        "span_id": [f"s{number}-{i}" for i in range(len(days))],
        "start_time": pa.array(starts, pa.timestamp("us", tz="UTC")),
        "attributes": ["x" * int(rng.integers(1, 200)) for _ in days],
        "source_row": [number * 10_000 + i for i in range(len(days))]}), "spans")


def _written(folder, names) -> dict[str, pa.Table]:
    days: dict[str, list[pa.Table]] = {}
    for name in names:  # names sort by day, then by the chunk a part starts at
        days.setdefault(name.split("/")[0], []).append(pq.read_table(folder / name))
    return {day: pa.concat_tables(parts) for day, parts in days.items()}


def _expected(chunks: list[pa.Table]) -> dict[str, pa.Table]:
    """Each day's rows: the chunks in order, each chunk's rows of that day in their order."""
    out: dict[str, list[pa.Table]] = {}
    for chunk in chunks:
        days = day_parts.day_numbers(chunk.column("start_time"))
        for day in sorted(set(days.tolist())):
            out.setdefault(day_parts.day_folder(day), []).append(chunk.filter(pa.array(days == day)))
    return {day: pa.concat_tables(parts) for day, parts in sorted(out.items())}


@pytest.fixture
def chunks() -> list[pa.Table]:
    rng = np.random.default_rng(7)
    return [_chunk(n, [None if rng.random() < 0.02 else int(d) for d in rng.integers(20_000, 20_004, 500)], rng)
            for n in range(12)]


def test_each_day_is_one_part_holding_its_rows_in_order_in_row_groups_across_chunks(tmp_path, chunks, monkeypatch):
    monkeypatch.setattr(day_parts, "ROW_GROUP_ROWS", 1_000)
    with DayParts(tmp_path, "stem") as parts:
        for number, chunk in enumerate(chunks):
            parts.add(chunk, number)
    assert [name.split("/")[0] for name in parts.names] == list(_expected(chunks))  # one part a day
    assert parts.names[-1] == "day=unknown/stem-00000.parquet"
    written = _written(tmp_path, parts.names)
    for day, rows in _expected(chunks).items():
        assert written[day].equals(rows), day
    most = max(n for c in chunks for n in np.unique(day_parts.day_numbers(c.column("start_time")),
                                                    return_counts=True)[1])
    for name in parts.names:  # each row group but a part's last holds many chunks' rows of its day
        meta = pq.ParquetFile(tmp_path / name).metadata
        assert all(meta.row_group(i).num_rows >= 1_000 > most for i in range(meta.num_row_groups - 1))
        assert meta.num_row_groups < 12


def test_the_rows_held_back_stay_under_the_byte_budget(tmp_path, chunks, monkeypatch):
    budget = int(2.5 * chunks[0].nbytes)
    monkeypatch.setattr(day_parts, "BUFFER_BYTES", budget)
    held = []
    with DayParts(tmp_path, "stem") as parts:
        for number, chunk in enumerate(chunks):
            parts.add(chunk, number)
            held.append(parts._held_bytes())
    assert max(held) <= budget and max(held) > 0
    written = _written(tmp_path, parts.names)
    assert sum(t.num_rows for t in written.values()) == sum(c.num_rows for c in chunks)
    for day, rows in _expected(chunks).items():
        assert written[day].equals(rows), day


def test_at_most_max_open_files_and_a_day_met_again_gets_a_later_part(tmp_path, monkeypatch):
    monkeypatch.setattr(day_parts, "MAX_OPEN", 2)
    monkeypatch.setattr(day_parts, "BUFFER_BYTES", 0)  # every chunk is written as it comes
    rng = np.random.default_rng(3)
    chunks = [_chunk(n, [20_000 + (n + k) % 5 for k in range(3)] * 4, rng) for n in range(6)]
    opened = []
    real = pq.ParquetWriter

    class Counting(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(day_parts.pq, "ParquetWriter", Counting)
    with DayParts(tmp_path, "stem") as parts:
        for number, chunk in enumerate(chunks):
            parts.add(chunk, number)
            assert sum(w.is_open for w in opened) <= 2
    assert len(parts.names) == len(set(parts.names)) > 5  # more parts than days, none twice
    written = _written(tmp_path, parts.names)
    for day, rows in _expected(chunks).items():
        assert written[day].equals(rows), day



@pytest.mark.parametrize("max_open", [2, 64])
def test_days_held_to_the_end_are_written_at_close_each_in_its_part(tmp_path, monkeypatch, max_open):
    """Every row is held until ``close`` (more days than open writers when ``max_open`` is 2),
    then written in threads: each day's part has its rows in order, no part open after."""
    monkeypatch.setattr(day_parts, "MAX_OPEN", max_open)
    rng = np.random.default_rng(5)
    first = [_chunk(n, [20_000 + int(d) for d in rng.integers(0, 3, 300)], rng) for n in range(3)]
    monkeypatch.setattr(day_parts, "BUFFER_BYTES", 0)  # these are written as they come...
    with DayParts(tmp_path, "stem") as parts:
        for number, chunk in enumerate(first):
            parts.add(chunk, number)
        monkeypatch.setattr(day_parts, "BUFFER_BYTES", 1 << 40)  # ...the rest is held to the end
        later = [_chunk(n, [20_000 + int(d) for d in rng.integers(0, 9, 400)], rng) for n in range(3, 8)]
        for number, chunk in enumerate(later, start=3):
            parts.add(chunk, number)
        assert len(parts._held) == 9
        writers = list(parts._writers.values())
    assert not parts._writers and not any(w.is_open for w in writers)
    written = _written(tmp_path, parts.names)
    assert list(written) == list(_expected(first + later))
    for day, rows in _expected(first + later).items():
        assert written[day].equals(rows), day

def _with_statistics(root) -> dict[str, set[bool]]:
    """Whether each span column's chunks carry statistics, over every part of a store."""
    out: dict[str, set[bool]] = {}
    for part in sorted((root / "spans").rglob("*.parquet")):
        meta = pq.ParquetFile(part).metadata
        for group in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                column = meta.row_group(group).column(i)
                out.setdefault(column.path_in_schema, set()).add(column.is_stats_set)
    return out


def test_a_store_written_with_the_earlier_parquet_settings_reads_the_same(tmp_path, monkeypatch):
    """Parts written as before (statistics on every column) and as now (none on the long text)
    give the same spans and facts, and a store can hold both."""
    import aiscale
    from aiscale.store.verify import verify_store

    lines = (Path(__file__).resolve().parents[1] / "data" / "demo" / "otlp-traces.jsonl").read_text().splitlines(True)
    demo, first, second = tmp_path / "demo.jsonl", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    demo.write_text("".join(lines[:4]))  # four of the demo's batches: the same file, whole and halved
    first.write_text("".join(lines[:2]))
    second.write_text("".join(lines[2:4]))
    new = aiscale.load([demo], store=tmp_path / "new")
    with monkeypatch.context() as patch:
        patch.setattr(day_parts, "writer_options", lambda schema: {
            "compression": "zstd", "use_dictionary": day_parts.DICTIONARY})
        old = aiscale.load([demo], store=tmp_path / "old")
    assert _with_statistics(tmp_path / "old")["attributes"] == {True}
    assert _with_statistics(tmp_path / "new")["attributes"] == {False}
    assert _with_statistics(tmp_path / "new")["span_id"] == {True}
    pd.testing.assert_frame_equal(old.facts(), new.facts(), check_exact=True)
    pd.testing.assert_frame_equal(old.spans(priced=False), new.spans(priced=False), check_exact=True)
    assert verify_store(tmp_path / "old").ok

    with monkeypatch.context() as patch:
        patch.setattr(day_parts, "writer_options", lambda schema: {
            "compression": "zstd", "use_dictionary": day_parts.DICTIONARY})
        both = aiscale.load([first], store=tmp_path / "both")  # half the file as before, half now
    both.load([second])
    assert _with_statistics(tmp_path / "both")["attributes"] == {True, False}
    pd.testing.assert_frame_equal(both.facts(), new.facts(), check_exact=True)
