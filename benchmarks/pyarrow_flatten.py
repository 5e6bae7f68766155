"""The pyarrow floor for OTLP JSON: Arrow's JSON reader with an explicit nested schema, flattened
with Arrow compute, written as one flat Parquet span table (the competitor ``make bench`` sets
aiscale's load + facts against).

Usage (prints one JSON line: rows and token sums, to compare with aiscale's store)::

    python benchmarks/pyarrow_flatten.py FILE.jsonl OUT.parquet

It streams the file in 8 MB blocks (``pyarrow.json.open_json``), unnests resourceSpans ->
scopeSpans -> spans with ``list_flatten``, reads ids, times, status and the GenAI columns
(first occurrence of a key wins; tokens on ``chat`` spans only) and writes every other
attribute as one JSON string, as aiscale's span table has them. It is a floor, not a loader:
no tolerance (one bad line fails its block; ``intValue`` must be a string, times strings,
status codes integers), no base64 ids, no quarantine, no OpenInference keys, strings escaped
only for quotes and backslashes.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

S = pa.string()
ANY = pa.struct([("stringValue", S), ("intValue", S), ("doubleValue", pa.float64()),
                 ("boolValue", pa.bool_())])
ATTRS = pa.list_(pa.struct([("key", S), ("value", ANY)]))
SPAN = pa.struct([("traceId", S), ("spanId", S), ("parentSpanId", S), ("name", S),
                  ("kind", pa.int64()), ("startTimeUnixNano", S), ("endTimeUnixNano", S),
                  ("attributes", ATTRS), ("status", pa.struct([("code", pa.int64()), ("message", S)]))])
SCHEMA = pa.schema([("resourceSpans", pa.list_(pa.struct([
    ("resource", pa.struct([("attributes", ATTRS)])),
    ("scopeSpans", pa.list_(pa.struct([("scope", pa.struct([("name", S), ("version", S)])),
                                       ("spans", pa.list_(SPAN))])))])))])
COLUMNS = {"provider": "gen_ai.provider.name", "model": "gen_ai.response.model",
           "request_model": "gen_ai.request.model", "operation": "gen_ai.operation.name",
           "input_tokens": "gen_ai.usage.input_tokens", "output_tokens": "gen_ai.usage.output_tokens",
           "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
           "cache_write_tokens": "gen_ai.usage.cache_creation.input_tokens",
           "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens",
           "tool_name": "gen_ai.tool.name", "tool_arguments": "gen_ai.tool.call.arguments"}
TOKENS = [c for c in COLUMNS if c.endswith("_tokens")]


def flatten(batch: pa.RecordBatch) -> pa.Table:
    """One record batch of requests -> the flat span table."""
    resources = pc.list_flatten(batch.column("resourceSpans"))
    scopes = pc.list_flatten(pc.struct_field(resources, "scopeSpans"))
    spans = pc.list_flatten(pc.struct_field(scopes, "spans"))
    field = lambda name: pc.struct_field(spans, name)  # noqa: E731
    attrs = field("attributes")
    looked_up, rest = _attributes(attrs)
    llm = pc.equal(looked_up["operation"], "chat")
    out = {"trace_id": field("traceId"), "span_id": field("spanId"),
           "parent_id": pc.if_else(pc.equal(field("parentSpanId"), ""), None, field("parentSpanId")),
           "name": field("name"), "start_time": _time(field("startTimeUnixNano")),
           "end_time": _time(field("endTimeUnixNano")),
           "status": pc.take(pa.array(["unset", "ok", "error"]), pc.struct_field(field("status"), "code")),
           "provider": looked_up["provider"],
           "model": pc.coalesce(looked_up["model"], looked_up["request_model"]),
           "tool_name": looked_up["tool_name"], "tool_arguments": looked_up["tool_arguments"]}
    for column in TOKENS:
        out[column] = pc.if_else(llm, pc.cast(looked_up[column], pa.int64()), None)
    out["attributes"] = rest
    return pa.table(out)


def _time(nanos: pa.Array) -> pa.Array:
    return pc.cast(pc.divide(pc.cast(nanos, pa.int64()), 1000), pa.timestamp("us", tz="UTC"))


def _attributes(attrs: pa.Array) -> tuple[dict[str, pa.Array], pa.Array]:
    """First value of each looked-up key per span, and the other attributes as JSON."""
    n, flat = len(attrs), pc.list_flatten(attrs)
    parents = pc.list_parent_indices(attrs).to_numpy()
    keys = pc.struct_field(flat, "key").dictionary_encode()
    wanted = {key: i for i, key in enumerate(COLUMNS.values())}
    codes = np.array([wanted.get(k, -1) for k in keys.dictionary.to_pylist()])[keys.indices.to_numpy()]
    value = pc.struct_field(flat, "value")
    text = pc.coalesce(pc.struct_field(value, "stringValue"), pc.struct_field(value, "intValue"),
                       pc.cast(pc.struct_field(value, "doubleValue"), S),
                       pc.cast(pc.struct_field(value, "boolValue"), S))
    looked_up = {}
    for i, column in enumerate(COLUMNS):
        at = np.flatnonzero(codes == i)
        rows, first = np.unique(parents[at], return_index=True)
        index = np.full(n, -1)
        index[rows] = at[first]
        looked_up[column] = pc.take(text, pa.array(index, mask=index < 0))
    keep = codes < 0
    escaped = pc.replace_substring(pc.replace_substring(pc.struct_field(value, "stringValue"), "\\", "\\\\"),
                                   '"', '\\"')
    json_value = pc.coalesce(pc.binary_join_element_wise('"', escaped, '"', ""),
                             pc.struct_field(value, "intValue"),
                             pc.cast(pc.struct_field(value, "doubleValue"), S),
                             pc.cast(pc.struct_field(value, "boolValue"), S), "null")
    fragments = pc.binary_join_element_wise('"', pc.struct_field(flat, "key"), '":', json_value, "")
    fragments = pc.filter(fragments, pa.array(keep))
    counts = np.bincount(parents[keep], minlength=n)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    joined = pc.binary_join(pa.ListArray.from_arrays(offsets, fragments), ",")
    return looked_up, pc.binary_join_element_wise("{", joined, "}", "")


def main(path: str, out: str) -> dict:
    reader = pj.open_json(path, read_options=pj.ReadOptions(block_size=8 << 20),
                          parse_options=pj.ParseOptions(explicit_schema=SCHEMA,
                                                        unexpected_field_behavior="ignore"))
    rows, tokens, writer = 0, {c: 0 for c in TOKENS}, None
    try:
        for batch in reader:
            table = flatten(batch)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema, compression="zstd")
            writer.write_table(table)
            rows += table.num_rows
            for column in TOKENS:
                tokens[column] += pc.sum(table.column(column)).as_py() or 0
    finally:
        if writer is not None:
            writer.close()
    return {"rows": rows, **tokens}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:3])))
