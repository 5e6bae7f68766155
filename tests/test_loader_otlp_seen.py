"""The OTLP loader's set of spans already read: finds a span repeated any number of chunks
later, whatever form the hashes come in, and holds 8 bytes a span plus a merge overhead that
does not grow with the file."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aiscale.loaders import _otlp_seen
from aiscale.loaders._otlp_seen import SeenSpans


def _chunks(n_chunks: int, size: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Random hashes in chunks, with repeats planted 1 to n_chunks - 1 chunks after their first."""
    rng = np.random.default_rng(seed)
    chunks = [rng.integers(1, 2**63, size, dtype=np.uint64) for _ in range(n_chunks)]
    for later in range(1, n_chunks):
        earlier = int(rng.integers(0, later))
        chunks[later][int(rng.integers(0, size))] = chunks[earlier][int(rng.integers(0, size))]
    chunks[-1][-1] = chunks[0][0]  # the farthest apart: first chunk, last chunk
    seen, truth = set(), []
    for chunk in chunks:
        truth.append(np.array([int(v) in seen for v in chunk]))
        seen.update(int(v) for v in chunk)
    return chunks, truth


@pytest.mark.parametrize("form", ["series", "numpy", "arrow"])
def test_a_span_repeated_far_later_is_found_across_merged_and_capped_runs(monkeypatch, form):
    monkeypatch.setattr(_otlp_seen, "MAX_RUN", 256)  # many capped runs, as a long file has
    chunks, truth = _chunks(60, 50, seed=1)
    seen = SeenSpans()
    for chunk, expected in zip(chunks, truth, strict=True):
        given = {"series": pd.Series(chunk, index=np.arange(len(chunk)) * 3),
                 "numpy": chunk, "arrow": pa.array(chunk)}[form]
        found = seen.check_and_add(given)
        if form == "series":
            assert found.index.equals(given.index)
        np.testing.assert_array_equal(np.asarray(found), expected)
    assert len(seen.runs) > 3 and max(len(run) for run in seen.runs) <= 256
    assert truth[-1][-1] and sum(t.sum() for t in truth) >= 60


def test_nulls_in_a_series_read_as_zero():
    seen = SeenSpans()
    seen.check_and_add(pd.Series([0, 5], dtype="UInt64"))
    assert seen.check_and_add(pd.Series([None, 6], dtype="UInt64")).tolist() == [True, False]


def _overhead(n_chunks: int, size: int) -> tuple[int, int]:
    """Bytes held after all chunks, and the largest transient above what is held, over all calls."""
    chunks, _ = _chunks(n_chunks, size, seed=2)
    seen, worst = SeenSpans(), 0
    tracemalloc.start()
    try:
        for chunk in chunks:
            tracemalloc.reset_peak()
            held = tracemalloc.get_traced_memory()[0]
            seen.check_and_add(chunk)
            worst = max(worst, tracemalloc.get_traced_memory()[1] - held)
    finally:
        tracemalloc.stop()
    return seen.nbytes, worst


def test_memory_is_eight_bytes_a_span_and_the_merge_overhead_does_not_grow(monkeypatch):
    monkeypatch.setattr(_otlp_seen, "MAX_RUN", 4096)
    small_held, small_worst = _overhead(20, 1000)
    large_held, large_worst = _overhead(160, 1000)  # 8x the spans
    assert (small_held, large_held) == (8 * 20_000, 8 * 160_000)
    bound = 8 * (3 * 4096 + 8 * 1000)  # one capped merge (two runs, the merged run, its buffer), a chunk's sort
    assert small_worst <= bound and large_worst <= bound
