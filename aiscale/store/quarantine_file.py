"""A load's quarantined rows as a JSONL file: one object per row, the fields of
:class:`~aiscale.loaders.base.Quarantined` (source_file, source_row, reason, excerpt, trace_id,
lost_llm_call).

Written without pandas (a load of Arrow chunks never imports it); ``TraceStore.quarantine()``
reads the files back as a DataFrame and the rollup reads the lost calls from them with DuckDB.

Examples
--------
>>> import json, tempfile
>>> from pathlib import Path
>>> from aiscale.loaders.base import Quarantined
>>> path = Path(tempfile.mkdtemp()) / "quarantine.jsonl"
>>> write_quarantine([Quarantined("f.jsonl", 3, "invalid JSON", "{oops")], path)
>>> json.loads(path.read_text())["source_row"]
3
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

from aiscale.loaders.base import Quarantined


def quarantine_line(row: Quarantined) -> str:
    """One quarantined row as a line of JSON (ASCII, compact; an unknown row number as null).

    Examples
    --------
    >>> quarantine_line(Quarantined("f.jsonl", None, "file is not valid UTF-8"))
    '{"source_file":"f.jsonl","source_row":null,"reason":"file is not valid UTF-8","excerpt":"","trace_id":null,"lost_llm_call":false}'
    """
    number = row.source_row
    known = number is not None and not (isinstance(number, float) and math.isnan(number))
    fields = {"source_file": str(row.source_file), "source_row": int(number) if known else None,
              "reason": str(row.reason), "excerpt": str(row.excerpt),
              "trace_id": None if row.trace_id is None else str(row.trace_id),
              "lost_llm_call": bool(row.lost_llm_call)}
    return json.dumps(fields, separators=(",", ":"))


def write_quarantine(rows: Iterable[Quarantined], path: str | Path) -> None:
    """Write quarantined rows to ``path`` as JSON lines, in their order."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(quarantine_line(row) + "\n" for row in rows)
