"""JSONL records read in blocks: the per-page bracket counts that clear a block of the depth rule
are exact, and a line one level too deep is found wherever it falls against the pages."""

from __future__ import annotations

import numpy as np
import pytest

from aiscale.loaders._records import _PAGE, _page_counts, read_batches
from aiscale.loaders.base import MAX_DEPTH, TOO_DEEP


def brackets(raw: np.ndarray) -> np.ndarray:
    opening = np.bitwise_or(raw, 32)
    np.equal(opening, ord("{"), out=opening.view(bool))
    return opening


@pytest.mark.parametrize("size", [0, 1, _PAGE - 1, _PAGE, _PAGE + 1, 7 * _PAGE + 13, 200_003])
def test_page_counts_are_the_exact_counts_of_brackets_per_page(size):
    rng = np.random.default_rng(size)
    raw = rng.choice(np.frombuffer(b'{[a"]}x\n', np.uint8), size=size)
    opening = brackets(raw)
    starts = np.arange(0, size, _PAGE)
    expected = np.add.reduceat(opening.astype(np.int64), starts) if size else np.zeros(0, np.int64)
    counts = _page_counts(opening)
    if size % _PAGE == 0:
        assert counts[-1] == 0
        counts = counts[:-1]
    assert counts.tolist() == expected.tolist()


def test_a_page_of_nothing_but_brackets_counts_every_one():
    opening = brackets(np.frombuffer(b"[{" * (3 * _PAGE // 2) + b"[[[", np.uint8))
    assert _page_counts(opening).tolist() == [_PAGE, _PAGE, _PAGE, 3]


@pytest.mark.parametrize("offset", [0, 1, _PAGE - 600, _PAGE - 1, 2 * _PAGE - 513])
def test_a_line_one_level_too_deep_is_quarantined_wherever_it_starts(tmp_path, offset):
    pad = '{"pad": "' + "x" * max(offset - 11, 0) + '"}' if offset else ""
    deep = '{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}"  # MAX_DEPTH + 1 levels
    edge = '{"a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"  # at the bound: kept
    lines = [line for line in (pad, deep, edge, '{"b": 1}') if line]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    (batch, bad), = list(read_batches(path))
    deep_row = lines.index(deep) + 1
    assert [(q.source_row, q.reason) for q in bad] == [(deep_row, TOO_DEEP)]
    assert batch.column("_row").to_pylist() == [row for row in range(1, len(lines) + 1) if row != deep_row]
