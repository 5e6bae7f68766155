"""The OTLP attribute look-ups (``a:``/``p:`` columns) against a walk span by span."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from aiscale.loaders._otlp_attrs import VALUE_FIELDS, absent, lookup_columns

VALUE = pa.struct([(f, pa.string()) for f in VALUE_FIELDS])
ATTRS = pa.list_(pa.struct([("key", pa.string()), ("value", VALUE)]))


def _random_attrs(rng: np.random.Generator, spans: int) -> list:
    keys = ["a", "b", "c", "d", "e", None]
    out = []
    for _ in range(spans):
        if rng.random() < 0.1:
            out.append(None)
            continue
        attrs = []
        for _ in range(rng.integers(0, 7)):
            value = None
            if rng.random() > 0.1:  # a value struct: some fields, or none (no scalar)
                value = {f: (str(rng.integers(-50, 50)) * int(rng.integers(0, 3)) if rng.random() < 0.3 else None)
                         for f in VALUE_FIELDS}
            attrs.append({"key": keys[rng.integers(0, len(keys))], "value": value})
        out.append(attrs)
    return out


def _by_hand(rows: list, key: str) -> tuple[list, list]:
    texts, places = [], []
    for attrs in rows:
        hit = next(((i, a) for i, a in enumerate(attrs or []) if a["key"] == key), None)
        if hit is None:
            texts.append(None)
            places.append(None)
            continue
        value = hit[1]["value"] or {}
        texts.append(next((value[f] for f in VALUE_FIELDS if value.get(f) is not None), None))
        places.append(hit[0] + 1)
    return texts, places


@pytest.mark.parametrize("seed", range(5))
def test_lookups_equal_the_first_occurrence_span_by_span(seed):
    rng = np.random.default_rng(seed)
    rows = _random_attrs(rng, 300)
    attrs = pa.array(rows, ATTRS)
    start = int(rng.integers(0, 50))  # a slice: the list offsets do not start at zero
    attrs, rows = attrs.slice(start, 200), rows[start:start + 200]
    keys = ["c", "a", "zz", "e"]
    columns = lookup_columns(attrs, keys)
    for key in keys:
        texts, places = _by_hand(rows, key)
        if all(p is None for p in places):
            assert f"a:{key}" not in columns
            continue
        assert columns[f"a:{key}"].to_pylist() == texts
        assert columns[f"p:{key}"].to_pylist() == places
        columns[f"a:{key}"].validate(full=True)
        columns[f"p:{key}"].validate(full=True)
    assert "zz" in absent(columns, keys)


def test_lookups_of_spans_without_any_value():
    attrs = pa.array([None, [], [{"key": "a", "value": None}]], ATTRS)
    columns = lookup_columns(attrs, ["a", "b"])
    assert columns["a:a"].to_pylist() == [None, None, None]
    assert columns["p:a"].to_pylist() == [None, None, 1]
    assert absent(columns, ["a", "b"]) == frozenset({"a", "b"})
