"""What a load did: rows read, loaded and quarantined per file, and the totals; what it added.

:class:`StoreContents` (``LoadSummary.contents``, filled by ``TraceStore.load``) says what the
load added, as a coding-agent user asks it: traces (sessions), LLM calls, models and the UTC
days they ran on, read from the parts this load wrote only (a load into a large store does
not re-read it; ``StoreContents.read(store)`` counts the whole store).

Examples
--------
>>> s = LoadSummary(files=[FileLoad("a.jsonl", "otlp", "loaded", rows_read=3, rows_loaded=2,
...                                  rows_quarantined=1)])
>>> s.rows_read == s.rows_loaded + s.rows_quarantined
True
>>> import pandas as pd
>>> c = StoreContents(traces=2, llm_calls=5, days=1, fact_rows=0,
...                   models=pd.DataFrame({"model": ["m"], "sessions": [2], "calls": [5], "days": [1]}))
>>> c.lines()[0]
'2 traces with spans (5 LLM calls on 1 days, UTC), 0 fact rows; no span timestamps'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from aiscale.store.span_groups import GROUPS_SCHEMA, GROUPS_SQL, AddedRows

if TYPE_CHECKING:
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


_CONTENTS_SQL = """
SELECT count(DISTINCT trace_id) AS traces, CAST(coalesce(sum(n) FILTER (WHERE llm), 0) AS BIGINT) AS llm_calls,
       count(DISTINCT day) AS days, min(first) AS first, max(last) AS last FROM groups"""
_MODELS_SQL = """
SELECT model, count(DISTINCT trace_id) AS sessions, CAST(sum(n) AS BIGINT) AS calls,
       count(DISTINCT day) AS days, min(first) AS first, max(last) AS last
FROM groups WHERE llm AND model IS NOT NULL GROUP BY model ORDER BY calls DESC, model"""


class StoreContents:
    """What a store holds: traces (sessions), LLM calls, UTC days, models, span-less fact rows.

    ``models`` has one row per model: sessions (traces) that called it, calls, days, first
    and last call. Times are null when the source has none (never a made-up date).

    Parameters
    ----------
    traces, llm_calls, days, fact_rows : int
        The counts.
    models : DataFrame or pyarrow.Table
        One row per model (model, sessions, calls, days, first, last), most calls first. An
        Arrow table (what a load counts, without pandas) becomes a DataFrame when first read.
    first, last : datetime or Timestamp, optional
        The first and last span start (None when no span has a time); read as Timestamps.
    """

    def __init__(self, traces: int, llm_calls: int, days: int, fact_rows: int,
                 models: pd.DataFrame | pa.Table, first: datetime | None = None,
                 last: datetime | None = None) -> None:
        self.traces, self.llm_calls, self.days, self.fact_rows = traces, llm_calls, days, fact_rows
        self._models, self._first, self._last = models, first, last

    @property
    def models(self) -> pd.DataFrame:
        """One row per model: model, sessions, calls, days, first, last (a pandas frame)."""
        if isinstance(self._models, pa.Table):
            self._models = self._models.to_pandas()
        return self._models

    @property
    def first(self) -> pd.Timestamp | None:
        """The first span start (UTC), None when no span has a time."""
        return _timestamp(self._first)

    @property
    def last(self) -> pd.Timestamp | None:
        """The last span start (UTC), None when no span has a time."""
        return _timestamp(self._last)

    def __repr__(self) -> str:
        return (f"StoreContents(traces={self.traces!r}, llm_calls={self.llm_calls!r}, days={self.days!r}, "
                f"fact_rows={self.fact_rows!r}, first={self.first!r}, last={self.last!r})")

    @classmethod
    def read(cls, store) -> StoreContents:
        """Count what ``store`` (anything with ``sql(query) -> DataFrame``) holds."""
        import pandas as pd

        fact_rows = store.sql("SELECT count(*) AS n FROM facts_raw").iloc[0, 0]
        row = store.sql(f"WITH groups AS ({GROUPS_SQL}) {_CONTENTS_SQL}").iloc[0]
        first, last = (None, None) if pd.isna(row["first"]) else (row["first"], row["last"])
        return cls(traces=int(row["traces"]), llm_calls=int(row["llm_calls"]), days=int(row["days"]),
                   fact_rows=int(fact_rows), models=store.sql(f"WITH groups AS ({GROUPS_SQL}) {_MODELS_SQL}"),
                   first=first, last=last)

    @classmethod
    def read_parts(cls, spans: list[str], facts: list[str]) -> StoreContents:
        """Count what the given Parquet parts hold (a load's own parts; paths are values)."""
        return cls.from_rows([AddedRows.read_parts(spans, facts)])

    @classmethod
    def from_rows(cls, added: list[AddedRows]) -> StoreContents:
        """Count what the files of a load added, from the rows counted as they were staged."""
        import duckdb

        from aiscale.facts.on_duckdb import bound_memory
        from aiscale.store.checks import CHECKS_MEMORY_LIMIT

        groups = pa.concat_tables([rows.groups() for rows in added]) if added else GROUPS_SCHEMA.empty_table()
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            bound_memory(con, CHECKS_MEMORY_LIMIT)  # counts distinct traces of a load of any size
            con.from_arrow(groups).create_view("groups")
            traces, llm_calls, days, first, last = con.execute(_CONTENTS_SQL).fetchall()[0]
            return cls(traces=int(traces), llm_calls=int(llm_calls), days=int(days),
                       fact_rows=sum(rows.fact_rows for rows in added),
                       models=con.sql(_MODELS_SQL).to_arrow_table(), first=first, last=last)
        finally:
            con.close()

    def summary(self) -> pd.DataFrame:
        """One row per model (sessions, calls, days, first, last), most calls first."""
        return self.models.copy()

    def lines(self, top: int = 8) -> list[str]:
        """The store's contents in two lines (the second lists the ``top`` models by calls)."""
        span = (f"time range {self._first} to {self._last}" if self._first is not None
                else "no span timestamps")
        out = [f"{self.traces:,} traces with spans ({self.llm_calls:,} LLM calls on {self.days:,} days, "
               f"UTC), {self.fact_rows:,} fact rows; {span}"]
        models, calls = _column(self._models, "model"), _column(self._models, "calls")
        if models:
            more = f" and {len(models) - top} more" if len(models) > top else ""
            out.append(f"models ({len(models)}): " + ", ".join(
                f"{m} ({c:,} calls)" for m, c in zip(models[:top], calls[:top], strict=True)) + more)
        return out


def _column(models: pd.DataFrame | pa.Table, name: str) -> list:
    """A column of the models table as a list, whether it is a pandas frame or an Arrow table."""
    return models.column(name).to_pylist() if isinstance(models, pa.Table) else models[name].tolist()


def _timestamp(value: datetime | None) -> pd.Timestamp | None:
    """A time as a pandas Timestamp (as the summary's frames give them); None stays None."""
    if value is None:
        return None
    import pandas as pd

    return pd.Timestamp(value)


@dataclass
class LoadSummary:
    """Rows read / loaded / quarantined per file; ``rows_read == rows_loaded + rows_quarantined``."""

    files: list[FileLoad]
    orphan_spans: int = 0
    colliding_traces: list[str] = field(default_factory=list)
    contents: StoreContents | None = None

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
        import pandas as pd

        columns = ["path", "format", "status", "rows_read", "rows_loaded", "rows_quarantined",
                   "unit", "seconds"]
        return pd.DataFrame([{c: getattr(f, c) for c in columns} for f in self.files], columns=columns)

    def __repr__(self) -> str:
        held = ""
        if (c := self.contents) is not None:
            held = (f"; added {c.traces} traces, {c.llm_calls} LLM calls, {len(c._models)} models, "
                    f"{c.days} days")
        return (f"<aiscale.LoadSummary: {len(self.files)} files, {self.rows_read} rows read, "
                f"{self.rows_loaded} loaded, {self.rows_quarantined} quarantined{held}>")

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
        if self.contents is not None:
            lines.extend(["this load added " + self.contents.lines()[0], *self.contents.lines()[1:]])
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        out = self.summary().to_html(escape=True, index=False)
        if self.contents is not None:
            out += f"<p>This load added {html.escape(self.contents.lines()[0])}.</p>"
            out += self.contents.summary().to_html(escape=True, index=False)
        return out
