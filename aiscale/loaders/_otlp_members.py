"""The ``otel.*`` members of the OTLP ``attributes`` JSON, as pieces (used by ``_otlp_json``).

Each member is, per span, where its text is among the :class:`~aiscale.loaders._otlp_pieces.Pieces`
the span is written from (-1: the span has none): span kinds, status messages and trace states
written once per distinct value, in Arrow (DuckDB's ``to_json`` only for the values with a
character it escapes); the resource, scope, scope attributes, events and links as they are,
between their constant pieces. No query runs for a block whose values need no escape (one per
member did before, ~5 ms each).

Examples
--------
>>> import duckdb, numpy as np, pyarrow as pa
>>> pieces = Pieces()
>>> at = text_member(duckdb.connect(), pieces, pa.array(["2", "", None]), '"k":', ",", kinds=True)
>>> empty = pieces.add(pa.array([""]))
>>> pieces.joined(np.where(at >= 0, at, empty), np.ones(3, dtype=np.int64)).to_pylist()
['"k":"SPAN_KIND_SERVER",', '"k":"",', '']
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.loaders._otlp_pieces import Pieces, one_chunk
from aiscale.loaders._otlp_query import in_order
from aiscale.loaders._otlp_sql import SPAN_KINDS


def text_member(con: duckdb.DuckDBPyConnection, pieces: Pieces, values: pa.Array, before: str,
                 after: str, *, kinds: bool = False) -> np.ndarray:
    """Per span, where in ``pieces`` (added to it) ``before + to_json(v) + after`` is for its
    value ``v`` (-1 where it is null, or empty unless ``kinds``), written once per distinct
    value; with ``kinds``, span kind numbers are written as their names.

    Values with a character ``to_json`` escapes (few) are written by DuckDB's ``to_json``.
    """
    encoded = pc.dictionary_encode(one_chunk(values).cast(pa.string()))
    distinct = encoded.dictionary
    if kinds:
        number = pc.index_in(distinct, value_set=pa.array(list(SPAN_KINDS), pa.string()))
        distinct = pc.if_else(pc.is_valid(number), pc.take(pa.array(list(SPAN_KINDS.values())), number), distinct)
    else:  # nullif(v, '')
        distinct = pc.if_else(pc.equal(distinct, ""), pa.scalar(None, pa.string()), distinct)
    text = pc.binary_join_element_wise(before + '"', distinct, '"' + after, "")
    escaped = needs_escape(distinct)
    if escaped.any():
        quoted = in_order(con, "SELECT to_json(v) AS j FROM otlp_values",
                          otlp_values=pa.table({"v": distinct.filter(pa.array(escaped))}))
        text = pc.replace_with_mask(text, pa.array(escaped), pc.binary_join_element_wise(
            before, quoted.column("j").combine_chunks().cast(pa.string()), after, ""))
    at = pieces.add(pa.concat_arrays([text, pa.nulls(1, pa.string())]))
    codes = pc.fill_null(encoded.indices, len(text)).to_numpy().astype(np.int64)
    written = np.append(np.asarray(pc.is_valid(text), dtype=bool), False)[codes]
    return np.where(written, at + codes, -1)


def around_member(pieces: Pieces, before: str, values: pa.Array | pa.ChunkedArray,
                   after: str = "", *, present: np.ndarray | None = None) -> list[np.ndarray]:
    """Per span, where in ``pieces`` (added to it) ``before``, the value and ``after`` are
    (-1 where the value is null, or not ``present``)."""
    values = one_chunk(values)
    valid = np.asarray(pc.is_valid(values), dtype=bool)
    if present is not None:
        valid &= present
    at = pieces.add(values)
    out = [np.where(valid, pieces.add(pa.array([before])), -1), np.where(valid, at + np.arange(len(values)), -1)]
    if after:
        out.append(np.where(valid, pieces.add(pa.array([after])), -1))
    return out


def needs_escape(strings: pa.Array) -> np.ndarray:
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
