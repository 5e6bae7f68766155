"""The Arrow unnest of parsed OTLP requests gives the rows and columns of the SQL unnest.

``flat_query`` (three SQL unnests, the ``attrs_json`` macro over each resource's and scope's
attributes) is the reference; ``flatten_requests`` (Arrow views, :func:`attrs_json` writing
each attribute by ``av_scalar`` and only arrays and kvlists by ``av_json``, joined in Arrow)
must give the same ``line_no``, trace keys, resource and scope JSON, span for span, on every
``AnyValue`` kind, attributes without a key, null attributes, empty and absent lists, and the
loader tests' awkward lines.
"""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_loader_otlp_equivalence import _awkward_lines

from aiscale.loaders._otlp_flatten import attrs_json, flatten_requests
from aiscale.loaders._otlp_sql import ATTRS, MACROS, TRACE_KEYS, flat_query, parse_query

VALUES = [{"stringValue": "x\"\n\u00e9"}, {"intValue": 5}, {"intValue": "99999999999999999999"},
          {"doubleValue": 1.5}, {"doubleValue": "NaN"}, {"boolValue": True}, {"bytesValue": "AAE="},
          {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "a\"b"}, {"doubleValue": 2}]}},
          {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}}, {}, None,
          {"stringValue": "s", "arrayValue": {"values": []}}]


def _attrs(n: int) -> list:
    out = [{"key": f"k{i}", "value": v} for i, v in enumerate(VALUES[n % len(VALUES):] + VALUES[:n % 3])]
    if n % 4 == 0:
        out.append({"value": {"stringValue": "no key"}})
    if n % 5 == 0:
        out.append(None)
    return out


def _lines() -> list[bytes]:
    lines = list(_awkward_lines())
    for n in range(24):
        resource = {} if n % 6 == 0 else {"attributes": [] if n % 6 == 1 else _attrs(n)}
        scope = {"name": "s", "version": None} if n % 2 else {"name": "s\n", "attributes": _attrs(n + 1)}
        spans = [{"spanId": f"{n:016x}"}, {"spanId": f"{n + 100:016x}"}]
        lines.append(json.dumps({"resourceSpans": [
            {"resource": resource, "scopeSpans": [{"scope": scope, "spans": spans}, {"spans": spans[:1]}]},
            {"scopeSpans": [{"scope": {"attributes": _attrs(n + 2)}, "spans": spans[1:]}]}]}).encode())
    return lines


@pytest.fixture(scope="module")
def parsed() -> tuple[duckdb.DuckDBPyConnection, pa.Table]:
    con = duckdb.connect()
    con.execute(MACROS)
    lines = _lines()
    con.register("blk", pa.table({"line_no": range(1, len(lines) + 1), "raw": pa.array(lines, pa.large_binary())}))
    con.execute("SET preserve_insertion_order = true")
    return con, con.sql(parse_query("blk")).to_arrow_table()


def test_flatten_gives_the_rows_and_columns_of_the_sql_unnest(parsed):
    con, table = parsed
    con.register("parsed", table)
    want = con.sql(flat_query("parsed")).to_arrow_table()
    got = flatten_requests(con, table)
    assert got.num_rows == want.num_rows > 100
    names = ["line_no", *(f"r:{k}" for k in TRACE_KEYS.values()), "res_json", "scope_json", "scope_attrs_json"]
    for name in names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name
    assert pc.struct_field(got.column("sp").combine_chunks(), "spanId").to_pylist() == \
        pc.struct_field(want.column("sp").combine_chunks(), "spanId").to_pylist()
    objects = [json.loads(j) for j in got.column("scope_attrs_json").to_pylist() if j]
    assert any("k7" in o and isinstance(o["k7"], list) for o in objects)  # arrays written as arrays
    assert all("no key" not in json.dumps(o) for o in objects)  # an attribute with no key is left out


def test_attrs_json_matches_the_macro_on_each_list_and_on_a_slice(parsed):
    con, _ = parsed
    docs = [json.dumps({"a": _attrs(n)}) for n in range(30)] + ['{"a": null}', '{"a": []}', "{}"]
    con.register("docs", pa.table({"d": docs}))
    lists = con.sql(f"SELECT from_json(d, '{{\"a\":{ATTRS}}}').a AS a FROM docs").to_arrow_table()
    con.register("lists", lists)
    want = con.sql("SELECT attrs_json(a) AS j FROM lists").to_arrow_table().column("j").to_pylist()
    array = lists.column("a").combine_chunks()
    got = attrs_json(con, array).to_pylist()
    assert got == want and got[-3:] == [None, "{}", None] and len(set(got)) > 10
    assert attrs_json(con, array.slice(7, 12)).to_pylist() == want[7:19]
