"""DuckDB SQL shared by the platform loaders: fields out of JSON records, times, numbers, rules.

Not a loader (the leading underscore keeps it out of the registry). A batch of records (an
Arrow table of JSON texts, :mod:`aiscale.loaders._records`) is parsed by one
``json_extract_string`` call with every path a loader reads; the loader's own SELECT maps
those values to span columns, and :func:`finished` adds aiscale's flags to ``attributes`` in
the same query (a record kept as exported is not copied through DuckDB: :func:`record_text`
takes it from the batch in Arrow). Then :func:`demote_wrappers` counts an LLM span that wraps
another LLM span once (Arrow hash lookups; only the wrappers are rewritten). Nothing is done
per row in Python, and the next batch is mapped in a second thread while this one is stored.
Each value that cannot be what it claims gives its row a ``_problem`` (the first rule broken),
and the row is quarantined with it:

- a line that is not JSON, or not a JSON object;
- a time that is neither ISO 8601 text nor a number since 1970, has a UTC offset beyond
  ±14:00, or falls outside 1990–2099. Numbers take their unit from their magnitude: the
  ranges of seconds, milliseconds, microseconds and nanoseconds over 1990–2099 do not
  overlap, so a time in seconds is never read as nanoseconds; any other number is quarantined;
- a count or cost that is not a number (text, a boolean) or not finite (``NaN``, ``1e400``).

Examples
--------
>>> import pyarrow as pa
>>> batch = pa.table({"line": ['{"t": 1750000000}', '{"t": "yesterday"}'], "_row": [1, 2]})
>>> sql = extract({"t": [("t",)]}) + f", z AS (SELECT *, {time_sql('t')} AS start FROM y) " \\
...     f"SELECT *, {time_problem('t', 'start_time', 'start')} AS _problem FROM z"
>>> table = run(connect(), batch, sql)
>>> str(table["start"][0]), table["_problem"][1].as_py()
('2025-06-15 15:06:40+00:00', 'start_time is not a time (ISO 8601 text or a number since 1970)')
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.loaders._records import LINE, ROW, camel, read_batches
from aiscale.loaders.base import Quarantined, excerpt

EARLIEST, LATEST = "1990-01-01", "2100-01-01"
_FIRST_S, _LAST_S = 631_152_000, 4_102_444_800  # 1990-01-01 and 2100-01-01 in seconds since 1970
UNITS = ((1, 1e6), (1e3, 1e3), (1e6, 1.0), (1e9, 1e-3))  # (per second, to microseconds)
WHITESPACE = " \t\r\n"  # JSON's whitespace: all a valid record can have around it
RECORD_TEXT = "NULL::VARCHAR"  # a loader's ``attributes``: the record as exported, taken from the batch in Arrow
TOKEN_NAMES = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection for one file: times in UTC, no progress bar."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
    return con


def path(*keys: str) -> str:
    """A JSON path for nested keys (dots inside a key are kept): ``$."a.b".c``."""
    return "$" + "".join(f'."{key}"' for key in keys)


def spellings(name: str) -> tuple[tuple[str, ...], ...]:
    """A top-level field as exported by either API style: snake_case and camelCase."""
    return ((name,), (camel(name),)) if camel(name) != name else ((name,),)


def extract(fields: dict[str, Iterable[tuple[str, ...]]], *, lstrip: str = WHITESPACE) -> str:
    """``WITH`` clause whose table ``y`` has each field (first non-null of its key paths) as text.

    Columns of ``y``: ``_row``, ``line`` (the record with the characters ``lstrip`` taken off
    its start), ``_json_ok`` (the line parsed as an object) and one per field. The caller
    appends its ``SELECT ... FROM y``; values it needs as JSON it extracts itself, only for the
    rows that need them (each extraction parses the line again).
    """
    text, paths = _columns(fields, "_v")
    trimmed = LINE if lstrip == WHITESPACE else f"ltrim({LINE}, '{WHITESPACE}')"
    return (f"WITH x AS (SELECT {ROW}, {LINE}, try(json_extract_string({LINE}, {_listing(paths)})) AS _v "
            f"FROM (SELECT {ROW}, ltrim({LINE}, '{lstrip}') AS {LINE} FROM batch) WHERE {trimmed} <> ''), "
            f"y AS (SELECT {ROW}, {LINE}, _v IS NOT NULL AND {trimmed}[1] = '{{' AS _json_ok, "
            f"{', '.join(text)} FROM x) ")


def _columns(fields: dict[str, Iterable[tuple[str, ...]]], values: str) -> tuple[list[str], list[str]]:
    """SELECT items taking each field from the list ``values`` (first non-null of its paths)."""
    paths: list[str] = []
    columns = []
    for name, alternatives in fields.items():
        found = []
        for keys in alternatives:
            paths.append(path(*keys))
            found.append(f"{values}[{len(paths)}]")
        columns.append(f"coalesce({', '.join(found)}) AS \"{name}\"" if len(found) > 1
                       else f"{found[0]} AS \"{name}\"")
    return columns, paths


def _listing(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def number(field: str) -> str:
    """A field as DOUBLE (text numbers read, anything else null)."""
    return f"TRY_CAST(\"{field}\" AS DOUBLE)"


def number_problem(field: str, column: str) -> str:
    """The rule a number field breaks (null when it is absent or a finite number)."""
    value = number(field)
    return (f"CASE WHEN \"{field}\" IS NULL THEN NULL WHEN {value} IS NULL THEN '{column} is not a number' "
            f"WHEN isinf({value}) OR isnan({value}) THEN '{column} is not finite' END")


def _epoch(field: str) -> str:
    value = f"TRY_CAST(\"{field}\" AS DOUBLE)"
    cases = " ".join(
        f"WHEN {value} >= {_FIRST_S * per:.0f} AND {value} < {_LAST_S * per:.0f} "
        f"THEN make_timestamp(CAST(round({value} * {to_us!r}) AS BIGINT))::TIMESTAMPTZ"
        for per, to_us in UNITS)
    return f"CASE {cases} END"


def time_sql(field: str) -> str:
    """A time field as TIMESTAMPTZ: ISO 8601 text (naive read as UTC) or a number since 1970."""
    return (f"CASE WHEN \"{field}\" IS NULL THEN NULL WHEN TRY_CAST(\"{field}\" AS DOUBLE) IS NOT NULL "
            f"THEN {_epoch(field)} ELSE TRY_CAST(\"{field}\" AS TIMESTAMPTZ) END")


def time_problem(field: str, column: str, value: str) -> str:
    """The rule a time field breaks (null when absent or plausible); ``value`` is its :func:`time_sql` column."""
    offset = f"regexp_extract(\"{field}\", '[T ][0-9:.,]+ ?[+-]([0-9]{{2}}):?([0-9]{{2}})$', ['h', 'm'])"
    return (f"CASE WHEN \"{field}\" IS NULL THEN NULL "
            f"WHEN {value} IS NULL AND TRY_CAST(\"{field}\" AS DOUBLE) IS NOT NULL THEN '{column} is a number "
            f"that is no time from {EARLIEST[:4]} to {int(LATEST[:4]) - 1} in seconds, ms, µs or ns since 1970' "
            f"WHEN {value} IS NULL THEN '{column} is not a time (ISO 8601 text or a number since 1970)' "
            f"WHEN {value} < TIMESTAMPTZ '{EARLIEST}' OR {value} >= TIMESTAMPTZ '{LATEST}' "
            f"THEN '{column} is outside {EARLIEST[:4]}–{int(LATEST[:4]) - 1}' "
            f"WHEN TRY_CAST({offset}.h AS INT) > 14 OR TRY_CAST({offset}.m AS INT) > 59 "
            f"THEN '{column} has a UTC offset beyond ±14:00' END")


def first_problem(*rules: str) -> str:
    """The first non-null of several rule expressions, after the JSON checks."""
    return (f"CASE WHEN NOT _json_ok AND try(json({LINE})) IS NULL THEN 'invalid JSON' "
            f"WHEN NOT _json_ok THEN 'line is not a JSON object' ELSE coalesce({', '.join(rules)}) END")


def normalised(inp: str, out: str, cache_read: str, cache_write: str, reasoning: str, total: str, *,
               apart_when_unknown: bool = False) -> tuple[str, str, str]:
    """Input including cache reads and writes, output including reasoning, whichever way counted.

    SQL expressions over DOUBLE columns, giving ``(input, output, how)``. A source counts cache
    (reasoning) tokens *apart* from input (output) when input is smaller than the cache tokens,
    or when its total equals the sum of all parts; the parts are then added. Without a total,
    ``apart_when_unknown`` says how the source counts (OpenAI-style usage counts inside).
    ``how`` names what was added (null when nothing was).

    Examples
    --------
    >>> inp, out, how = normalised("20", "5", "80", "0", "2", "107")
    >>> connect().execute(f"SELECT {inp}, {out}, {how}").fetchone()
    (100, 7, 'cache+reasoning')
    """
    cache, think = f"(coalesce({cache_read}, 0) + coalesce({cache_write}, 0))", f"coalesce({reasoning}, 0)"
    summed = (f"coalesce({total} IS NOT NULL AND {cache} + {think} > 0 "
              f"AND {total} = {inp} + {out} + {cache} + {think}, false)")
    unknown = f"{total} IS NULL" if apart_when_unknown else "false"
    add_cache = (f"({cache} > 0 AND (coalesce({inp} < {cache}, false) OR {summed} OR {unknown} "
                 f"OR coalesce({total} = {inp} + {out} + {cache}, false)))")
    add_think = (f"({think} > 0 AND (coalesce({out} < {think}, false) OR {summed} OR {unknown} "
                 f"OR coalesce({total} = {inp} + {out} + {think}, false)))")
    how = (f"CASE WHEN {add_cache} AND {add_think} THEN 'cache+reasoning' WHEN {add_think} THEN 'reasoning' "
           f"WHEN {add_cache} THEN 'cache' END")
    return (f"{inp} + CASE WHEN {add_cache} THEN {cache} ELSE 0 END",
            f"{out} + CASE WHEN {add_think} THEN {think} ELSE 0 END", how)


SPAN_COLUMNS = ("trace_id", "span_id", "parent_id", "kind", "name", "start_time", "end_time", "status",
                "error_type", "provider", "model", *TOKEN_NAMES, "reported_cost_usd", "tool_name",
                "tool_arguments")
_MOVED = sorted((*TOKEN_NAMES, "reported_cost_usd"))  # as written into a wrapper's attributes


def finished(mapped: str, extra: Sequence[str] = ()) -> str:
    """The rows of a batch, from a loader's query of its span columns, with aiscale's flags added.

    ``mapped`` gives ``_row``, ``line``, ``_problem``, :data:`SPAN_COLUMNS`, ``attributes``
    (JSON text; :data:`RECORD_TEXT` for the record as exported, which :func:`mapped_batches`
    takes from the batch in Arrow instead of copying it through DuckDB), ``_how`` (what token
    normalisation added, else null) and the ``extra`` columns. ``attributes`` gains
    ``aiscale.usage_missing`` (an LLM span without any token count) and
    ``aiscale.tokens_normalised``; only rows with one of these are rewritten. ``line`` is kept
    for rows with a problem only (their excerpt). Row by row, in batch order.
    """
    no_usage = "kind = 'llm' AND " + " AND ".join(f"{c} IS NULL" for c in TOKEN_NAMES)
    patch = (f"json_object('aiscale.usage_missing', CASE WHEN {no_usage} THEN true END, "
             "'aiscale.tokens_normalised', _how)")
    return f"""SELECT {ROW}, _problem, CASE WHEN _problem IS NOT NULL THEN {LINE} END AS {LINE}, {", ".join(SPAN_COLUMNS)},
    CASE WHEN _problem IS NULL AND (({no_usage}) OR _how IS NOT NULL)
        THEN json_merge_patch(coalesce(attributes, rtrim({LINE}, '{WHITESPACE}')), {patch})::VARCHAR
        ELSE attributes END AS attributes
    {"".join(", " + c for c in extra)}
FROM ({mapped})"""


def demote_wrappers(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> pa.Table:
    """An LLM span that is the parent of another LLM span of its trace wraps that call.

    Frameworks traced together with the client they call (LangChain's ``ChatOpenAI`` over an
    instrumented OpenAI client) give both an LLM span with the same usage. The outer one
    becomes kind ``other``; its tokens and cost move to ``attributes``
    (``aiscale.wrapped_llm_usage``), so the call is counted once. Works within a batch, on
    the rows kept (:func:`finished`'s columns); found with Arrow's hash lookups, and only the
    wrappers are rewritten.
    """
    llm = pc.fill_null(pc.equal(rows.column("kind"), "llm"), False)
    children = rows.filter(pc.and_(llm, pc.is_valid(rows.column("parent_id"))))
    maybe = pc.and_(llm, pc.is_in(rows.column("span_id"), value_set=children.column("parent_id").combine_chunks()))
    if not pc.any(maybe).as_py():
        return rows
    con.register("maybe", rows.select(["trace_id", "span_id", "attributes", *_MOVED]).append_column(
        "_i", pa.array(np.arange(rows.num_rows))).filter(maybe))
    con.register("children", children.select(["trace_id", "parent_id"]))
    wrapped = "json_merge_patch('{}', json_object(" + ", ".join(f"'{c}', {c}" for c in _MOVED) + "))"
    try:
        found = con.sql(f"""SELECT _i, json_merge_patch(attributes, json_object('aiscale.wrapped_llm_usage', {wrapped}))
            ::VARCHAR AS attributes FROM maybe SEMI JOIN children
            ON maybe.trace_id = children.trace_id AND maybe.span_id = children.parent_id ORDER BY _i""").to_arrow_table()
    finally:
        con.unregister("maybe")
        con.unregister("children")
    if not found.num_rows:
        return rows
    wrapper = pc.is_in(pa.array(np.arange(rows.num_rows)), value_set=found.column("_i").combine_chunks())
    columns = {"kind": pc.if_else(wrapper, "other", rows.column("kind")),
               "attributes": pc.replace_with_mask(rows.column("attributes").combine_chunks(), wrapper,
                                                  found.column("attributes").combine_chunks()),
               **{c: pc.if_else(wrapper, pa.scalar(None, rows.schema.field(c).type), rows.column(c)) for c in _MOVED}}
    for name, values in columns.items():
        rows = rows.set_column(rows.schema.get_field_index(name), name, values)
    return rows


def run(con: duckdb.DuckDBPyConnection, batch: pa.Table, sql: str) -> pa.Table:
    """Run a loader's query over one batch (an Arrow table: UTC timestamps)."""
    con.register("batch", batch)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.unregister("batch")


def mapped_batches(path: Path, query: str | Callable[[pa.Table], str],
                   ) -> Iterator[tuple[pa.Table | None, list[Quarantined]]]:
    """``(rows, quarantined)`` per batch of a file: the loader's query run, rows with a problem split off.

    ``query`` is the SQL, or a function of the batch giving it; ``rows`` is None for a batch
    without records. Both cores work: the next batch is read, and mapped in a second thread
    (DuckDB and Arrow run without the GIL), while the caller validates and writes this one.
    At most two batches are held ahead, so memory stays bounded. (Handing DuckDB a batch in
    slices, for its own threads, cost 15-35% more CPU and no wall time beside the second
    thread on a busy machine: measured, not kept.)
    """
    con, views = connect(), {}

    def mapped(batch: pa.Table, bad: list[Quarantined]) -> tuple[pa.Table | None, list[Quarantined]]:
        if not batch.num_rows:
            return None, bad
        rows, more = split_problems(_run_view(con, views, batch, query if isinstance(query, str)
                                              else query(batch)), str(path))
        rows = record_text(rows, batch)
        return (demote_wrappers(con, rows) if "kind" in rows.column_names else rows), bad + more

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiscale-map") as pool:
        ahead: Future | None = None
        for batch, bad in read_batches(path):
            following = pool.submit(mapped, batch, bad)
            if ahead is not None:
                yield ahead.result()
            ahead = following
        if ahead is not None:
            yield ahead.result()


def _run_view(con: duckdb.DuckDBPyConnection, views: dict[str, str], batch: pa.Table, sql: str) -> pa.Table:
    """:func:`run`, with the query made a view once per file (its long text is then read once)."""
    con.register("batch", batch)
    try:
        if sql not in views:
            views[sql] = f"_mapped_{len(views)}"
            con.execute(f"CREATE TEMP VIEW {views[sql]} AS {sql}")
        return con.sql(f"SELECT * FROM {views[sql]}").to_arrow_table()
    finally:
        con.unregister("batch")


def record_text(rows: pa.Table, batch: pa.Table) -> pa.Table:
    """``attributes`` left null by the query (:data:`RECORD_TEXT`) become the record's text.

    The text is the batch's line with JSON's whitespace trimmed off both ends, found by
    ``_row`` (both in file order); Arrow copies it once, with no parse.
    """
    if "attributes" not in rows.column_names or not rows.num_rows:
        return rows
    attributes = rows.column("attributes")
    if not attributes.null_count:
        return rows
    lines = batch.column(LINE)
    if rows.num_rows != batch.num_rows:  # rows kept are a subset of the batch's, in the same order
        lines = lines.take(np.searchsorted(batch.column(ROW).to_numpy(), rows.column(ROW).to_numpy()))
    text = pc.utf8_trim(lines, WHITESPACE)
    filled = text if attributes.null_count == rows.num_rows else pc.if_else(pc.is_null(attributes), text, attributes)
    return rows.set_column(rows.schema.get_field_index("attributes"), "attributes", filled)


def split_problems(table: pa.Table, path: str) -> tuple[pa.Table, list[Quarantined]]:
    """Rows with a ``_problem`` become Quarantined (invalid JSON gets the parser's message).

    The rows kept lose ``_problem`` and ``line``, and come in the batch's order.
    """
    bad = pc.is_valid(table.column("_problem"))
    good = table.drop_columns([c for c in ("_problem", LINE) if c in table.column_names])
    if len(good) > 1 and not np.all(np.diff(good.column(ROW).to_numpy()) > 0):  # a join may shuffle rows
        order = pc.sort_indices(good, [(ROW, "ascending")])
        good, table, bad = good.take(order), table.take(order), pc.take(bad, order)
    if not pc.any(bad).as_py():
        return good, []
    quarantined = []
    problems = table.filter(bad).select([ROW, "_problem", LINE]).to_pylist()
    for row in problems:
        reason, line = row["_problem"], row[LINE]
        if reason == "invalid JSON":
            reason = _parser_message(line)
        quarantined.append(Quarantined(path, int(row[ROW]), str(reason), excerpt(str(line).strip())))
    return good.filter(pc.invert(bad)), quarantined


def _parser_message(line: str) -> str:
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        pass
    return "invalid JSON"
