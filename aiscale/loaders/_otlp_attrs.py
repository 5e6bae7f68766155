"""Attribute look-ups for the OTLP loader, in Arrow and NumPy (one pass over all attributes).

DuckDB parses and unnests the OTLP lines (:mod:`aiscale.loaders._otlp_sql`); this module then
finds, for every span, the attributes the mapping reads, without a Python loop per span and
without one list scan per key: the attribute keys are dictionary-encoded once, each distinct
key is mapped to the wanted key it is (or none), and the first occurrence of each wanted key
in each span is found with one stable (radix) sort by key. For each wanted key ``k`` it adds two columns:

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
    positions = at + offsets[0] - offsets[rows] + 1
    value = pc.struct_field(flat, "value")
    text = pc.coalesce(*(pc.struct_field(value, f) for f in VALUE_FIELDS))
    bounds = np.searchsorted(key_of, np.arange(len(keys) + 1))  # key_of is sorted
    present = [code for code in range(len(keys)) if bounds[code] < bounds[code + 1]]
    index = np.full((len(present), n), -1, dtype=np.int32)  # one row per key some span has
    place = np.zeros((len(present), n), dtype=np.int32)
    for row, code in enumerate(present):
        lo, hi = bounds[code], bounds[code + 1]
        index[row, rows[lo:hi]] = at[lo:hi]
        place[row, rows[lo:hi]] = positions[lo:hi]
    missing = (index < 0).ravel()
    values = pc.take(text, pa.array(index.ravel(), mask=missing))  # one take for every key
    places = pa.array(place.ravel(), mask=missing)
    out: dict[str, pa.Array] = {}
    for row, code in enumerate(present):  # a key no span here has gets no columns (``absent``)
        out[f"a:{keys[code]}"] = values.slice(row * n, n)
        out[f"p:{keys[code]}"] = places.slice(row * n, n)
    return out


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
    """The index in ``keys`` of each attribute's key; -1 for the keys not looked up."""
    encoded = key.dictionary_encode()
    wanted = {k: i for i, k in enumerate(keys)}
    table = np.array([wanted.get(k, -1) for k in encoded.dictionary.to_pylist()] + [-1],
                     dtype=np.int64)
    indices = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()
    return table[indices]
