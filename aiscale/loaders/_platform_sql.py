"""DuckDB SQL shared by the platform loaders: fields out of JSON records, times, numbers, rules.

Not a loader (the leading underscore keeps it out of the registry). A batch of records (an
Arrow table of JSON texts, :mod:`aiscale.loaders._records`) is parsed once by one
``json_extract_string`` call with every path a loader reads; the loader's own SELECT then works
on those values. Each value that cannot be what it claims gives its row a ``_problem`` (the
first rule broken), and the row is quarantined with it:

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
>>> frame = run(connect(), batch, sql)
>>> str(frame["start"][0]), frame["_problem"][1]
('2025-06-15 15:06:40+00:00', 'start_time is not a time (ISO 8601 text or a number since 1970)')
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from aiscale.loaders._records import LINE, ROW, camel, read_batches
from aiscale.loaders.base import Quarantined, excerpt

EARLIEST, LATEST = "1990-01-01", "2100-01-01"
_FIRST_S, _LAST_S = 631_152_000, 4_102_444_800  # 1990-01-01 and 2100-01-01 in seconds since 1970
UNITS = ((1, 1e6), (1e3, 1e3), (1e6, 1.0), (1e9, 1e-3))  # (per second, to microseconds)


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


def extract(fields: dict[str, Iterable[tuple[str, ...]]]) -> str:
    """``WITH`` clause whose table ``y`` has each field (first non-null of its key paths) as text.

    Columns of ``y``: ``_row``, ``line``, ``_json_ok`` (the line parsed as an object) and one
    per field. The caller appends its ``SELECT ... FROM y``.
    """
    paths: list[str] = []
    columns = []
    for name, alternatives in fields.items():
        found = []
        for keys in alternatives:
            paths.append(path(*keys))
            found.append(f"_v[{len(paths)}]")
        columns.append(f"coalesce({', '.join(found)}) AS \"{name}\"" if len(found) > 1
                       else f"{found[0]} AS \"{name}\"")
    listing = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    return (f"WITH x AS (SELECT {ROW}, {LINE}, try(json_extract_string({LINE}, {listing})) AS _v "
            f"FROM batch WHERE ltrim({LINE}, ' \t\r\n') <> ''), "
            f"y AS (SELECT {ROW}, {LINE}, _v IS NOT NULL AND ltrim({LINE}, ' \t\r\n')[1] = '{{' AS _json_ok, "
            f"{', '.join(columns)} FROM x) ")


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


def run(con: duckdb.DuckDBPyConnection, batch: pa.Table, sql: str) -> pd.DataFrame:
    """Run a loader's query over one batch; a DataFrame (Arrow-backed text, UTC timestamps)."""
    con.register("batch", batch)
    try:
        table = con.sql(sql).to_arrow_table()
    finally:
        con.unregister("batch")
    return table.to_pandas()


def mapped_batches(path: Path, query: str | Callable[[pa.Table], str],
                   ) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    """``(records, quarantined)`` per batch of a file: the loader's query run, rows with a problem split off.

    ``query`` is the SQL, or a function of the batch giving it.
    """
    con = connect()
    for batch, bad in read_batches(path):
        if not batch.num_rows:
            yield pd.DataFrame(), bad
            continue
        records, more = split_problems(run(con, batch, query if isinstance(query, str) else query(batch)),
                                       str(path))
        yield records, bad + more


def split_problems(frame: pd.DataFrame, path: str) -> tuple[pd.DataFrame, list[Quarantined]]:
    """Rows with a ``_problem`` become Quarantined (invalid JSON gets the parser's message)."""
    bad = frame["_problem"].notna()
    if not bad.any():
        return frame.drop(columns="_problem"), []
    quarantined = []
    for row, reason, line in zip(frame.loc[bad, ROW], frame.loc[bad, "_problem"], frame.loc[bad, LINE],
                                 strict=True):
        if reason == "invalid JSON":
            reason = _parser_message(line)
        quarantined.append(Quarantined(path, int(row), str(reason), excerpt(str(line).strip())))
    return frame.loc[~bad].drop(columns="_problem"), quarantined


def _parser_message(line: str) -> str:
    try:
        json.loads(line)
    except json.JSONDecodeError as exc:
        return f"invalid JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        pass
    return "invalid JSON"


def with_flags(attributes: pd.Series, flags: dict[str, pd.Series]) -> pd.Series:
    """Add aiscale's flags (``aiscale.usage_missing``, ...) to the rows' attributes JSON.

    Only flagged rows are rewritten, by DuckDB's ``json_merge_patch``.
    """
    frame = pd.DataFrame({name: series for name, series in flags.items()})
    flagged = frame.notna().any(axis=1)
    if not flagged.any():
        return attributes
    patches = [json.dumps({k: v for k, v in row.items() if v is not None and v == v}, default=str)
               for row in frame.loc[flagged].astype(object).to_dict("records")]
    table = pa.table({"a": pa.array(attributes[flagged].astype(object).tolist(), pa.string()),
                      "p": pa.array(patches, pa.string())})
    con = connect()
    con.register("t", table)
    merged = con.sql("SELECT json_merge_patch(coalesce(a, '{}'), p)::VARCHAR AS a FROM t").to_arrow_table()
    out = attributes.astype(object).copy()
    out[flagged] = merged.column("a").to_pylist()
    return out
