"""Unnest parsed OTLP requests to one row per span in Arrow (used by ``otlp``).

DuckDB parses each line into a nested ``req`` struct (:func:`~aiscale.loaders._otlp_sql.parse_query`);
unnesting it in SQL copies every span's whole struct three times (resourceSpans, scopeSpans,
spans). Arrow's ``list_flatten`` does the same without copying: each level is a view of the
level above, and ``list_parent_indices`` says which resource and scope a span belongs to.
Only the per-resource and per-scope columns (a few rows per line) are computed, the trace keys
on the resource by the look-ups of :mod:`aiscale.loaders._otlp_attrs`, the resource and
scope attributes as JSON by :func:`attrs_json` (one query for both levels), then taken to the
spans. The rows and columns are those of
:func:`~aiscale.loaders._otlp_sql.flat_query`, in the file's order.

Examples
--------
>>> import duckdb, pyarrow as pa
>>> from aiscale.loaders._otlp_sql import MACROS, parse_query
>>> con = duckdb.connect(); _ = con.execute(MACROS)
>>> line = b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"a"},{"spanId":"b"}]}]}]}'
>>> _ = con.register("blk", pa.table({"line_no": [7], "raw": pa.array([line], pa.large_binary())}))
>>> flat = flatten_requests(con, con.sql(parse_query("blk")).to_arrow_table())
>>> flat.column("line_no").to_pylist(), pa.compute.struct_field(flat.column("sp"), "spanId").to_pylist()
([7, 7], ['a', 'b'])
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.loaders._otlp_attrs import lookup_columns
from aiscale.loaders._otlp_json import kept_attributes
from aiscale.loaders._otlp_pieces import one_chunk
from aiscale.loaders._otlp_query import in_order
from aiscale.loaders._otlp_sql import TRACE_KEYS


def flatten_requests(con: duckdb.DuckDBPyConnection, parsed: pa.Table) -> pa.Table:
    """Return one row per span of the parsed requests (``line_no``, ``req``) in ``parsed``.

    Columns: ``line_no``, ``r:<key>`` (trace keys on the resource), ``res_json``,
    ``scope_json``, ``scope_attrs_json`` and the span struct ``sp``.
    """
    req, line_no = (one_chunk(parsed.column(name)) for name in ("req", "line_no"))
    resource_lists = pc.struct_field(req, "resourceSpans")
    resources = pc.list_flatten(resource_lists)
    resource_line = pc.take(line_no, pc.list_parent_indices(resource_lists))
    scope_lists = pc.struct_field(resources, "scopeSpans")
    scopes = pc.list_flatten(scope_lists)
    scope_resource = pc.list_parent_indices(scope_lists)
    span_lists = pc.struct_field(scopes, "spans")
    spans = pc.list_flatten(span_lists)
    span_scope = pc.list_parent_indices(span_lists)
    span_resource = pc.take(scope_resource, span_scope)

    resource_attrs = pc.struct_field(pc.struct_field(resources, "resource"), "attributes")
    scope = pc.struct_field(scopes, "scope")
    found = lookup_columns(resource_attrs, list(TRACE_KEYS.values()))
    none = pa.nulls(len(resources), pa.string())
    resource_columns = {f"r:{k}": found.get(f"a:{k}", none) for k in TRACE_KEYS.values()}
    both = len(resources)  # one query for both levels' attributes (its cost is mostly fixed)
    objects = attrs_json(con, pa.concat_arrays([resource_attrs, pc.struct_field(scope, "attributes")]))
    resource_columns["res_json"] = objects.slice(0, both)
    scope_json = in_order(con, "SELECT to_json({'name': name, 'version': version}) AS j FROM otlp_level",
                          otlp_level=pa.table({"name": pc.struct_field(scope, "name").cast(pa.string()),
                                               "version": pc.struct_field(scope, "version").cast(pa.string())}))
    scope_columns = {"scope_json": scope_json.column("j"), "scope_attrs_json": objects.slice(both)}
    columns = {"line_no": pc.take(resource_line, span_resource)}
    columns.update({name: pc.take(array, span_resource) for name, array in resource_columns.items()})
    columns.update({name: pc.take(array, span_scope) for name, array in scope_columns.items()})
    columns["sp"] = spans
    return pa.table(columns)


def attrs_json(con: duckdb.DuckDBPyConnection, attrs: pa.ListArray) -> pa.Array:
    """Each list of attributes as a JSON object, as the ``attrs_json`` macro writes it
    (``{"key":value,...}``, attributes without a key left out; null where the list is null).

    The attributes are written as the spans' kept attributes are
    (:func:`~aiscale.loaders._otlp_json.kept_attributes`, none of them read into a column),
    without the last comma, between braces.
    """
    members = kept_attributes(con, attrs, [])
    members = pc.utf8_slice_codeunits(pc.fill_null(members, ","), 0, -1)  # none kept: "{}"
    objects = pc.binary_join_element_wise("{", members, "}", "")
    return pc.if_else(attrs.is_null(), pa.scalar(None, pa.string()), objects)
