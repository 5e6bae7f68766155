"""Texts written end to end by one ``take`` (used by the OTLP ``attributes`` JSON).

Each output string is the concatenation of some pieces, chosen by index from source arrays
put end to end. The pieces of every string, in order, are taken at once; the taken array's
data is then every output string back to back, so the output needs only new offsets (one per
string, read from the taken ones in NumPy) and shares the taken data: no join copies the text
again, and null pieces write nothing.

Examples
--------
>>> import numpy as np, pyarrow as pa
>>> pieces = Pieces()
>>> brace = pieces.add(pa.array(["{", "}"]))
>>> words = pieces.add(pa.array(["a", "b", None]))
>>> pieces.joined(np.array([brace, words + 1, words, brace + 1, words + 2]), np.array([4, 1]),
...               valid=np.array([True, False])).to_pylist()
['{ba}', None]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


class Pieces:
    """Source texts put end to end; :meth:`add` says where each array starts."""

    def __init__(self) -> None:
        self._arrays: list[pa.Array] = []
        self._size = 0

    def add(self, array: pa.Array | pa.ChunkedArray) -> int:
        """Append ``array`` (as strings) and return the index of its first element."""
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        start = self._size
        self._arrays.append(array.cast(pa.string()))
        self._size += len(array)
        return start

    def joined(self, order: np.ndarray, counts: np.ndarray, *, valid: np.ndarray | None = None) -> pa.StringArray:
        """One string per entry of ``counts``: the next ``counts[i]`` pieces of ``order``
        (indices of added elements) joined; null where ``valid`` is false."""
        taken = pc.take(pa.concat_arrays(self._arrays) if self._arrays else pa.array([], pa.string()),
                        pa.array(np.asarray(order, dtype=np.int64)))
        offsets = np.frombuffer(taken.buffers()[1], dtype=np.int32)[taken.offset:taken.offset + len(taken) + 1]
        ends = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=ends[1:])
        bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.StringArray.from_buffers(len(counts), pa.py_buffer(np.ascontiguousarray(offsets[ends])),
                                           taken.buffers()[2] or pa.py_buffer(b""), bitmap)


def one_chunk(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column as one array; a chunked column of one chunk is not copied (``combine_chunks`` would)."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column
