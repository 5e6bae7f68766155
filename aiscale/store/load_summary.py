"""What a load did: rows read, loaded and quarantined per file, and the totals.

Examples
--------
>>> s = LoadSummary(files=[FileLoad("a.jsonl", "otlp", "loaded", rows_read=3, rows_loaded=2,
...                                  rows_quarantined=1)])
>>> s.rows_read == s.rows_loaded + s.rows_quarantined
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class FileLoad:
    """The outcome of loading one file."""

    path: str
    format: str | None
    status: str  # "loaded", "already loaded", "skipped"
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    unit: str = "span"
    seconds: float = 0.0
    reason: str = ""
    quarantine_examples: list[str] = field(default_factory=list)


@dataclass
class LoadSummary:
    """Rows read / loaded / quarantined per file; ``rows_read == rows_loaded + rows_quarantined``."""

    files: list[FileLoad]
    orphan_spans: int = 0
    colliding_traces: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    def summary(self) -> pd.DataFrame:
        """One row per file: path, format, status, rows read / loaded / quarantined, seconds."""
        columns = ["path", "format", "status", "rows_read", "rows_loaded", "rows_quarantined",
                   "unit", "seconds"]
        return pd.DataFrame([{c: getattr(f, c) for c in columns} for f in self.files], columns=columns)

    def __repr__(self) -> str:
        return (f"<aiscale.LoadSummary: {len(self.files)} files, {self.rows_read} rows read, "
                f"{self.rows_loaded} loaded, {self.rows_quarantined} quarantined>")

    def __str__(self) -> str:
        loaded = [f for f in self.files if f.status == "loaded"]
        lines = [f"files: {len(self.files)} ({len(loaded)} loaded, "
                 f"{sum(f.status == 'already loaded' for f in self.files)} already loaded, "
                 f"{sum(f.status == 'skipped' for f in self.files)} skipped)",
                 f"rows read: {self.rows_read:,}  loaded: {self.rows_loaded:,}  "
                 f"quarantined: {self.rows_quarantined:,}"]
        if self.orphan_spans:
            lines.append(f"spans whose parent is not in the store: {self.orphan_spans:,} "
                         "(kept; their trace may be split across files)")
        if self.colliding_traces:
            shown = ", ".join(self.colliding_traces[:3])
            lines.append(f"WARNING: {len(self.colliding_traces):,} trace id(s) are claimed by different "
                         f"sources (e.g. {shown}) and are rolled up as one trace each: check that they "
                         "are the same traces, or load the sources into separate stores")
        for f in self.files:
            for example in f.quarantine_examples:
                lines.append(f"  {example}")
            if f.status == "skipped":
                lines.append(f"  skipped {f.path}: not a known format")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.summary().to_html(escape=True, index=False)
