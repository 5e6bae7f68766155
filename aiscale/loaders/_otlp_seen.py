"""Span keys already read from an OTLP file, to find a span repeated in a later chunk.

Examples
--------
>>> import numpy as np
>>> seen = SeenSpans()
>>> seen.check_and_add(np.array([5, 7], dtype=np.uint64)).tolist()
[False, False]
>>> seen.check_and_add(np.array([7, 9], dtype=np.uint64)).tolist()
[True, False]
>>> seen.nbytes
32
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from aiscale.loaders.base import is_pandas

if TYPE_CHECKING:
    import pandas as pd

MAX_RUN = 1 << 22  # hashes (32 MB): a run this long is never merged again


class SeenSpans:
    """Hashes of (trace_id, span_id) seen in earlier chunks, as sorted NumPy runs.

    Memory is 8 bytes per span held plus one merge at a time: a newer run is merged into the
    one before when it grows to half its size, so the merging cost is O(n log n) and a lookup
    is one binary search per run; runs stop merging at :data:`MAX_RUN` hashes, so a merge
    never copies more than ``2 * MAX_RUN`` hashes (64 MB), however long the file.
    """

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    @property
    def nbytes(self) -> int:
        """Bytes the runs hold (8 per span seen)."""
        return sum(run.nbytes for run in self.runs)

    def check_and_add(self, hashes: pd.Series | np.ndarray | pa.Array | pa.ChunkedArray):
        """Which ``hashes`` were seen in earlier calls; then remember them.

        Takes a pandas Series (nulls read as 0), a NumPy array or an Arrow array of uint64
        hashes; returns a boolean Series on the same index for a Series, else a NumPy array.
        """
        values = _as_uint64(hashes)
        order = np.argsort(values)  # equal hashes get the same answer: no need of a stable sort
        ordered = values[order]  # sorted needles: each binary search starts from the last one
        hit = np.zeros(len(values), dtype=bool)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, ordered), len(run) - 1)
            hit |= run[at] == ordered
        found = np.empty_like(hit)
        found[order] = hit
        if len(values):
            self.runs.append(ordered)
        self._merge()
        if is_pandas(hashes, "Series"):
            import pandas as pd

            return pd.Series(found, index=hashes.index)
        return found

    def _merge(self) -> None:
        runs = self.runs
        while (len(runs) > 1 and 2 * len(runs[-1]) >= len(runs[-2])
               and len(runs[-2]) + len(runs[-1]) <= MAX_RUN):
            merged = np.concatenate([runs[-2], runs.pop()])
            merged.sort(kind="stable")  # two sorted runs: one merge pass, in place
            runs[-1] = merged


def _as_uint64(hashes) -> np.ndarray:
    if is_pandas(hashes, "Series"):
        return hashes.to_numpy(dtype=np.uint64, na_value=0)
    if isinstance(hashes, (pa.Array, pa.ChunkedArray)):
        return np.asarray(hashes.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.uint64)
    return np.asarray(hashes, dtype=np.uint64)
