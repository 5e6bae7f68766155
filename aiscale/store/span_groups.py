"""A load's spans counted as they are staged, so its summary needs no second read of its parts.

Each chunk's spans are grouped by (trace, LLM call or not, model of the call, UTC day) with
their count and first and last start: a few rows per trace. The groups of every chunk of every
file of a load, taken together, give what :class:`~aiscale.store.load_summary.StoreContents`
reports (distinct traces and days, LLM calls, per-model sessions and calls, first and last
start), exactly as counting the parts would: the same rows, split finer.

Examples
--------
>>> import pyarrow as pa
>>> spans = pa.table({"trace_id": ["t", "t", "u"], "kind": ["llm", "tool", "llm"],
...                   "model": ["m", "m", None],
...                   "start_time": pa.array([0, 1, None], pa.timestamp("us", tz="UTC"))})
>>> groups = span_groups(spans)
>>> groups.num_rows, sum(groups.column("n").to_pylist())
(3, 3)
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

GROUPS_SQL = """
SELECT trace_id, kind = 'llm' AS llm, CASE WHEN kind = 'llm' THEN model END AS model,
       CAST(start_time AS DATE) AS day, count(*) AS n, min(start_time) AS first, max(start_time) AS last
FROM spans GROUP BY ALL"""
"""The groups of the view ``spans`` in DuckDB (a connection in UTC): :func:`span_groups` in SQL."""
GROUPS_SCHEMA = pa.schema([("trace_id", pa.string()), ("llm", pa.bool_()), ("model", pa.string()),
                           ("day", pa.date32()), ("n", pa.int64()),
                           ("first", pa.timestamp("us", tz="UTC")), ("last", pa.timestamp("us", tz="UTC"))])
"""One row per (trace, LLM call or not, model of the call, UTC day of the start): the spans
counted, their first and last start."""


def span_groups(spans: pa.Table) -> pa.Table:
    """The groups (:data:`GROUPS_SCHEMA`) of a table of canonical spans (trace_id, kind, model,
    start_time); the model counts only on LLM calls, a span without a start has a null day."""
    llm = pc.equal(spans.column("kind"), "llm")
    start = spans.column("start_time")
    keyed = pa.table({"trace_id": spans.column("trace_id"), "llm": llm,
                      "model": pc.if_else(llm, spans.column("model"), pa.scalar(None, pa.string())),
                      "day": pc.cast(start, pa.date32()), "start": start})
    counted = keyed.group_by(["trace_id", "llm", "model", "day"], use_threads=False).aggregate(
        [([], "count_all"), ("start", "min"), ("start", "max")])
    return pa.table([counted.column(name).cast(field.type) for name, field in zip(
        ["trace_id", "llm", "model", "day", "count_all", "start_min", "start_max"], GROUPS_SCHEMA,
        strict=True)], schema=GROUPS_SCHEMA)


class AddedRows:
    """What one file adds, counted chunk by chunk as it is staged: the span groups and the
    span-less fact rows.

    Examples
    --------
    >>> import pyarrow as pa
    >>> added = AddedRows()
    >>> added.add_spans(pa.table({"trace_id": ["t"], "kind": ["llm"], "model": ["m"],
    ...                           "start_time": pa.array([0], pa.timestamp("us", tz="UTC"))}))
    >>> added.fact_rows += 2
    >>> added.groups().num_rows, added.fact_rows
    (1, 2)
    """

    def __init__(self) -> None:
        self._groups: list[pa.Table] = []
        self.fact_rows = 0

    def add_spans(self, spans: pa.Table) -> None:
        """Count a chunk's spans, as written to the store."""
        self._groups.append(span_groups(spans))

    def groups(self) -> pa.Table:
        """Every chunk's groups in one table."""
        return pa.concat_tables(self._groups) if self._groups else GROUPS_SCHEMA.empty_table()

    @classmethod
    def read_parts(cls, spans: list[str], facts: list[str]) -> AddedRows:
        """The rows Parquet parts hold (span parts grouped in one read, fact rows counted)."""
        import duckdb

        from aiscale.facts.on_duckdb import bound_memory
        from aiscale.store.checks import CHECKS_MEMORY_LIMIT

        rows = cls()
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            bound_memory(con, CHECKS_MEMORY_LIMIT)  # groups the traces of a load of any size
            if spans:
                con.read_parquet(spans).create_view("spans")
                rows._groups.append(con.sql(GROUPS_SQL).to_arrow_table().cast(GROUPS_SCHEMA))
            if facts:
                rows.fact_rows = con.execute("SELECT count(*) FROM read_parquet(?)", [facts]).fetchall()[0][0]
        finally:
            con.close()
        return rows
