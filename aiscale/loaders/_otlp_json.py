"""The ``attributes`` JSON of OTLP spans, assembled in Arrow (used by ``otlp``).

The mapping query (:func:`~aiscale.loaders._otlp_sql.spans_query`) says which attribute
positions it read into columns (its ``used:<i>`` columns); every other attribute is kept, as
``"key":value`` in attribute order, followed by the ``otel.*`` members (span kind, status
message, resource, scope, scope attributes, events, links, trace state) and
``aiscale.tokens_normalised``. Only the kept attributes are written (by the SQL of
:func:`~aiscale.loaders._otlp_sql.fragments_query`, ``to_json`` and ``av_json``); span kinds,
status messages and trace states are written once per distinct value, and each span's members
are joined in one pass, with no Python per span. The text is the same, byte for byte, as the
mapping query wrote before: keys in order, its escaping and number formats.

Examples
--------
>>> import duckdb, pyarrow as pa
>>> from aiscale.loaders._otlp_sql import MACROS
>>> con = duckdb.connect(); _ = con.execute(MACROS)
>>> value = pa.struct([(f, pa.string()) for f in VALUE_FIELDS])
>>> attrs = pa.array([[{"key": "k", "value": {"stringValue": 'say "hi"'}},
...                    {"key": "n", "value": {"intValue": "7"}},
...                    {"key": "d", "value": {"doubleValue": "1"}}], None],
...                  pa.list_(pa.struct([("key", pa.string()), ("value", value)])))
>>> kept_attributes(con, attrs, [pa.array([2, None])]).to_pylist()
['"k":"say \\\\"hi\\\\"","d":1.0,', None]
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.loaders._otlp_sql import SPAN_KINDS, fragments_query, int_bad_query

VALUE_FIELDS = ("stringValue", "intValue", "doubleValue", "boolValue", "bytesValue",
                "arrayValue", "kvlistValue")
_CANONICAL_INT = r"^(0|-?[1-9][0-9]{0,17})$"  # 18 digits at most: always within int64
_KIND = ("CASE v " + " ".join(f"WHEN '{k}' THEN '{n}'" for k, n in SPAN_KINDS.items())
         + " ELSE v END")


def attributes_json(con: duckdb.DuckDBPyConnection, flat: pa.Table, used: list[pa.Array],
                    normalised: pa.Array) -> pa.Array:
    """The ``attributes`` JSON object of each span of ``flat``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection with :data:`~aiscale.loaders._otlp_sql.MACROS`.
    flat : pyarrow.Table
        The flat spans (``sp`` with its ``attributes``, ``res_json``, ``scope_json``,
        ``scope_attrs_json``), one row per span.
    used : list of pyarrow.Int64Array
        Per span, the 1-based positions of attributes read into columns (not kept); null
        where a column read none.
    normalised : pyarrow.BooleanArray
        Where the token counts were normalised (``aiscale.tokens_normalised``).

    Returns
    -------
    pyarrow.StringArray
        One JSON object per span.
    """
    span = _one_chunk(flat.column("sp"))
    pieces = [kept_attributes(con, pc.struct_field(span, "attributes"), used),
              _per_value(con, pc.struct_field(span, "kind"),
                         f"""'"otel.span.kind":' || to_json({_KIND}) || ','"""),
              _per_value(con, pc.struct_field(pc.struct_field(span, "status"), "message"),
                         """'"otel.status.message":' || to_json(nullif(v, '')) || ','"""),
              _around('"otel.resource":', flat.column("res_json"), ","),
              _around('"otel.scope":', flat.column("scope_json"), "")]
    if pieces[-1].null_count:  # the flatten writes every scope; its member closes the commas
        raise ValueError("an OTLP span without its scope JSON (scope_json is null)")
    scope_attrs = flat.column("scope_attrs_json")
    pieces += [_around(',"otel.scope.attributes":', pc.if_else(
                   pc.equal(scope_attrs, "{}"), pa.scalar(None, pa.string()), scope_attrs), ""),
               _around(',"otel.events":', pc.struct_field(span, "events").cast(pa.string()), ""),
               _around(',"otel.links":', pc.struct_field(span, "links").cast(pa.string()), ""),
               _per_value(con, pc.struct_field(span, "traceState"),
                          """',"otel.trace_state":' || to_json(nullif(v, ''))"""),
               pc.if_else(pc.fill_null(normalised, False),
                          pa.scalar(',"aiscale.tokens_normalised":true'), pa.scalar(None, pa.string()))]
    return pc.binary_join_element_wise("{", *pieces, "}", "", null_handling="replace",
                                       null_replacement="")


def int_bad(con: duckdb.DuckDBPyConnection, attrs: pa.ListArray) -> pa.Array:
    """Per span of ``attrs``, its first attribute whose ``intValue`` is not an int64 (beyond
    its range, or no whole number), as ``"key" has an intValue ...``; null when none is.

    Only the values that are not canonical integers are read again, in DuckDB.
    """
    offsets = attrs.offsets.to_numpy()
    flat = attrs.values.slice(offsets[0], offsets[-1] - offsets[0])
    offsets = offsets - offsets[0]
    value = pc.struct_field(flat, "value")
    integer = pc.struct_field(value, "intValue")
    odd = pc.invert(pc.fill_null(pc.match_substring_regex(integer, _CANONICAL_INT), True))
    at = np.flatnonzero(np.asarray(odd, dtype=bool))
    index = np.full(len(attrs), -1, dtype=np.int64)
    if not len(at):
        return pa.nulls(len(attrs), pa.string())
    taken = pa.array(at, pa.int64())
    bad = in_order(con, int_bad_query("otlp_ints"), otlp_ints=pa.table(
        {"key": pc.take(pc.struct_field(flat, "key"), taken), "value": pc.take(value, taken)}))
    bad = bad.column("int_bad").combine_chunks()
    found = np.flatnonzero(np.asarray(pc.is_valid(bad), dtype=bool))
    spans, first = np.unique(np.searchsorted(offsets, at[found], side="right") - 1, return_index=True)
    index[spans] = found[first]
    return pc.take(bad, pa.array(index, mask=index < 0))


def kept_attributes(con: duckdb.DuckDBPyConnection, attrs: pa.ListArray, used: list[pa.Array]) -> pa.Array:
    """Per span, its kept attributes as ``"key":value,...,`` (null when none is kept)."""
    offsets = attrs.offsets.to_numpy()
    flat = attrs.values.slice(offsets[0], offsets[-1] - offsets[0])
    offsets = offsets - offsets[0]
    keep = np.ones(len(flat), dtype=bool)
    for positions in used:
        positions = _one_chunk(positions)
        rows = np.flatnonzero(np.asarray(pc.is_valid(positions), dtype=bool))
        keep[offsets[rows] + positions.to_numpy(zero_copy_only=False)[rows].astype(np.int64) - 1] = False
    at = np.flatnonzero(keep)
    kept = flat.take(pa.array(at, pa.int64()))
    frags = in_order(con, fragments_query("otlp_attrs"), otlp_attrs=pa.table(
        {"key": pc.struct_field(kept, "key"), "value": pc.struct_field(kept, "value")})).column(0).combine_chunks()
    valid = np.asarray(pc.is_valid(frags), dtype=bool)  # an attribute without a key writes nothing
    written = np.zeros(len(flat) + 1, dtype=np.int64)
    written[at + 1] = valid
    ends = np.cumsum(written)[offsets]  # written attributes before each span's end
    empty = ends[1:] == ends[:-1]
    lists = pa.ListArray.from_arrays(pa.array(ends, pa.int32()), frags.filter(pa.array(valid)),
                                     mask=pa.array(empty))
    return _around("", pc.binary_join(lists, ","), ",")


def _per_value(con: duckdb.DuckDBPyConnection, values: pa.Array, expression: str) -> pa.Array:
    """``expression`` of ``v`` (SQL) for each of ``values``, evaluated once per distinct value
    (null included)."""
    encoded = pc.dictionary_encode(values.cast(pa.string()))
    distinct = pa.concat_arrays([encoded.dictionary, pa.nulls(1, pa.string())])
    out = in_order(con, f"SELECT {expression} AS out FROM otlp_values", otlp_values=pa.table({"v": distinct}))
    indices = pc.fill_null(encoded.indices, len(distinct) - 1)
    return pc.take(out.column("out").combine_chunks(), indices)


def in_order(con: duckdb.DuckDBPyConnection, query: str, **tables: pa.Table) -> pa.Table:
    """The result of ``query`` over ``tables`` (registered by name), rows in their order."""
    for name, table in tables.items():
        con.register(name, table)
    try:
        con.execute("SET preserve_insertion_order = true")
        return con.sql(query).to_arrow_table()
    finally:
        con.execute("SET preserve_insertion_order = false")
        for name in tables:
            con.unregister(name)


def _around(before: str, values: pa.Array, after: str) -> pa.Array:
    """``before + value + after`` for each of ``values``; null where the value is null."""
    return pc.binary_join_element_wise(before, values, after, "")


def _one_chunk(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column
