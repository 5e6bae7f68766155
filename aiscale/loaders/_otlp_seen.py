"""Span keys already read from an OTLP file, to find a span repeated in a later chunk."""

from __future__ import annotations

import numpy as np


class SeenSpans:
    """Hashes of (trace_id, span_id) seen in earlier chunks, as sorted NumPy runs.

    Runs are merged when a newer one grows to half the size of the one before, so the total
    merging cost is O(n log n); a lookup is one binary search per run (O(log n) runs).
    """

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def check_and_add(self, hashes: np.ndarray) -> np.ndarray:
        values = np.asarray(hashes, dtype=np.uint64)
        found = np.zeros(len(values), dtype=bool)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, values), len(run) - 1)
            found |= run[at] == values
        if len(values):
            self.runs.append(np.sort(values))
        while len(self.runs) > 1 and 2 * len(self.runs[-1]) >= len(self.runs[-2]):
            newest = self.runs.pop()
            self.runs[-1] = np.sort(np.concatenate([self.runs[-1], newest]))
        return found
