"""Buffers a file's blocks are read into, used again once no block refers to them.

Reading each block of a large file into fresh memory made the kernel hand over (and zero)
new pages for every block: at 1 M OTLP spans, ~370,000 page faults and ~1.3 CPU-s of a
load. Here a block is read into a NumPy buffer taken from a small pool; the block is a view
of that buffer, and when the last reference to the view goes (the block was mapped, its
rows copied out) the buffer returns to the pool for a later block. A block still held (a
caller keeping every block, say) keeps its buffer: a new one is made, never one in use.

Examples
--------
>>> import io
>>> pool = BlockBuffers(8)
>>> first = pool.filled(io.BytesIO(b"abcdefghij"), (b"x", b"y"), 6)
>>> bytes(first)
b'xyabcdef'
>>> base = first.obj.base
>>> del first  # no block refers to the buffer now: the next block reuses it
>>> second = pool.filled(io.BytesIO(b"klm"), (), 6)
>>> bytes(second), second.obj.base is base
(b'klm', True)
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

MAX_FREE = 4  # buffers kept for reuse (the OTLP reader holds at most three blocks at once)


class BlockBuffers:
    """A pool of byte buffers of at least ``size`` bytes for blocks read from a stream.

    Parameters
    ----------
    size : int
        The usual block size; buffers hold an eighth more (a block is the usual size plus the
        unfinished line before it), and a block needing still more gets a larger one.
    """

    def __init__(self, size: int):
        self.size = size
        self._free: list[np.ndarray] = []
        self._lock = threading.Lock()  # a buffer comes back in whichever thread drops its block

    def filled(self, handle, prefix: tuple, want: int) -> memoryview:
        """A block: the bytes of ``prefix`` (bytes-like pieces) followed by up to ``want`` bytes
        read from ``handle`` (fewer only at the end of the stream), as a memoryview of a pooled
        buffer."""
        need = sum(len(piece) for piece in prefix) + want
        base = self._take(need)
        block = base[:need]  # the view the block holds; its end returns ``base`` to the pool
        weakref.finalize(block, self._give, base)
        view = memoryview(block)
        at = 0
        for piece in prefix:
            view[at:at + len(piece)] = piece
            at += len(piece)
        while at < need:
            got = handle.readinto(view[at:need])
            if not got:
                break
            at += got
        return view[:at]

    def _take(self, need: int) -> np.ndarray:
        with self._lock:
            for i, base in enumerate(self._free):
                if len(base) >= need:
                    return self._free.pop(i)
        # room for the usual block plus a last unfinished line carried over (an eighth more)
        return np.empty(max(need, self.size) + self.size // 8, dtype=np.uint8)

    def _give(self, base: np.ndarray) -> None:
        with self._lock:
            if len(self._free) < MAX_FREE:
                self._free.append(base)
