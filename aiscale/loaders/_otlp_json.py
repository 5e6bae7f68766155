"""The ``attributes`` JSON of OTLP spans, assembled in Arrow (used by ``otlp``).

The mapping (:func:`~aiscale.loaders._otlp_sql.spans_query` and the rules of
:data:`~aiscale.loaders._otlp_sql.READS`, by :func:`~aiscale.loaders._otlp_attrs.read_positions`)
says which attribute positions it read into columns; every other attribute is kept, as
``"key":value`` in attribute order, followed by the ``otel.*`` members (span kind, status
message, resource, scope, scope attributes, events, links, trace state) and
``aiscale.tokens_normalised``. Only the kept attributes are written (by the SQL of
:func:`~aiscale.loaders._otlp_sql.fragments_query`, ``to_json`` and ``av_json``); span kinds,
status messages and trace states are written once per distinct value, and each span's members
are joined in one pass, with no Python per span. The text is the same, byte for byte, as the
mapping query wrote before: keys in order, its escaping and number formats.

Examples
--------
>>> import duckdb, numpy as np, pyarrow as pa
>>> from aiscale.loaders._otlp_sql import MACROS
>>> con = duckdb.connect(); _ = con.execute(MACROS)
>>> value = pa.struct([(f, pa.string()) for f in VALUE_FIELDS])
>>> attrs = pa.array([[{"key": "k", "value": {"stringValue": 'say "hi"'}},
...                    {"key": "n", "value": {"intValue": "7"}},
...                    {"key": "d", "value": {"doubleValue": "1"}}], None],
...                  pa.list_(pa.struct([("key", pa.string()), ("value", value)])))
>>> kept_attributes(con, attrs, [np.array([2, 0])]).to_pylist()
['"k":"say \\\\"hi\\\\"","d":1.0,', None]
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.loaders._otlp_sql import SPAN_KINDS, in_order, int_bad_query

VALUE_FIELDS = ("stringValue", "intValue", "doubleValue", "boolValue", "bytesValue",
                "arrayValue", "kvlistValue")
_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)} | {
    8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", ord('"'): '\\"', ord("\\"): "\\\\"}
_MAX_DIGITS = 18  # a canonical integer of at most 18 digits is always within int64
_KIND = ("CASE v " + " ".join(f"WHEN '{k}' THEN '{n}'" for k, n in SPAN_KINDS.items())
         + " ELSE v END")


def attributes_json(con: duckdb.DuckDBPyConnection, flat: pa.Table, used: list[np.ndarray],
                    normalised: pa.Array) -> pa.Array:
    """The ``attributes`` JSON object of each span of ``flat``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A connection with :data:`~aiscale.loaders._otlp_sql.MACROS`.
    flat : pyarrow.Table
        The flat spans (``sp`` with its ``attributes``, ``res_json``, ``scope_json``,
        ``scope_attrs_json``), one row per span.
    used : list of numpy.ndarray
        Per span, the 1-based positions of attributes read into columns (not kept); 0 where
        a column read none.
    normalised : pyarrow.BooleanArray
        Where the token counts were normalised (``aiscale.tokens_normalised``).

    Returns
    -------
    pyarrow.StringArray
        One JSON object per span.
    """
    span = one_chunk(flat.column("sp"))
    pieces = [kept_attributes(con, pc.struct_field(span, "attributes"), used),
              _per_value(con, pc.struct_field(span, "kind"),
                         f"""'"otel.span.kind":' || to_json({_KIND}) || ','"""),
              _per_value(con, pc.struct_field(pc.struct_field(span, "status"), "message"),
                         """'"otel.status.message":' || to_json(nullif(v, '')) || ','"""),
              *_member('"otel.resource":', flat.column("res_json"), ","),
              *_member('"otel.scope":', flat.column("scope_json"), "")]
    if flat.column("scope_json").null_count:  # the flatten writes every scope: its member
        raise ValueError("an OTLP span without its scope JSON (scope_json is null)")  # ends the commas
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
    at = np.flatnonzero(np.asarray(pc.is_valid(integer), dtype=bool) & ~canonical_ints(integer))
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


def kept_attributes(con: duckdb.DuckDBPyConnection, attrs: pa.ListArray, used: list[np.ndarray]) -> pa.Array:
    """Per span, its kept attributes as ``"key":value,...,`` (null when none is kept).

    Each span's text is one list of pieces joined: before each value the glue (the closing
    quote of the value before, the comma, the key's JSON, the colon, an opening quote), one of
    a few per distinct key; after the last, a closing quote and the comma.
    """
    offsets = attrs.offsets.to_numpy()
    flat = attrs.values.slice(offsets[0], offsets[-1] - offsets[0])
    offsets = offsets - offsets[0]
    keep = np.asarray(pc.is_valid(pc.struct_field(flat, "key")), dtype=bool)  # no key: not written
    for positions in used:
        rows = np.flatnonzero(positions)
        keep[offsets[rows] + positions[rows].astype(np.int64) - 1] = False
    rows = np.flatnonzero(keep)
    text, quoted = _values_json(con, pc.struct_field(flat, "value"), rows)
    written = np.asarray(pc.is_valid(text), dtype=bool)  # av_json's null (an empty array): none
    keep[rows[~written]] = False
    text, quoted, rows = text.filter(pa.array(written)), quoted[written], rows[written]
    keys = pc.dictionary_encode(pc.take(pc.struct_field(flat, "key"), pa.array(rows, pa.int64())))
    codes = keys.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    before = np.concatenate([[0], np.cumsum(keep)])[offsets]
    count = np.diff(before)  # kept attributes per span
    first = np.zeros(len(codes), dtype=bool)
    first[before[:-1][count > 0]] = True
    last = np.zeros(len(codes), dtype=bool)
    last[before[1:][count > 0] - 1] = True
    state = np.where(first, 2, np.concatenate([[False], quoted[:-1]]))  # first, or after a quote
    glue = _glue(keys.dictionary.to_pylist())
    pieces = pa.concat_arrays([glue, text])
    at = 2 * np.arange(len(codes)) + np.concatenate([[0], np.cumsum(last)[:-1]])
    order = np.empty(2 * len(codes) + np.count_nonzero(last), dtype=np.int64)
    order[at] = (state * len(keys.dictionary) + codes) * 2 + quoted
    order[at + 1] = len(glue) + np.arange(len(codes))
    order[at[last] + 2] = len(glue) - 2 + quoted[last]
    ends = np.concatenate([[0], np.cumsum(np.where(count > 0, 2 * count + 1, 0))])
    lists = pa.ListArray.from_arrays(pa.array(ends, pa.int32()), pc.take(pieces, pa.array(order)),
                                     mask=pa.array(count == 0))
    return pc.binary_join(lists, "")


def _glue(keys: list[str]) -> pa.Array:
    """The text before a value, at ``(state * len(keys) + key) * 2 + quoted``: state 0 after
    an unquoted value, 1 after a quoted one, 2 first in its span; then the two endings (after
    an unquoted and after a quoted last value)."""
    glue = [("" if state == 2 else '"' * state + ",") + to_json(key) + ":" + '"' * quoted
            for state in range(3) for key in keys for quoted in range(2)]
    return pa.array([*glue, ",", '",'], pa.string())


def _values_json(con: duckdb.DuckDBPyConnection, value: pa.StructArray,
                 rows: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """The ``AnyValue`` at each of ``rows`` of ``value`` as ``av_json`` writes it, and where it
    is a string written as it is between quotes (the quotes left out of the text).

    A string without a character ``to_json`` escapes, a canonical ``intValue`` (an int64
    without sign or leading zeros) and ``true``/``false`` are their own text; the rest go
    through ``av_scalar`` (``av_json`` for arrays and kvlists) in DuckDB.
    """
    def valid(array: pa.Array) -> np.ndarray:
        return np.asarray(pc.is_valid(array), dtype=bool)[rows]

    field = {name: pc.struct_field(value, name) for name in VALUE_FIELDS}
    taken = pa.array(rows, pa.int64())
    string, integer, boolean = (pc.take(field[name], taken)
                                for name in ("stringValue", "intValue", "boolValue"))
    present = valid(value)
    nested = present & (valid(field["arrayValue"]) | valid(field["kvlistValue"]))
    scalar = present & ~nested
    as_string = scalar & np.asarray(pc.is_valid(string), dtype=bool) & ~_needs_escape(string)
    scalar &= ~np.asarray(pc.is_valid(string), dtype=bool)
    as_int = scalar & canonical_ints(integer)
    scalar &= ~np.asarray(pc.is_valid(integer), dtype=bool) & ~valid(field["doubleValue"])
    as_bool = scalar & np.asarray(pc.fill_null(pc.is_in(boolean, pa.array(["true", "false"])), False))
    slow = ~(as_string | as_int | as_bool)
    text = pc.coalesce(string, integer, boolean)
    for these, macro in ((slow & ~nested, "av_scalar"), (nested, "av_json")):  # av_json: from_json
        if these.any():
            written = in_order(con, f"SELECT {macro}(value) AS j FROM otlp_values", otlp_values=pa.table(
                {"value": value.take(pa.array(rows[these], pa.int64()))}))
            text = pc.replace_with_mask(text, pa.array(these),
                                        written.column("j").combine_chunks().cast(pa.string()))
    return text, as_string


def to_json(text: str) -> str:
    r"""``text`` as DuckDB's ``to_json`` writes a string: ``"``, ``\`` and the control
    characters escaped (``\n``, ``\u001F``), nothing else.

    >>> print(to_json('a"b\\c\x1f\n é'))
    "a\"b\\c\u001F\n é"
    """
    return '"' + text.translate(_ESCAPES) + '"'


def canonical_ints(strings: pa.Array) -> np.ndarray:
    """Where a string (null: no) is a canonical integer of at most 18 digits: ``0``, or an
    optional ``-`` and digits without a leading zero (the regex ``^(0|-?[1-9][0-9]{0,17})$``),
    read from the bytes in NumPy.

    >>> canonical_ints(pa.array(["0", "-12", "007", "-0", "1e3", "", None, "9" * 19])).tolist()
    [True, True, False, False, False, False, False, False]
    """
    strings = strings.cast(pa.string())
    n = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset:strings.offset + n + 1]
    sizes = np.diff(offsets)
    out = np.asarray(pc.is_valid(strings), dtype=bool) & (sizes > 0) & (sizes <= _MAX_DIGITS + 1)
    if n == 0 or offsets[-1] == offsets[0]:
        return out
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    starts = (offsets[:-1] - offsets[0])[out]
    others = np.zeros(len(data) + 1, dtype=np.int32)  # bytes other than digits before each one
    np.cumsum((data < 48) | (data > 57), out=others[1:])
    minus = data[starts] == ord("-")
    first = data[np.minimum(starts + minus, len(data) - 1)]  # the first digit ("-" alone: no digit)
    digits = sizes[out] - minus
    out[out] = ((others[starts + sizes[out]] - others[starts] == minus) & (digits >= 1)
                & (digits <= _MAX_DIGITS) & ((first != ord("0")) | ((digits == 1) & ~minus)))
    return out


def _needs_escape(strings: pa.Array) -> np.ndarray:
    """Where a string (null: no) holds a character ``to_json`` escapes."""
    strings = strings.cast(pa.string())
    n = len(strings)
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset:strings.offset + n + 1]
    out = np.zeros(n, dtype=bool)
    if n == 0 or offsets[-1] == offsets[0]:
        return out
    data = np.frombuffer(strings.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    escaped = np.flatnonzero((data < 0x20) | (data == ord('"')) | (data == ord("\\")))  # _ESCAPES' bytes
    out[np.searchsorted(offsets - offsets[0], escaped, side="right") - 1] = True
    return out


def _per_value(con: duckdb.DuckDBPyConnection, values: pa.Array, expression: str) -> pa.Array | pa.Scalar:
    """``expression`` of ``v`` (SQL) for each of ``values``, evaluated once per distinct value
    (null included); one scalar when every value is null."""
    encoded = pc.dictionary_encode(values.cast(pa.string()))
    distinct = pa.concat_arrays([encoded.dictionary, pa.nulls(1, pa.string())])
    out = in_order(con, f"SELECT {expression} AS out FROM otlp_values", otlp_values=pa.table({"v": distinct}))
    written = out.column("out").combine_chunks()
    if len(distinct) == 1:  # every value null: one piece for all
        return written[0]
    return pc.take(written, pc.fill_null(encoded.indices, len(distinct) - 1))


def _member(before: str, values: pa.ChunkedArray, after: str) -> list:
    """The pieces writing ``before + value + after`` where a value is (nothing where it is
    null); without a copy when every value is there."""
    if values.null_count == 0:
        return [pa.scalar(before), values, pa.scalar(after)]
    return [_around(before, values, after)]


def _around(before: str, values: pa.Array, after: str) -> pa.Array:
    """``before + value + after`` for each of ``values``; null where the value is null."""
    return pc.binary_join_element_wise(before, values, after, "")


def one_chunk(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The column as one array; a chunked column of one chunk is not copied (``combine_chunks`` would)."""
    if isinstance(column, pa.ChunkedArray):
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return column
