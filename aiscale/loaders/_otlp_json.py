"""The ``attributes`` JSON of OTLP spans, assembled in Arrow (used by ``otlp``).

The mapping (:func:`~aiscale.loaders._otlp_sql.spans_query` and the rules of
:data:`~aiscale.loaders._otlp_sql.READS`, by :func:`~aiscale.loaders._otlp_attrs.read_positions`)
says which attribute positions it read into columns; every other attribute is kept, as
``"key":value`` in attribute order, followed by the ``otel.*`` members (span kind, status
message, resource, scope, scope attributes, events, links, trace state) and
``aiscale.tokens_normalised``. Only the kept attributes are written: strings that need no
escape, canonical integers and booleans are their own text (pieces of the values' own fields,
not copied), the rest by ``av_scalar``/``av_json`` in DuckDB; span kinds, status messages and
trace states are written once per distinct value in Arrow (DuckDB's ``to_json`` only for the
values with a character it escapes). Every piece of every span is then taken at once
(:class:`~aiscale.loaders._otlp_pieces.Pieces`), the taken text being the spans' text back to
back: no join copies it again (a list join, then an element-wise join of the members, and a
query per member cost ~20 % more), with no Python per span. The text is the same, byte for
byte, as the mapping query wrote before: keys in order, its escaping and number formats.

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

from aiscale.loaders._otlp_members import around_member, needs_escape, text_member
from aiscale.loaders._otlp_pieces import Pieces, one_chunk
from aiscale.loaders._otlp_query import in_order
from aiscale.loaders._otlp_sql import int_bad_query

VALUE_FIELDS = ("stringValue", "intValue", "doubleValue", "boolValue", "bytesValue",
                "arrayValue", "kvlistValue")
_ESCAPES = {i: f"\\u{i:04X}" for i in range(0x20)} | {
    8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", ord('"'): '\\"', ord("\\"): "\\\\"}
_MAX_DIGITS = 18  # a canonical integer of at most 18 digits is always within int64


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
    n = len(span)
    pieces = Pieces()
    order, counts = _kept_pieces(con, pc.struct_field(span, "attributes"), used, pieces)
    if flat.column("scope_json").null_count:  # the flatten writes every scope: its member
        raise ValueError("an OTLP span without its scope JSON (scope_json is null)")  # ends the commas
    scope_attrs = one_chunk(flat.column("scope_attrs_json"))
    members = [  # per span, the pieces after its kept attributes (-1: none)
        text_member(con, pieces, pc.struct_field(span, "kind"), '"otel.span.kind":', ",", kinds=True),
        text_member(con, pieces, pc.struct_field(pc.struct_field(span, "status"), "message"),
                     '"otel.status.message":', ","),
        *around_member(pieces, '"otel.resource":', flat.column("res_json"), ","),
        *around_member(pieces, '"otel.scope":', flat.column("scope_json")),
        *around_member(pieces, ',"otel.scope.attributes":', scope_attrs,
                        present=np.asarray(pc.fill_null(pc.not_equal(scope_attrs, "{}"), False), dtype=bool)),
        *around_member(pieces, ',"otel.events":', pc.struct_field(span, "events")),
        *around_member(pieces, ',"otel.links":', pc.struct_field(span, "links")),
        text_member(con, pieces, pc.struct_field(span, "traceState"), ',"otel.trace_state":', ""),
        np.where(np.asarray(pc.fill_null(normalised, False), dtype=bool),
                 pieces.add(pa.array([',"aiscale.tokens_normalised":true'])), -1)]
    brace = pieces.add(pa.array(["{", "}"]))
    members = [member for member in members if member.max(initial=-1) >= 0]  # some span has it
    total = counts + 2
    for member in members:
        total += member >= 0
    starts = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(total, out=starts[1:])
    joined = np.empty(starts[-1], dtype=np.int64)
    joined[starts[:-1]] = brace
    joined[starts[1:] - 1] = brace + 1
    kept_starts = np.cumsum(counts) - counts
    joined[np.repeat(starts[:-1] + 1 - kept_starts, counts) + np.arange(len(order))] = order
    cursor = starts[:-1] + 1 + counts  # where each span's next piece goes
    for member in members:
        have = member >= 0
        joined[cursor[have]] = member[have]
        cursor += have
    return pieces.joined(joined, total)


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
    """Per span, its kept attributes as ``"key":value,...,`` (null when none is kept)."""
    pieces = Pieces()
    order, counts = _kept_pieces(con, attrs, used, pieces)
    return pieces.joined(order, counts, valid=counts > 0)


def _kept_pieces(con: duckdb.DuckDBPyConnection, attrs: pa.ListArray, used: list[np.ndarray],
                 pieces: Pieces) -> tuple[np.ndarray, np.ndarray]:
    """The pieces (added to ``pieces``) writing each span's kept attributes, span after span,
    and how many each span has (none when it keeps no attribute).

    Before each value the glue (the closing quote of the value before, the comma, the key's
    JSON, the colon, an opening quote), one of a few per distinct key; after the last, a
    closing quote and the comma.
    """
    offsets = attrs.offsets.to_numpy()
    flat = attrs.values.slice(offsets[0], offsets[-1] - offsets[0])
    offsets = offsets - offsets[0]
    keep = np.asarray(pc.is_valid(pc.struct_field(flat, "key")), dtype=bool)  # no key: not written
    for positions in used:
        rows = np.flatnonzero(positions)
        keep[offsets[rows] + positions[rows].astype(np.int64) - 1] = False
    rows = np.flatnonzero(keep)
    text, quoted, written = _values_json(con, pc.struct_field(flat, "value"), rows, pieces)
    keep[rows[~written]] = False  # av_json's null (an empty array): none
    text, quoted, rows = text[written], quoted[written], rows[written]
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
    at = pieces.add(glue)
    places = 2 * np.arange(len(codes)) + np.concatenate([[0], np.cumsum(last)[:-1]])
    order = np.empty(2 * len(codes) + np.count_nonzero(last), dtype=np.int64)
    order[places] = at + (state * len(keys.dictionary) + codes) * 2 + quoted
    order[places + 1] = text
    order[places[last] + 2] = at + len(glue) - 2 + quoted[last]
    return order, np.where(count > 0, 2 * count + 1, 0)


def _glue(keys: list[str]) -> pa.Array:
    """The text before a value, at ``(state * len(keys) + key) * 2 + quoted``: state 0 after
    an unquoted value, 1 after a quoted one, 2 first in its span; then the two endings (after
    an unquoted and after a quoted last value)."""
    glue = [("" if state == 2 else '"' * state + ",") + to_json(key) + ":" + '"' * quoted
            for state in range(3) for key in keys for quoted in range(2)]
    return pa.array([*glue, ",", '",'], pa.string())


def _values_json(con: duckdb.DuckDBPyConnection, value: pa.StructArray, rows: np.ndarray,
                 pieces: Pieces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where in ``pieces`` (added to it) the ``AnyValue`` at each of ``rows`` of ``value`` is,
    as ``av_json`` writes it; where it is a string written as it is between quotes (the
    quotes left out of the text); and where it is written (``av_json`` gives null for none).

    A string without a character ``to_json`` escapes, a canonical ``intValue`` (an int64
    without sign or leading zeros) and ``true``/``false`` are their own text, in the value's
    own fields (added whole, not taken); the rest go through ``av_scalar`` (``av_json`` for
    arrays and kvlists) in DuckDB.
    """
    def valid(array: pa.Array) -> np.ndarray:
        if array.null_count == len(array):
            return np.zeros(len(rows), dtype=bool)
        return np.asarray(pc.is_valid(array), dtype=bool)[rows]

    field = {name: pc.struct_field(value, name) for name in VALUE_FIELDS}
    taken = pa.array(rows, pa.int64())
    string, integer = pc.take(field["stringValue"], taken), pc.take(field["intValue"], taken)
    present = valid(value)
    nested = present & (valid(field["arrayValue"]) | valid(field["kvlistValue"]))
    scalar = present & ~nested
    is_string = np.asarray(pc.is_valid(string), dtype=bool)
    as_string = scalar & is_string & ~needs_escape(string)
    scalar &= ~is_string
    as_int = scalar & canonical_ints(integer)
    scalar &= ~np.asarray(pc.is_valid(integer), dtype=bool) & ~valid(field["doubleValue"])
    as_bool = scalar
    if as_bool.any():
        as_bool &= np.asarray(pc.fill_null(pc.is_in(pc.take(field["boolValue"], taken),
                                                    pa.array(["true", "false"])), False), dtype=bool)
    index = np.full(len(rows), -1, dtype=np.int64)
    for these, name in ((as_string, "stringValue"), (as_int, "intValue"), (as_bool, "boolValue")):
        if these.any():
            index[these] = pieces.add(field[name]) + rows[these]
    slow = ~(as_string | as_int | as_bool)
    written = np.ones(len(rows), dtype=bool)
    for these, macro in ((slow & ~nested, "av_scalar"), (nested, "av_json")):  # av_json: from_json
        if these.any():
            text = in_order(con, f"SELECT {macro}(value) AS j FROM otlp_values", otlp_values=pa.table(
                {"value": value.take(pa.array(rows[these], pa.int64()))})).column("j")
            index[these] = pieces.add(text) + np.arange(len(text))
            written[these] = np.asarray(pc.is_valid(text), dtype=bool)
    return index, as_string, written


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
