"""DuckDB SQL shared by the platform loaders: fields out of JSON records, times, numbers, rules.

Not a loader (the leading underscore keeps it out of the registry). A batch of records (an
Arrow table of JSON texts, :mod:`aiscale.loaders._records`) is parsed by one
``json_extract_string`` call with every path a loader reads; the loader's own SELECT maps
those values to span columns, and :func:`finished` adds aiscale's flags to ``attributes`` in
the same query (a record kept as exported is not copied through DuckDB:
:func:`~aiscale.loaders._platform_map.record_text` takes it from the batch in Arrow). Then
:func:`demote_wrappers` counts an LLM span that wraps another LLM span once (Arrow hash
lookups; only the wrappers are rewritten). Nothing is done per row in Python;
:mod:`aiscale.loaders._platform_map` runs the queries over a file.
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

from collections.abc import Iterable, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.loaders._records import LINE, ROW, camel

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

    Columns of ``y``: ``_row``, ``line``, ``_json_ok`` (the line parsed as an object) and one per
    field. ``line`` is the batch's text (JSON's whitespace may lead it) where ``_json_ok``, else
    the record with the characters ``lstrip`` taken off its start (for the parser's message).
    Blank lines are dropped. The caller appends its ``SELECT ... FROM y``; values it needs as
    JSON it extracts itself, only for the rows that need them (each extraction parses the line
    again). No line is copied to be trimmed: JSON's parser skips the whitespace itself.
    """
    text, paths = _columns(fields, "_v")
    space = "[" + WHITESPACE.encode("unicode_escape").decode() + "]"
    return (f"WITH x AS (SELECT {ROW}, {LINE}, try(json_extract_string({LINE}, {_listing(paths)})) AS _v "
            f"FROM batch WHERE NOT regexp_full_match({LINE}, '{space}*')), "
            f"xo AS (SELECT *, _v IS NOT NULL AND regexp_matches({LINE}, '^{space}*[{{]') AS _json_ok FROM x), "
            f"y AS (SELECT {ROW}, CASE WHEN _json_ok THEN {LINE} ELSE ltrim({LINE}, '{lstrip}') END AS {LINE}, "
            f"_json_ok, {', '.join(text)} FROM xo) ")


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
            f"WHEN {_offset_may_break(field)} AND (TRY_CAST({offset}.h AS INT) > 14 OR TRY_CAST({offset}.m AS INT) > 59) "
            f"THEN '{column} has a UTC offset beyond ±14:00' END")


def _offset_may_break(field: str) -> str:
    """Whether a time's text can have an offset beyond ±14:00: it ends ``±HH:MM`` or ``±HHMM`` with
    HH over 14 or MM over 59. Only such texts are matched with the offset's regular expression,
    which cost a quarter of a LangSmith query when run on every time."""
    text = f'"{field}"'
    minutes = f"TRY_CAST(right({text}, 2) AS INT) > 59"
    return (f"((substr({text}, -6, 1) IN ('+', '-') AND substr({text}, -3, 1) = ':' "
            f"AND (TRY_CAST(substr({text}, -5, 2) AS INT) > 14 OR {minutes})) "
            f"OR (substr({text}, -5, 1) IN ('+', '-') AND (TRY_CAST(substr({text}, -4, 2) AS INT) > 14 OR {minutes})))")


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
    (JSON text; :data:`RECORD_TEXT` for the record as exported, which
    :func:`~aiscale.loaders._platform_map.mapped_batches`
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
    children = rows.select(["trace_id", "parent_id"]).filter(pc.and_(llm, pc.is_valid(rows.column("parent_id"))))
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
