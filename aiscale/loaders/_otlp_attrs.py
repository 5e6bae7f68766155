"""Attribute look-ups for the OTLP loader, in Arrow and NumPy (one pass over all attributes).

DuckDB parses and unnests the OTLP lines (:mod:`aiscale.loaders._otlp_sql`); this module then
finds, for every span, the attributes the mapping reads, without a Python loop per span and
without one list scan per key: each attribute key is looked up in the wanted keys by one hash
probe (``index_in``; dictionary-encoding all keys first cost ~40 % more), and the first
occurrence of each wanted key in each span is found with one stable (radix) sort by key. The
values read are taken once, from the scalar fields end to end (one ``take`` instead of one per
field and a ``coalesce``, which cost ~2x); each key's column then points into that text
(offsets built in NumPy, no copy and no take of mostly-null rows). For each wanted key ``k``
it adds two columns:

``a:k``  the value as text (``stringValue``, ``intValue``, ``doubleValue``, ``boolValue`` or
         ``bytesValue``, the first present), null when the key is absent or has no scalar;
``p:k``  the 1-based position of the key's first occurrence in the span's attribute list.

A key no span has gets no columns; the mapping query writes it as a null.

As everywhere in the loader, the first occurrence of a repeated key is the one read.

Examples
--------
>>> import pyarrow as pa
>>> value = pa.struct([(f, pa.string()) for f in VALUE_FIELDS])
>>> attrs = pa.array([[{"key": "x", "value": {"intValue": "7"}},
...                    {"key": "y", "value": {"stringValue": "a"}},
...                    {"key": "x", "value": {"intValue": "8"}}], None],
...                  pa.list_(pa.struct([("key", pa.string()), ("value", value)])))
>>> cols = lookup_columns(attrs, ["x", "z"])
>>> cols["a:x"].to_pylist(), cols["p:x"].to_pylist(), absent(cols, ["x", "z"])
(['7', None], [1, None], frozenset({'z'}))
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

VALUE_FIELDS = ("stringValue", "intValue", "doubleValue", "boolValue", "bytesValue")


def lookup_columns(attrs: pa.Array, keys: list[str]) -> dict[str, pa.Array]:
    """Return ``a:key`` (value text) and ``p:key`` (position) columns for each of ``keys``.

    Parameters
    ----------
    attrs : pyarrow.ListArray
        One list of ``{key, value}`` structs per span (null when a span has none), ``value``
        a struct of the OTLP ``AnyValue`` scalar fields as strings.
    keys : list of str
        The attribute keys to look up.

    Returns
    -------
    dict of str to pyarrow.Array
        Two columns per key some span has, each as long as ``attrs``; a key no span has gets
        none (:func:`absent` lists such keys).
    """
    n = len(attrs)
    flat = attrs.flatten()
    codes = _key_codes(pc.struct_field(flat, "key"), keys)
    chosen = np.flatnonzero(codes >= 0)
    key_of = codes[chosen].astype(np.int16)  # few keys: the stable sort below is a radix sort
    parents = pc.list_parent_indices(attrs).to_numpy()[chosen]
    order = np.argsort(key_of, kind="stable")  # by key, then in attribute order
    sorted_keys, sorted_parents = key_of[order], parents[order]
    first = np.ones(len(order), dtype=bool)  # first occurrence of (key, span)
    first[1:] = (sorted_keys[1:] != sorted_keys[:-1]) | (sorted_parents[1:] != sorted_parents[:-1])
    picked = order[first]
    at, rows, key_of = chosen[picked], parents[picked], key_of[picked]
    offsets = attrs.offsets.to_numpy()
    positions = (at + offsets[0] - offsets[rows] + 1).astype(np.int32)
    text = _scalar_text(pc.struct_field(flat, "value"), at)
    bounds = np.searchsorted(key_of, np.arange(len(keys) + 1))  # key_of is sorted
    out: dict[str, pa.Array] = {}
    for code in range(len(keys)):  # a key no span here has gets no columns (``absent``)
        lo, hi = bounds[code], bounds[code + 1]
        if lo < hi:
            out[f"a:{keys[code]}"], out[f"p:{keys[code]}"] = _spread(text, positions, rows, lo, hi, n)
    return out


def _spread(text: pa.StringArray, positions: np.ndarray, rows: np.ndarray, lo: int, hi: int,
            n: int) -> tuple[pa.Array, pa.Array]:
    """One key's ``a:`` and ``p:`` columns (``n`` rows) from its values ``text[lo:hi]`` and
    positions ``positions[lo:hi]``, found at the ascending ``rows[lo:hi]``: the strings are
    not copied (the column's offsets point into ``text``'s data), the other rows are null."""
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:text.offset + len(text) + 1]
    sizes = np.zeros(n, dtype=np.int32)
    sizes[rows[lo:hi]] = np.diff(offsets[lo:hi + 1])
    starts = np.empty(n + 1, dtype=np.int32)
    starts[0] = offsets[lo]
    np.cumsum(sizes, out=starts[1:])
    starts[1:] += offsets[lo]
    found = np.zeros(n, dtype=bool)
    found[rows[lo:hi]] = True
    valid = found.copy()
    valid[rows[lo:hi]] = np.asarray(text.slice(lo, hi - lo).is_valid(), dtype=bool)
    data = text.buffers()[2] or pa.py_buffer(b"")
    values = pa.StringArray.from_buffers(n, pa.py_buffer(starts), data, _bitmap(valid))
    place = np.zeros(n, dtype=np.int32)
    place[rows[lo:hi]] = positions[lo:hi]
    return values, pa.Array.from_buffers(pa.int32(), n, [_bitmap(found), pa.py_buffer(place)])


def _scalar_text(value: pa.StructArray, at: np.ndarray) -> pa.StringArray:
    """The text of the values at ``at`` of ``value``: the first of :data:`VALUE_FIELDS`
    present, null where none is; one ``take`` from the fields end to end (with a null after
    them), not one per field and a ``coalesce``.

    >>> value = pa.array([{"stringValue": "a"}, {"intValue": "7"}, None],
    ...                  pa.struct([(f, pa.string()) for f in VALUE_FIELDS]))
    >>> _scalar_text(value, np.array([2, 1, 0])).to_pylist()
    [None, '7', 'a']
    """
    n = len(value)
    fields = [pc.struct_field(value, f).cast(pa.string()) for f in VALUE_FIELDS]
    index = np.full(len(at), len(fields) * n, dtype=np.int64)  # the null after the fields
    for number in reversed(range(len(fields))):  # the first field present wins
        if fields[number].null_count < n:
            present = np.asarray(fields[number].is_valid(), dtype=bool)[at]
            index = np.where(present, number * n + at, index)
    return pc.take(pa.concat_arrays([*fields, pa.nulls(1, pa.string())]), pa.array(index))


def _bitmap(valid: np.ndarray) -> pa.Buffer:
    """Arrow's validity bitmap of the boolean mask ``valid``."""
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def read_positions(columns: dict[str, pa.Array], mapped: pa.Table, reads: tuple) -> list[np.ndarray]:
    """Per rule of ``reads`` (:data:`~aiscale.loaders._otlp_sql.READS`) and key, the 1-based
    position in each span of the attribute the mapping read (0: none), from the ``a:`` and
    ``p:`` ``columns`` and the rules' columns of the mapped spans ``mapped``.

    >>> value = pa.struct([(f, pa.string()) for f in VALUE_FIELDS])
    >>> attrs = pa.array([[{"key": "x", "value": {"intValue": "7"}}]],
    ...                  pa.list_(pa.struct([("key", pa.string()), ("value", value)])))
    >>> columns = lookup_columns(attrs, ["x", "y"])
    >>> read_positions(columns, pa.table({"w": [False]}), [(None, ("y", "x"), True), ("w", ("x",), False)])
    [array([1], dtype=int32), array([0], dtype=int32)]
    """
    n = mapped.num_rows
    out = []
    for name, keys, first in reads:
        if name is None:
            where = np.ones(n, dtype=bool)
        elif name == "error_type":  # read where it is not null
            where = np.asarray(pc.is_valid(mapped.column(name)), dtype=bool)
        else:
            where = np.asarray(pc.fill_null(mapped.column(name), False), dtype=bool)
        if not first:
            out += [np.where(where, _positions(columns, key, n), 0).astype(np.int32) for key in keys]
            continue
        positions, done = np.zeros(n, dtype=np.int32), ~where
        for key in keys:  # the first key with a value
            if f"a:{key}" in columns:
                have = ~done & np.asarray(pc.is_valid(columns[f"a:{key}"]), dtype=bool)
                positions[have] = _positions(columns, key, n)[have]
                done |= have
        out.append(positions)
    return out


def _positions(columns: dict[str, pa.Array], key: str, n: int) -> np.ndarray:
    """The ``p:key`` column as NumPy, 0 where it is null (or all, where there is none)."""
    if f"p:{key}" not in columns:
        return np.zeros(n, dtype=np.int32)
    return np.asarray(pc.fill_null(columns[f"p:{key}"], 0), dtype=np.int32)


def absent(columns: dict[str, pa.Array], keys: list[str]) -> frozenset[str]:
    """The ``keys`` with no value in ``columns`` (no column, or one that is all null)."""
    return frozenset(k for k in keys if f"a:{k}" not in columns
                     or columns[f"a:{k}"].null_count == len(columns[f"a:{k}"]))


def _key_codes(key: pa.Array, keys: list[str]) -> np.ndarray:
    """The index in ``keys`` of each attribute's key; -1 for the keys not looked up (and none).

    >>> _key_codes(pa.array(["b", "x", None, "a"]), ["a", "b"]).tolist()
    [1, -1, -1, 0]
    """
    found = pc.index_in(key, value_set=pa.array(keys, key.type))
    return pc.fill_null(found, -1).to_numpy().astype(np.int64)
