"""Run the rollup on DuckDB: connection settings, pandas frames or a store's Parquet parts.

Examples
--------
>>> import pandas as pd
>>> from aiscale import schema
>>> spans = pd.DataFrame({"trace_id": ["t"], "span_id": ["a"], "kind": ["llm"], "model": ["m"],
...     "start_time": pd.to_datetime(["2025-01-01"], utc=True)})
>>> int(rollup_frames(spans, schema.empty("traces"))["n_llm_calls"].iloc[0])
1
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from aiscale import schema
from aiscale.facts.compiled import compiled_sql, run_compiled
from aiscale.pricing.genai import RATE_COLUMNS

if TYPE_CHECKING:  # pandas is imported where a frame is made: a store's facts as Parquet need none
    import ibis
    import pandas as pd


def rollup_frames(spans: pd.DataFrame, traces: pd.DataFrame, *,
                  rates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Roll up pandas span and trace frames to trace facts with DuckDB (in memory).

    Convenience for notebooks and tests; stores use :meth:`TraceStore.facts`.
    """
    from aiscale.facts.frame import finish
    from aiscale.facts.rollup import rollup

    con = duckdb_backend()
    spans_t = register(con, "spans_src", schema.conform(spans, "spans"))
    traces_t = register(con, "traces_src", schema.conform(traces, "traces"))
    rates_t = register(con, "rates", rates_arrow(rates)) if rates is not None and len(rates) else None
    return finish(rollup(spans_t, traces_t, rates_t).to_pyarrow().to_pandas())


def price_span_frame(spans: pd.DataFrame, rates: pd.DataFrame | None) -> pd.DataFrame:
    """Add ``cost_usd`` and ``priced`` to a pandas frame of canonical spans, as the facts price them.

    LLM spans get their price (null when unpriced; a failed attempt without usage costs 0);
    other spans get a null cost and ``priced`` null: only LLM calls carry cost (counted once).

    Examples
    --------
    >>> import pandas as pd
    >>> spans = pd.DataFrame({"trace_id": ["t", "t"], "span_id": ["a", "b"], "kind": ["agent", "llm"],
    ...     "model": [None, "m"], "start_time": pd.to_datetime(["2025-01-01"] * 2, utc=True)})
    >>> price_span_frame(spans, None)[["kind", "cost_usd", "priced"]].values.tolist()
    [['agent', nan, <NA>], ['llm', nan, False]]
    """
    import pandas as pd

    out = spans.copy()
    if out.empty:
        return out.assign(cost_usd=pd.Series(dtype="float64"), priced=pd.Series(dtype="boolean"))
    from aiscale.facts.rollup import priced_llm_calls

    con = duckdb_backend()
    table = register(con, "spans_src", schema.conform(spans, "spans"))
    rates_t = register(con, "rates", rates_arrow(rates)) if rates is not None and len(rates) else None
    priced = priced_llm_calls(table, rates_t).to_pyarrow().to_pandas()
    key = ["trace_id", "span_id"]
    priced = priced.drop_duplicates(key)
    merged = out[key].astype(str).merge(priced.astype({"trace_id": str, "span_id": str}), on=key, how="left")
    out["cost_usd"] = merged["cost_usd"].astype("float64").to_numpy()
    out["priced"] = merged["priced"].astype("boolean").to_numpy()
    return out


def frame_of(relation) -> pd.DataFrame:
    """A DuckDB relation (or Arrow table) as pandas, with the dtypes of DuckDB's ``.df()``, faster.

    ``.df()`` builds every string cell as a Python object; going through Arrow is 2-3x
    quicker on wide span tables. Integer and boolean columns with nulls become pandas'
    nullable dtypes (``Int64``, ``boolean``) and those without stay NumPy, decimals become
    float64, as ``.df()`` gives them.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> frame_of(con.sql("SELECT 1::BIGINT a, NULL::BIGINT b, 1.5::DECIMAL(4,1) c")).dtypes.tolist()
    [dtype('int64'), Int64Dtype(), dtype('float64')]
    """
    import pandas as pd

    table = relation if isinstance(relation, pa.Table) else relation.to_arrow_table()
    mapping, empty_text = {}, []
    for i, field in enumerate(table.schema):
        column, kind = table.column(i), field.type
        if pa.types.is_decimal(kind):
            table = table.set_column(i, field.name, column.cast(pa.float64()))
        elif column.null_count and pa.types.is_boolean(kind):
            mapping[field.name] = pd.BooleanDtype()
        elif column.null_count and pa.types.is_integer(kind):
            mapping[field.name] = pd.api.types.pandas_dtype(str(kind).replace("u", "U").replace("int", "Int"))
        elif pa.types.is_string(kind) and len(column) and column.null_count == len(column):
            empty_text.append(field.name)  # .df() gives objects (None) to a text column of nulls only
    frame = table.to_pandas()
    for name, dtype in mapping.items():
        frame[name] = _nullable(table.column(name), dtype)
    for name in empty_text:
        frame[name] = pd.Series([None] * len(frame), dtype=object, index=frame.index)
    return frame


def _nullable(column: pa.ChunkedArray, dtype) -> pd.api.extensions.ExtensionArray:
    """An Arrow integer or boolean column with nulls as a pandas nullable array: the values and
    the null mask taken as they are (no pass through floats or Python objects)."""
    import pandas as pd

    mask = column.is_null().to_numpy(zero_copy_only=False)
    if isinstance(dtype, pd.BooleanDtype):
        return pd.arrays.BooleanArray(column.fill_null(False).to_numpy(zero_copy_only=False), mask)
    return pd.arrays.IntegerArray(column.fill_null(0).to_numpy(zero_copy_only=False).astype(dtype.numpy_dtype,
                                                                                          copy=False), mask)


def duckdb_backend() -> ibis.BaseBackend:
    """An Ibis DuckDB backend on a :func:`duckdb_connection` (UTC, quiet, bounded memory)."""
    import ibis

    return ibis.duckdb.from_connection(duckdb_connection())


def duckdb_connection(limit: str | None = None):
    """A DuckDB connection as the rollup runs it: UTC, no progress bar, bounded memory.

    ``limit`` is its memory cap (default :data:`QUERY_MEMORY_LIMIT`).

    Table names resolve only to the connection's own tables, never to Python variables
    (as Ibis sets its connections).
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'; SET python_enable_replacements = false")
    quiet_progress(con)
    bound_memory(con, limit)
    return con


QUERY_MEMORY_LIMIT = "1GB"  # per DuckDB connection; beyond it joins and sorts spill to disk


def bound_memory(con, limit: str | None = None) -> None:
    """Cap a DuckDB connection's memory at ``limit`` (default :data:`QUERY_MEMORY_LIMIT`), spilling
    to a temp folder.

    DuckDB's default (80% of RAM) let a rollup of 10 M spans take 3.8 GB; capped, it stays
    under 1.5 GB at about 1.3x the time.
    """
    import tempfile
    from pathlib import Path

    spill = Path(tempfile.gettempdir()) / "aiscale-duckdb"
    quoted = str(spill).replace("'", "''")  # a literal, quotes doubled (the temp folder, not trace data)
    con.execute(f"SET memory_limit = '{limit or QUERY_MEMORY_LIMIT}'; SET temp_directory = '{quoted}'")


def quiet_progress(con) -> None:
    """Turn DuckDB's terminal progress bar off (library calls print nothing).

    Inside Jupyter, DuckDB refuses to change the setting without ipywidgets, and draws no
    bar there anyway, so the refusal is ignored.
    """
    import duckdb

    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:
        pass


def register(con: ibis.BaseBackend, name: str, table: pa.Table) -> ibis.Table:
    """Expose an Arrow table to an Ibis DuckDB backend (zero-copy view)."""
    con.con.register(name, table)
    return con.table(name)


RATE_TYPES = {"provider": pa.string(), "model": pa.string(), "day": pa.date32(),
              "min_input_tokens": pa.int64(), "max_input_tokens": pa.int64(),
              **{c: pa.float64() for c in RATE_COLUMNS}, "matched_model": pa.string(),
              "price_source": pa.string()}


def rates_arrow(rates: pd.DataFrame) -> pa.Table:
    """A rate table as Arrow, each column of :data:`RATE_TYPES` with its type (text of nulls
    only is text, not Arrow's null type, so the rollup's input types never vary)."""
    import pandas as pd

    frame = rates.copy()
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    for column in RATE_COLUMNS:
        frame[column] = frame[column].astype("float64")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.cast(pa.schema([(f.name, RATE_TYPES.get(f.name, f.type)) for f in table.schema]))


def rollup_key(dedupe: bool, *, from_parts: bool = False) -> dict:
    """The options of the rollup query (with its input types, what names its compiled SQL);
    ``from_parts``: the query that joins the priced calls to :func:`rate_free_tables`."""
    return {"query": "rollup from parts" if from_parts else "rollup", "dedupe": dedupe}


def part_key(name: str, dedupe: bool) -> dict:
    """The options of the query of one of the rollup's parts that read no rates."""
    return {"query": "rollup part", "part": name, "dedupe": dedupe}


REPEATED_KEY = {"query": "repeated traces"}


def rollup_on_duckdb(parts: dict[str, list[str]], rates: pd.DataFrame | None, *,
                     dedupe: bool = True, lost: pd.DataFrame | None = None) -> pd.DataFrame:
    """Roll up Parquet parts (``{"spans": [...], "traces": [...]}``) to facts on DuckDB.

    Parameters
    ----------
    parts : dict
        Parquet file paths of the canonical ``spans`` and ``traces`` tables.
    rates : pandas.DataFrame, optional
        Rate table (:func:`aiscale.pricing.rates.rate_table`); None leaves every call unpriced.
    dedupe : bool, default=True
        Keep one row per (trace_id, span_id) first.
    lost : pandas.DataFrame, optional
        ``trace_id, lost_llm_calls``: LLM calls quarantined at load (their traces' cost is unknown).
    """
    con, inputs = rollup_inputs(parts, rates, dedupe=dedupe, lost=lost)
    facts = run_compiled(con, lambda backend: rollup_query(backend, inputs, dedupe),
                         key=rollup_key(dedupe), tables=inputs)
    return facts.to_pandas()


ROLLUP_MEMORY_LIMIT = "512MB"  # the facts query spills beyond it (at 256 MB a 10 M-span store ran out)
BATCH_ROWS = 65_536


def rollup_batches(parts: dict[str, list[str]],
                   rates: pd.DataFrame | pa.Table | Callable[[], pd.DataFrame | pa.Table | None] | None, *,
                   dedupe: bool = True, lost: pd.DataFrame | pa.Table | None = None,
                   stored: pa.Table | None = None, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Facts of Parquet parts as record batches in the facts schema with text as large strings
    (the types of a facts file, :func:`~aiscale.facts.frame.parquet_schema`), sorted by trace_id.

    The same rows as :func:`rollup_on_duckdb` finished by :func:`~aiscale.facts.frame.finish_table`
    (``stored``, span-less fact rows in the facts schema, are merged in; a rolled-up trace
    sorts before a stored row of the same id), streamed from a DuckDB connection capped at
    :data:`ROLLUP_MEMORY_LIMIT` (sorts and joins spill to disk), so memory stays flat
    however many traces the store holds: write the batches out as they come. DuckDB gives
    each column its type (:func:`facts_select`), so the batches need no Arrow cast.

    The parts of the rollup that read no rates are computed first (:func:`rate_free_tables`),
    then the priced LLM calls are joined to them. ``rates`` may be a callable that gives the
    rate table: it is called once those parts are done, so that a caller can look the rates
    up in the meantime (genai-prices is Python and holds the GIL; DuckDB's threads do not).
    """
    con, inputs = rollup_inputs(parts, None, dedupe=dedupe, lost=lost, limit=ROLLUP_MEMORY_LIMIT)
    try:
        con.execute("SET preserve_insertion_order = false")  # less memory; the rows are sorted at the end
        con.execute("SET arrow_large_buffer_size = true")  # text as large strings, as a facts file holds it
        made = rate_free_tables(con, inputs, dedupe)
        add_rates(con, inputs, rates() if callable(rates) else rates)
        sql, _ = compiled_sql(con, lambda backend: rollup_query(backend, inputs, dedupe, parts=made),
                              key=rollup_key(dedupe, from_parts=True), tables=inputs + made)
        rows = f"SELECT *, false AS _stored FROM ({sql})"
        if stored is not None and stored.num_rows:
            con.register("stored_facts", stored)
            rows = f"{rows} UNION ALL BY NAME SELECT *, true AS _stored FROM stored_facts"
        query = con.sql(rows)
        reader = con.sql(f"SELECT {facts_select(query.columns)} FROM ({rows}) ORDER BY trace_id, _stored"
                         ).to_arrow_reader(batch_rows)
        yield from reader
    finally:
        con.close()


RATE_FREE_PARTS = ("span_aggregates", "repeated_calls", "outside_main_loop", "trace_rows")  # in order


def rate_free_tables(con, inputs: list[str], dedupe: bool) -> list[str]:
    """Compute the rollup's parts that read no rates (:func:`~aiscale.facts.rollup.rate_free_parts`)
    into temporary tables of ``con``, named as the parts; return their names.

    ``inputs`` are the tables of :func:`rollup_inputs`. Each part is one per trace (or per
    sub-agent span): small beside the spans.
    """
    read = [name for name in inputs if name in ("spans_src", "traces_src", "repeated")]
    for name in RATE_FREE_PARTS:
        sql, _ = compiled_sql(con, lambda backend, part=name: rate_free_query(backend, read, dedupe)[part],
                              key=part_key(name, dedupe), tables=read)
        con.execute(f"CREATE TEMP TABLE {name} AS {sql}")  # a name of the code's, never of trace data
    return list(RATE_FREE_PARTS)


def add_rates(con, inputs: list[str], rates: pd.DataFrame | pa.Table | None) -> None:
    """Register a rate table (pandas, or Arrow typed as :func:`rates_arrow` types it) as ``rates``
    of ``con`` and add it to ``inputs``; nothing when there is none or it is empty."""
    if rates is not None and len(rates):
        con.register("rates", rates if isinstance(rates, pa.Table) else rates_arrow(rates))
        inputs.append("rates")


SQL_TYPES = {pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE",
             pa.bool_(): "BOOLEAN", pa.date32(): "DATE", pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ"}


def facts_select(columns: list[str]) -> str:
    """The select list that gives ``columns`` (a query's) the facts schema's column types.

    Each facts column is cast to its DuckDB type (:data:`SQL_TYPES`; integer sums are
    exact 128-bit numbers until here), a NaN becomes null (unknown, as pandas reads it) and
    a column the query lacks is null.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> row = con.sql(f"SELECT {facts_select(['trace_id', 'score'])} FROM (SELECT 't' AS trace_id, "
    ...               "'nan'::DOUBLE AS score)").fetchall()[0]
    >>> row[:2], row[7], len(row)
    (('t', None), None, 26)
    """
    items = []
    for field in schema.schema_of("facts"):
        sql_type, name = SQL_TYPES[field.type], f'"{field.name}"'
        value = f"CAST({name} AS {sql_type})" if field.name in columns else f"CAST(NULL AS {sql_type})"
        if sql_type == "DOUBLE" and field.name in columns:
            value = f"CASE WHEN isnan({value}) THEN NULL ELSE {value} END"
        items.append(f"{value} AS {name}")
    return ", ".join(items)


def rollup_inputs(parts: dict[str, list[str]], rates: pd.DataFrame | pa.Table | None, *, dedupe: bool,
                   lost: pd.DataFrame | pa.Table | None, limit: str | None = None) -> tuple:
    """A connection with the rollup's input tables, and their names.

    ``rates`` and ``lost`` are pandas frames or Arrow tables already typed (:func:`rates_arrow`,
    :func:`lost_arrow`).
    """
    con = duckdb_connection(limit)
    for name in ("spans", "traces"):
        files = parts.get(name) or []
        if files:
            con.read_parquet(files).create_view(f"{name}_src")  # paths as values, never as SQL
        else:
            con.register(f"{name}_src", schema.schema_of(name).empty_table())
    inputs = ["spans_src", "traces_src"]
    add_rates(con, inputs, rates)
    if lost is not None and len(lost):
        con.register("lost", lost if isinstance(lost, pa.Table) else lost_arrow(lost))
        inputs.append("lost")
    if dedupe:  # the few traces that need de-duplicating, found first
        con.register("repeated", run_compiled(con, repeated_query, key=REPEATED_KEY,
                                              tables=["spans_src"]))
        inputs.append("repeated")
    return con, inputs


def repeated_query(backend: ibis.BaseBackend) -> ibis.Table:
    """The Ibis expression of the traces that repeat a span (:data:`REPEATED_KEY`)."""
    from aiscale.facts.rollup import repeated_traces

    return repeated_traces(backend.table("spans_src"))


def rollup_query(backend: ibis.BaseBackend, inputs: list[str], dedupe: bool,
                 parts: list[str] | None = None) -> ibis.Table:
    """The Ibis expression of the rollup over the tables ``inputs`` of :func:`rollup_inputs`
    (and the tables ``parts`` of :func:`rate_free_tables`, when given)."""
    from aiscale.facts.rollup import rollup

    given = {name: backend.table(name) if name in inputs else None for name in ("rates", "lost", "repeated")}
    return rollup(backend.table("spans_src"), backend.table("traces_src"), given["rates"],
                  dedupe=dedupe, lost=given["lost"], repeated=given["repeated"],
                  parts={name: backend.table(name) for name in parts} if parts else None)


def rate_free_query(backend: ibis.BaseBackend, inputs: list[str], dedupe: bool) -> dict[str, ibis.Table]:
    """The Ibis expressions of the rollup's parts that read no rates, over the tables ``inputs``."""
    from aiscale.facts.rollup import rate_free_parts

    repeated = backend.table("repeated") if "repeated" in inputs else None
    return rate_free_parts(backend.table("spans_src"), backend.table("traces_src"), dedupe=dedupe,
                           repeated=repeated)


def lost_arrow(lost: pd.DataFrame) -> pa.Table:
    """The lost-calls table with its column types fixed (string trace id, int64 count)."""
    return pa.table({"trace_id": pa.array(lost["trace_id"].astype(str).tolist(), pa.string()),
                     "lost_llm_calls": pa.array(lost["lost_llm_calls"].astype("int64").tolist(), pa.int64())})
