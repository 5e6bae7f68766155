"""The platform loaders' fast path gives what the batch-by-batch path gives.

A plain JSONL file is read in Arrow buffers, cut into the batches the gzip stream reader cuts
(the same lines, rows and quarantine per batch, with lines over the bound skipped); a query
given as text runs once over the whole file and its rows are cut back into those batches,
equal to the query run on each batch; the UTC-offset rule runs its regular expression only on
times that can break it, with the same verdicts; and the loaders hand the store Arrow tables in
its schema, quarantining counts that are no int64 with validation's words.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pytest
from awkward_platform import write_awkward

from aiscale import schema
from aiscale.loaders import _platform_map, _records, langfuse, langsmith, phoenix
from aiscale.loaders._platform_sql import _offset_may_break, connect, time_problem, time_sql
from aiscale.loaders.base import ArrowChunk

FIX = Path(__file__).resolve().parent / "fixtures" / "platforms"


def awkward_file(tmp_path: Path, rows: int = 600) -> Path:
    """The seeded awkward LangSmith rows, with a BOM, blank lines, long lines and no last newline."""
    lines = write_awkward("langsmith", tmp_path / "awkward.jsonl", rows=rows, seed=3).read_bytes().splitlines()
    long = json.dumps({"id": "long", "trace_id": "t", "run_type": "llm", "pad": "x" * 12_000}).encode()
    lines[10:10] = [b"", b"  \r", long]
    lines[300:300] = [long, long]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines + [long]))
    return path


def batches(path: Path) -> list[tuple]:
    return [(b.column("line").to_pylist(), b.column("_row").to_pylist(), [vars(q) for q in bad])
            for b, bad in _records.read_batches(path)]


@pytest.mark.parametrize("block, bound", [(32 << 20, 16 << 20), (50_000, 2_000), (5_000, 2_500), (700, 2_000)])
def test_plain_reader_cuts_the_batches_the_stream_reader_cuts(tmp_path, monkeypatch, block, bound):
    path = awkward_file(tmp_path)
    packed = tmp_path / "mixed.jsonl.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    monkeypatch.setattr(_records, "BLOCK_BYTES", block)
    monkeypatch.setattr(_records, "MAX_RECORD_BYTES", bound)
    plain, stream = batches(path), batches(packed)
    assert plain == [(lines, rows, [{**q, "source_file": str(path)} for q in bad]) for lines, rows, bad in stream]
    assert sum(len(rows) for _, rows, _ in plain) > 500
    assert any(q["reason"].startswith("record larger than") for *_, bad in plain for q in bad) == (bound < 12_000)


def test_a_streamed_query_gives_each_batch_what_its_own_query_gives(tmp_path, monkeypatch):
    path = awkward_file(tmp_path, rows=300)
    monkeypatch.setattr(_records, "BLOCK_BYTES", 5_000)  # the long lines run past a block: batches with no rows
    monkeypatch.setattr(_records, "MAX_RECORD_BYTES", 2_500)
    monkeypatch.setattr(_platform_map, "OUT_ROWS", 7)  # result batches cut across the file's batches
    streamed = list(_platform_map.mapped_batches(path, langsmith.QUERY))
    per_batch = list(_platform_map._per_batch(path, lambda batch: langsmith.QUERY))
    assert len(streamed) == len(per_batch) > 20
    assert any(rows is None for rows, _ in streamed)
    for (rows, bad), (own_rows, own_bad) in zip(streamed, per_batch, strict=True):
        assert (rows is None) == (own_rows is None)
        if rows is not None:
            assert rows.equals(own_rows)
        assert [vars(q) for q in bad] == [vars(q) for q in own_bad]
    assert sum(len(bad) for _, bad in streamed) > 20


def test_the_offset_rule_runs_its_expression_only_where_it_can_fire():
    rng = random.Random(7)
    times = [f"2026-01-02{rng.choice('T x')}03:04:05{rng.choice(['', '.5', ',25'])}{rng.choice(['', ' '])}"
             f"{rng.choice('+-')}{rng.randint(0, 99):02d}{rng.choice([':', '', '::'])}{rng.randint(0, 99):02d}"
             f"{rng.choice(['', '', 'Z', '7'])}" for _ in range(3000)]
    times += ["2026-11-26T00:24:38.7+25:00", "2026-11-26T00:24:38+14:00", "2026-11-26T00:24:38Z", "1750000000"]
    con = connect()
    con.register("t", pa.table({"t": times}))
    rule = time_problem("t", "start_time", "ts")
    guard = _offset_may_break("t") + " AND "
    assert guard in rule

    def verdicts(sql: str) -> list:
        return [r[0] for r in con.sql(f"SELECT {sql} FROM (SELECT t, {time_sql('t')} AS ts FROM t)").fetchall()]

    found = verdicts(rule)
    assert found == verdicts(rule.replace(guard, ""))
    assert 100 < found.count("start_time has a UTC offset beyond ±14:00") < len(times) - 100


@pytest.mark.parametrize("module, name", [(langsmith, "langsmith_sdk_runs.jsonl"), (phoenix, "phoenix_spans.jsonl"),
                                          (langfuse, "langfuse_observations_api.json")])
def test_platform_loaders_hand_the_store_arrow_in_its_schema(module, name):
    chunks = [c for c in module.read(FIX / name) if isinstance(c, ArrowChunk) and c.span_table is not None]
    assert chunks and all(c.span_table.schema == schema.SPANS and c.trace_table.schema == schema.TRACES
                          for c in chunks)


def test_a_count_that_is_no_int64_is_quarantined_with_validations_words(tmp_path):
    runs = [json.loads(line) for line in (FIX / "langsmith_sdk_runs.jsonl").read_text().splitlines() if line]
    llm = [i for i, r in enumerate(runs) if r["run_type"] == "llm"]
    runs[llm[0]]["prompt_tokens"], runs[llm[1]]["completion_tokens"] = 1.5, 2.0 ** 70
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    chunk = next(langsmith.read(path))
    assert {(q.source_row, q.reason) for q in chunk.quarantined} == {
        (llm[0] + 1, "input_tokens is not a whole number"),
        (llm[1] + 1, "output_tokens is absurd (over 100,000,000 in one span)")}
    assert chunk.span_table.num_rows == len(runs) - 2
    assert all(q.lost_llm_call for q in chunk.quarantined)


def test_a_long_line_ending_where_a_compressed_read_ends_does_not_end_the_file(tmp_path, monkeypatch):
    """The over-long line's newline is the last byte read so far: the lines after it still load."""
    monkeypatch.setattr(_records, "BLOCK_BYTES", 1_000)
    monkeypatch.setattr(_records, "MAX_RECORD_BYTES", 1_500)
    first = json.dumps({"id": "first", "trace_id": "t", "run_type": "llm", "pad": "y" * 37}).encode()
    frame = len(json.dumps({"id": "long", "pad": ""}))
    # the first line is 100 bytes with its newline; the long one's newline is byte 3,000 (three reads)
    long = json.dumps({"id": "long", "pad": "x" * (3_000 - 100 - 1 - frame)}).encode()
    rest = [json.dumps({"id": f"r{i}", "trace_id": "t", "run_type": "llm"}).encode() for i in range(40)]
    assert len(first) + 1 == 100 and len(first) + len(long) + 2 == 3_000
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"\n".join([first, long, *rest]) + b"\n")
    packed = tmp_path / "long.jsonl.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    stream = batches(packed)
    assert [row for _, rows, _ in stream for row in rows] == [1, *range(3, 43)]
    reasons = [q["reason"] for *_, bad in stream for q in bad]
    assert len(reasons) == 1 and reasons[0].startswith("record larger than")
    assert stream == [(lines, rows, [{**q, "source_file": str(packed)} for q in bad])
                      for lines, rows, bad in batches(path)]
