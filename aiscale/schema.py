"""The canonical tables of aiscale, declared once: spans, traces and trace facts.

Every loader produces frames shaped by :func:`conform`; nothing downstream re-checks
column names or dtypes. Null means *unknown*, never zero.

Examples
--------
>>> from aiscale import schema
>>> "trace_id" in schema.SPAN_COLUMNS
True
>>> schema.empty("traces").columns[:3].tolist()
['trace_id', 'task_id', 'trial']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import pyarrow as pa

if TYPE_CHECKING:  # pandas is imported where a frame is made: reading facts to Parquet needs none
    import pandas as pd

TableName = Literal["spans", "traces", "facts"]

SPAN_KINDS = (
    "agent", "llm", "tool", "retrieval", "embedding", "chain", "evaluator", "guardrail", "other",
)
SPAN_STATUSES = ("ok", "error", "unset")
TOKEN_COLUMNS = (
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
)

_TS = pa.timestamp("us", tz="UTC")

SPANS = pa.schema([
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("parent_id", pa.string()),
    ("kind", pa.string()),
    ("name", pa.string()),
    ("start_time", _TS),
    ("end_time", _TS),
    ("status", pa.string()),
    ("error_type", pa.string()),
    ("provider", pa.string()),
    ("model", pa.string()),
    *[(c, pa.int64()) for c in TOKEN_COLUMNS],
    ("reported_cost_usd", pa.float64()),
    ("tool_name", pa.string()),
    ("tool_arguments", pa.string()),
    ("attributes", pa.string()),
    ("source", pa.string()),
    ("source_file", pa.string()),
    ("source_row", pa.int64()),
])

TRACES = pa.schema([
    ("trace_id", pa.string()),
    ("task_id", pa.string()),
    ("trial", pa.int64()),
    ("variant", pa.string()),
    ("started_at", _TS),
    ("success", pa.bool_()),
    ("score", pa.float64()),
    ("user_id", pa.string()),
    ("session_id", pa.string()),
    ("metadata", pa.string()),
])

_FACT_MEASURES = [
    ("n_llm_calls", pa.int64()),
    ("n_tool_calls", pa.int64()),
    ("iterations", pa.int64()),
    *[(c, pa.int64()) for c in TOKEN_COLUMNS],
    ("cost_usd", pa.float64()),
    ("reported_cost_usd", pa.float64()),
    ("unpriced_llm_calls", pa.int64()),
    ("latency_s", pa.float64()),
    ("llm_latency_s", pa.float64()),
    ("tool_latency_s", pa.float64()),
    ("n_errors", pa.int64()),
    ("repeated_calls", pa.int64()),
]

FACTS = pa.schema(list(TRACES) + [pa.field(n, t) for n, t in _FACT_MEASURES])

SCHEMAS: dict[str, pa.Schema] = {"spans": SPANS, "traces": TRACES, "facts": FACTS}
SPAN_COLUMNS = tuple(SPANS.names)
TRACE_COLUMNS = tuple(TRACES.names)
FACT_COLUMNS = tuple(FACTS.names)
MEASURE_COLUMNS = tuple(n for n, _ in _FACT_MEASURES)

# Span attributes that record an LLM call's time to first token: seconds, then milliseconds
TTFT_KEYS = ("gen_ai.server.time_to_first_token", "gen_ai.response.time_to_first_token",
             "llm.time_to_first_token", "time_to_first_token", "ttft_s", "ttft")
TTFT_MS_KEYS = ("gen_ai.response.time_to_first_token_ms", "time_to_first_token_ms", "ttft_ms")


def ttft_sql(attributes: str) -> str:
    """DuckDB expression: the time to first token (s) an attributes JSON column records, else null.

    The first of :data:`TTFT_KEYS` (seconds) and :data:`TTFT_MS_KEYS` (milliseconds) present;
    only attributes naming one of them are parsed (a substring test is cheaper than JSON), tested
    for the keys no other key is part of (a text naming ``ttft_ms`` names ``ttft``).

    Examples
    --------
    >>> import duckdb
    >>> duckdb.sql("SELECT " + ttft_sql("a") + " AS t FROM (SELECT '{\\"ttft_ms\\": 250}' AS a)").fetchall()
    [(0.25,)]
    """
    seconds = [f"TRY_CAST(json_extract_string({attributes}, '$.\"{k}\"') AS DOUBLE)" for k in TTFT_KEYS]
    millis = [f"TRY_CAST(json_extract_string({attributes}, '$.\"{k}\"') AS DOUBLE) / 1000" for k in TTFT_MS_KEYS]
    keys = (*TTFT_KEYS, *TTFT_MS_KEYS)
    named = " OR ".join(f"contains({attributes}, '{k}')" for k in keys if not any(o != k and o in k for o in keys))
    return f"CASE WHEN {named} THEN coalesce({', '.join(seconds + millis)}) END"


def cache_write_ttl_sql(attributes: str) -> str:
    """DuckDB expressions: ``cache_write_1h_tokens`` and ``cache_write_5m_tokens`` an attributes
    JSON column records (null when not recorded); only attributes naming the key are parsed.

    Examples
    --------
    >>> import duckdb
    >>> duckdb.sql("SELECT " + cache_write_ttl_sql("a") + " FROM (SELECT '{\\"cache_write_1h_tokens\\": 7}' AS a)").fetchall()
    [(7, None)]
    """
    return ", ".join(
        f"CASE WHEN contains({attributes}, 'cache_write_{ttl}_tokens') THEN TRY_CAST(json_extract_string("
        f"{attributes}, '$.cache_write_{ttl}_tokens') AS BIGINT) END AS cache_write_{ttl}_tokens"
        for ttl in ("1h", "5m"))


def schema_of(table: TableName) -> pa.Schema:
    """Return the Arrow schema of a canonical table.

    Parameters
    ----------
    table : {"spans", "traces", "facts"}
        Which table.

    Returns
    -------
    pyarrow.Schema

    Examples
    --------
    >>> schema_of("spans").field("start_time").type
    TimestampType(timestamp[us, tz=UTC])
    """
    if table not in SCHEMAS:
        raise ValueError(
            f"The value for `table` must be one of {sorted(SCHEMAS)}, but {table!r} was passed."
        )
    return SCHEMAS[table]


def empty(table: TableName) -> pd.DataFrame:
    """Return an empty pandas frame with the columns and dtypes of a canonical table.

    Examples
    --------
    >>> len(empty("facts"))
    0
    """
    import pandas as pd

    return schema_of(table).empty_table().to_pandas(types_mapper=pd.ArrowDtype)


def conform(frame: pd.DataFrame, table: TableName) -> pa.Table:
    """Cast a frame to a canonical table: add missing columns as null, order, cast types.

    Columns not in the schema are dropped (loaders keep extra fields in ``attributes``
    or ``metadata`` before calling this).

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows of the table, possibly missing optional columns.
    table : {"spans", "traces", "facts"}
        Which canonical table to conform to.

    Returns
    -------
    pyarrow.Table
        With exactly the schema of ``table``.

    Examples
    --------
    >>> import pandas as pd
    >>> conform(pd.DataFrame({"trace_id": ["t1"]}), "traces").column("trial").to_pylist()
    [None]
    """
    target = schema_of(table)
    arrays = []
    n = len(frame)
    for field in target:
        if field.name in frame.columns:
            arrays.append(_to_arrow(frame[field.name], field))
        else:
            arrays.append(pa.nulls(n, type=field.type))
    return pa.Table.from_arrays(arrays, schema=target)


def _to_arrow(series: pd.Series, field: pa.Field) -> pa.Array:
    import pandas as pd

    if pa.types.is_timestamp(field.type):
        values = pd.to_datetime(series, utc=True, errors="raise", format="mixed")
        return pa.array(values.dt.as_unit("us"), type=field.type, from_pandas=True)
    if pa.types.is_integer(field.type):
        values = pd.to_numeric(series, errors="raise").astype("Int64")
        return pa.array(values, type=field.type, from_pandas=True)
    if pa.types.is_floating(field.type):
        return pa.array(pd.to_numeric(series, errors="raise").astype("Float64"),
                        type=field.type, from_pandas=True)
    if pa.types.is_boolean(field.type):
        return pa.array(series.astype("boolean"), type=field.type, from_pandas=True)
    values = series.astype("string")
    return pa.array(values, type=field.type, from_pandas=True)


def conform_table(table: pa.Table, name: TableName) -> pa.Table:
    """Cast an Arrow table to a canonical table, as :func:`conform` does a pandas frame.

    Missing columns are added as null, extra ones dropped, types cast; a float NaN is stored
    as null (unknown), as :func:`conform` stores it.

    Examples
    --------
    >>> t = conform_table(pa.table({"trace_id": ["t"], "score": [float("nan")]}), "traces")
    >>> t.column("score").to_pylist(), t.schema == TRACES
    ([None], True)
    """
    import pyarrow.compute as pc

    target = schema_of(name)
    arrays = []
    for field in target:
        if field.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, type=field.type))
            continue
        column = table.column(field.name).cast(field.type)
        if pa.types.is_floating(field.type) and column.null_count < len(column):
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, field.type), column)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=target)
