"""Span rows the OTLP flatten flagged (``span_bad``) as quarantine records, for the local and
the Spark load alike.

A flagged LLM span of a known trace is a lost call (its trace's cost becomes unknown), except
a repeat of a span an earlier line had: that span's first copy is kept.

Examples
--------
>>> import pandas as pd
>>> rows = pd.DataFrame({"line_no": [3, 4], "span_bad": ["gen_ai.usage.input_tokens is absurd", REPEAT],
...                      "span_id": ["a", "b"], "name": ["chat", "chat"], "trace_id": "t", "kind": "llm"})
>>> [(q.source_row, q.lost_llm_call) for q in quarantined_spans(rows, "f.jsonl")]
[(3, True), (4, False)]
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from aiscale.loaders.base import Chunk, Quarantined, excerpt, is_pandas
from aiscale.loaders.validate import lost_call

if TYPE_CHECKING:
    import pandas as pd

REPEAT = "duplicate span_id within the trace (an earlier line has it)"


def quarantined_spans(spans: pd.DataFrame | pa.Table, source_file: str) -> list[Quarantined]:
    """A :class:`Quarantined` per row of ``spans`` (line_no, span_bad, span_id, name, trace_id,
    kind), a pandas frame or an Arrow table."""
    columns = ["line_no", "span_bad", "span_id", "name", "trace_id", "kind"]
    rows = (spans[columns].itertuples(index=False) if is_pandas(spans)
            else zip(*(spans.column(c).to_pylist() for c in columns), strict=True))
    return [Quarantined(source_file, int(n), str(why), excerpt(f"span {s} {name!r}"),
                        **({} if why == REPEAT else lost_call({"trace_id": trace, "kind": kind})))
            for n, why, s, name, trace, kind in rows]


def bad_lines(batch: pa.RecordBatch, path: Path, line_numbers: np.ndarray,
              offsets: np.ndarray, data: memoryview, sizes: np.ndarray) -> Chunk:
    """The chunk of a block's bad lines: ``batch`` has ``line_no`` and the rule broken
    (``line_bad``); the block (line numbers, offsets, bytes, sizes) gives each its excerpt."""
    quarantined = [Quarantined(str(path), n, why, line_excerpt(n, line_numbers, offsets, data))
                   for n, why in zip(batch["line_no"].to_pylist(), batch["line_bad"].to_pylist(),
                                     strict=True)]
    return Chunk(quarantined=quarantined, rows_read=len(quarantined))


def line_excerpt(number: int, line_numbers: np.ndarray, offsets: np.ndarray,
                 data: memoryview) -> str:
    """The start of line ``number`` of a block (its first 800 bytes), as an excerpt.

    Examples
    --------
    >>> line_excerpt(8, np.array([7, 8]), np.array([0, 4, 9]), memoryview(b"bad\\n{oops"))
    '{oops'
    """
    i = int(np.searchsorted(line_numbers, number))
    raw = data[offsets[i]:min(offsets[i + 1], offsets[i] + 4 * 200)]
    return excerpt(bytes(raw).decode("utf-8", "replace").strip())
