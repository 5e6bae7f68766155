"""The OTLP load maps blocks in several threads and yields exactly what one thread yields.

A file cut into many small blocks (``BLOCK_BYTES`` a few kB), with bad lines in several blocks,
spans repeated blocks later and a gzip copy cut mid-stream, is read by ``otlp.read`` with
two and three mapping threads and by the same steps run one after the other in the caller's
thread; the chunks must be the same, in the same order: span and trace tables, quarantined
rows with their line numbers and words, rows read. Closing the iterator early, or an error in
the consumer, leaves no thread alive. :func:`mapped_in_order` itself keeps the order when
later items finish first, holds no more than it may, and raises an error where it happened.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import threading
import time
from pathlib import Path

import pytest
from test_loader_otlp import BAD_LINES, SDK

from aiscale.loaders import otlp
from aiscale.loaders._otlp_quarantine import bad_lines
from aiscale.loaders._otlp_rows import arrow_chunk
from aiscale.loaders._otlp_seen import SeenSpans
from aiscale.loaders._prefetch import mapped_in_order
from aiscale.loaders.base import ArrowChunk
from aiscale.sim.simulate import simulate_to


def _serial(path: Path) -> list:
    """The loader's steps one after the other in this thread, one connection: the reference."""
    seen, chunks = SeenSpans(), []
    with otlp._connect() as con:
        for block in otlp._blocks_to_map(path):
            for batch, held in otlp._map_block(block, con):
                chunks.append(arrow_chunk(batch, str(path), seen) if "span_id" in batch.schema.names
                              else bad_lines(batch, path, *held))
    return chunks


def _assert_same_chunks(after: list, before: list, at_least: int = 2) -> None:
    assert len(after) == len(before) >= at_least
    for got, want in zip(after, before, strict=True):
        assert type(got) is type(want) and got.rows_read == want.rows_read
        assert got.quarantined == want.quarantined  # file, line, words, excerpt; in order
        if isinstance(want, ArrowChunk):
            assert got.span_table.equals(want.span_table) and got.trace_table.equals(want.trace_table)


def _alive() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("aiscale-otlp")]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> Path:
    """A simulated file with the loader tests' bad lines spread over it and spans repeated later."""
    folder = tmp_path_factory.mktemp("parallel")
    simulate_to(folder / "sim", 20, seed=3, format="otlp")
    good = [json.dumps({"resourceSpans": [{**resource, "scopeSpans": [{**scope, "spans": spans[at:at + 3]}]}]}).encode()
            for line in (folder / "sim" / "otlp-traces.jsonl").read_bytes().splitlines()
            for resource in json.loads(line)["resourceSpans"] for scope in resource.pop("scopeSpans")
            for spans in [scope.pop("spans")] for at in range(0, len(spans), 3)]  # 3 spans a line
    first = SDK.read_bytes().split(b"\n")[0]
    bad = [first[:300] if text is None else text for text, _ in (BAD_LINES[n] for n in sorted(BAD_LINES))]
    bad = [line if isinstance(line, bytes) else line.encode() for line in bad]
    lines = list(good)
    for at, line in zip(range(3, len(good), max(1, len(good) // len(bad))), bad, strict=False):
        lines.insert(at, line)
    lines += [good[0], good[5], b"  ", b"{\"resourceSpans\": ["]  # repeats, blank, a cut line
    path = folder / "awkward.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_many_small_blocks_give_the_chunks_of_one_thread(awkward, monkeypatch):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", 24 << 10)
    before = _serial(awkward)
    assert sum(1 for _ in otlp._blocks(awkward)) > 8
    assert sum(len(c.quarantined) for c in before) >= len(BAD_LINES)
    lines = [q.source_row for c in before for q in c.quarantined]
    assert len({line * 24 // max(lines) for line in lines}) > 3  # bad lines in several blocks
    assert any("repeat" in q.reason or "duplicate" in q.reason for c in before for q in c.quarantined)
    spans = sum(c.rows_read for c in before if isinstance(c, ArrowChunk))
    for workers in (2, 3):
        monkeypatch.setattr(otlp, "WORKERS", workers)
        counted = otlp.COUNTS.copy()
        after = list(otlp.read(awkward))
        _assert_same_chunks(after, before)
        assert otlp.COUNTS["ids"] - counted["ids"] == 3 * spans  # counted from every thread
        assert otlp.COUNTS["blocks"] - counted["blocks"] > 8
        assert not _alive()


def test_a_gzip_cut_mid_stream_gives_the_chunks_of_one_thread(awkward, monkeypatch, tmp_path):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", 16 << 10)
    monkeypatch.setattr(otlp, "WORKERS", 2)
    packed = gzip.compress(awkward.read_bytes(), compresslevel=1)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    before = _serial(cut)
    after = list(otlp.read(cut))
    _assert_same_chunks(after, before)
    last = after[-1].quarantined
    assert len(last) == 1 and "lines from here on are lost" in last[0].reason
    assert sum(1 for c in after if isinstance(c, ArrowChunk)) > 4
    assert not _alive()


def test_closing_early_or_failing_in_the_consumer_leaves_no_thread(awkward, monkeypatch):
    monkeypatch.setattr(otlp, "BLOCK_BYTES", 16 << 10)
    monkeypatch.setattr(otlp, "WORKERS", 2)
    chunks = otlp.read(awkward)
    next(chunks), next(chunks)
    assert _alive()  # the mapping threads are running ahead
    chunks.close()
    assert not _alive()
    with pytest.raises(RuntimeError, match="the consumer failed"):
        for number, _ in enumerate(otlp.read(awkward)):
            if number == 3:
                raise RuntimeError("the consumer failed")
    assert not _alive()


def test_mapped_in_order_keeps_the_order_bounds_what_it_holds_and_raises_in_place():
    held, most, lock = set(), [0], threading.Lock()

    def work(item: int, state: str):
        with lock:
            held.add(item)
            most[0] = max(most[0], len(held))
        time.sleep(random.Random(item).uniform(0, 0.01))  # later items often finish first
        if item == 30:
            yield f"{state}{item}"
            raise ValueError("item 30 is bad")
        yield from (f"{state}{item}" for _ in range(1 + item % 3))

    def passed(outputs):
        for output in outputs:
            with lock:
                held.difference_update(range(int(output[1:])))  # the caller is past the items before
            yield output

    out = []
    with pytest.raises(ValueError, match="item 30 is bad"):
        out.extend(passed(mapped_in_order(iter(range(100)), work, workers=3, held=4,
                                          opened=lambda: contextlib.nullcontext("s"))))
    assert out == [f"s{i}" for i in range(30) for _ in range(1 + i % 3)] + ["s30"]
    assert 2 <= most[0] <= 4 + 1  # at most ``held`` taken and not passed (+1: passing is seen late)
    assert not [t for t in threading.enumerate() if t.name.startswith("aiscale-map")]


def test_mapped_in_order_raises_an_error_of_the_items_after_what_came_before():
    def items():
        yield from range(5)
        raise OSError("disk gone at item 5")

    out = []
    with pytest.raises(OSError, match="disk gone"):
        out.extend(mapped_in_order(items(), lambda x, s: [x], workers=2,
                                   opened=lambda: contextlib.nullcontext(None)))
    assert out == [0, 1, 2, 3, 4]
