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
>>> c = StoreContents(traces=2, llm_calls=5, days=1, fact_rows=0,
...                   models=pd.DataFrame({"model": ["m"], "sessions": [2], "calls": [5], "days": [1]}))
>>> c.lines()[0]
'2 traces with spans (5 LLM calls on 1 days, UTC), 0 fact rows; no span timestamps'
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


_GROUPS_SQL = """
SELECT trace_id, kind = 'llm' AS llm, CASE WHEN kind = 'llm' THEN model END AS model,
       CAST(start_time AS DATE) AS day, count(*) AS n, min(start_time) AS first, max(start_time) AS last
FROM spans GROUP BY ALL"""
"""Spans counted per (trace, LLM call or not, model of the call, day): a few rows per trace, from
which both the totals and the models are counted with one read of the spans."""
_CONTENTS_SQL = """
SELECT count(DISTINCT trace_id) AS traces, CAST(coalesce(sum(n) FILTER (WHERE llm), 0) AS BIGINT) AS llm_calls,
       count(DISTINCT day) AS days, min(first) AS first, max(last) AS last FROM groups"""
_MODELS_SQL = """
SELECT model, count(DISTINCT trace_id) AS sessions, CAST(sum(n) AS BIGINT) AS calls,
       count(DISTINCT day) AS days, min(first) AS first, max(last) AS last
FROM groups WHERE llm AND model IS NOT NULL GROUP BY model ORDER BY calls DESC, model"""


@dataclass
class StoreContents:
    """What a store holds: traces (sessions), LLM calls, UTC days, models, span-less fact rows.

    ``models`` has one row per model: sessions (traces) that called it, calls, days, first
    and last call. Times are null when the source has none (never a made-up date).
    """

    traces: int
    llm_calls: int
    days: int
    fact_rows: int
    models: pd.DataFrame = field(repr=False)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None

    @classmethod
    def read(cls, store) -> StoreContents:
        """Count what ``store`` (anything with ``sql(query) -> DataFrame``) holds."""
        fact_rows = store.sql("SELECT count(*) AS n FROM facts_raw").iloc[0, 0]
        return cls._counted(lambda query: store.sql(f"WITH groups AS ({_GROUPS_SQL}) {query}"), fact_rows)

    @classmethod
    def read_parts(cls, spans: list[str], facts: list[str]) -> StoreContents:
        """Count what the given Parquet parts hold (a load's own parts; paths are values)."""
        import duckdb

        from aiscale import schema
        from aiscale.facts.on_duckdb import bound_memory
        from aiscale.store.checks import CHECKS_MEMORY_LIMIT

        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            bound_memory(con, CHECKS_MEMORY_LIMIT)  # counts distinct traces of a load of any size
            relation = (con.read_parquet(spans) if spans else
                        con.from_arrow(schema.schema_of("spans").empty_table()))
            relation.create_view("spans")
            con.execute(f"CREATE TEMP TABLE groups AS {_GROUPS_SQL}")  # one read of the parts
            fact_rows = con.execute("SELECT count(*) FROM read_parquet(?)", [facts]).fetchone()[0] if facts else 0
            return cls._counted(lambda query: con.execute(query).df(), fact_rows)
        finally:
            con.close()

    @classmethod
    def _counted(cls, sql, fact_rows: int) -> StoreContents:
        row = sql(_CONTENTS_SQL).iloc[0]
        first, last = (None, None) if pd.isna(row["first"]) else (row["first"], row["last"])
        return cls(traces=int(row["traces"]), llm_calls=int(row["llm_calls"]), days=int(row["days"]),
                   fact_rows=int(fact_rows), models=sql(_MODELS_SQL), first=first, last=last)

    def summary(self) -> pd.DataFrame:
        """One row per model (sessions, calls, days, first, last), most calls first."""
        return self.models.copy()

    def lines(self, top: int = 8) -> list[str]:
        """The store's contents in two lines (the second lists the ``top`` models by calls)."""
        span = (f"time range {self.first} to {self.last}" if self.first is not None
                else "no span timestamps")
        out = [f"{self.traces:,} traces with spans ({self.llm_calls:,} LLM calls on {self.days:,} days, "
               f"UTC), {self.fact_rows:,} fact rows; {span}"]
        if len(self.models):
            more = f" and {len(self.models) - top} more" if len(self.models) > top else ""
            out.append(f"models ({len(self.models)}): " + ", ".join(
                f"{m} ({c:,} calls)" for m, c in self.models[["model", "calls"]].head(top)
                .itertuples(index=False)) + more)
        return out


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
        columns = ["path", "format", "status", "rows_read", "rows_loaded", "rows_quarantined",
                   "unit", "seconds"]
        return pd.DataFrame([{c: getattr(f, c) for c in columns} for f in self.files], columns=columns)

    def __repr__(self) -> str:
        held = ""
        if (c := self.contents) is not None:
            held = (f"; added {c.traces} traces, {c.llm_calls} LLM calls, {len(c.models)} models, "
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
