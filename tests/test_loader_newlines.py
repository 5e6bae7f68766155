"""Line ends of a block (``_newlines.newline_ends``) against the newlines found by hand: long
lines (found by ``memchr``), short ones (a step done in NumPy), both mixed across steps, a
view into a larger buffer, and the NumPy path alone (no C library)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from aiscale.loaders import _newlines
from aiscale.loaders._newlines import newline_ends


def _by_hand(data: bytes) -> list[int]:
    return [i + 1 for i, byte in enumerate(data) if byte == 10]


def _lines(rng: random.Random, sizes: list[int], count: int) -> bytes:
    return b"".join(b"x" * rng.choice(sizes) + b"\n" for _ in range(count))


@pytest.mark.parametrize("memchr", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_newline_ends_are_the_newlines(monkeypatch, memchr, seed):
    monkeypatch.setattr(_newlines, "STEP", 4096)  # many steps on a small block
    if not memchr:
        monkeypatch.setattr(_newlines, "_memchr", lambda: None)
    rng = random.Random(seed)
    data = (_lines(rng, [3000, 9000, 20000], 12) + _lines(rng, [0, 1, 5, 40], 3000)
            + _lines(rng, [100, 2000, 4095, 4096], 40) + b"no newline at the end" * rng.randint(0, 1))
    got = newline_ends(memoryview(data))
    assert got.dtype == np.int64
    assert got.tolist() == _by_hand(data)


def test_a_view_into_a_larger_buffer_is_searched_alone():
    buffer = np.frombuffer(b"\n" * 10 + b"ab\ncd\n" + b"\n" * 10, dtype=np.uint8)
    assert newline_ends(memoryview(buffer)[10:16]).tolist() == [3, 6]


def test_no_bytes_and_no_newline():
    assert newline_ends(memoryview(b"")).tolist() == []
    assert newline_ends(b"x" * 100_000).tolist() == []
    assert newline_ends(b"\n").tolist() == [1]
