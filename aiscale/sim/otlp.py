"""Write canonical spans and traces as OTLP JSON lines, as the Collector's file exporter does.

One ``ExportTraceServiceRequest`` per line (``resourceSpans -> scopeSpans -> spans``), camelCase
keys, hex ids, nanosecond times as strings, typed ``AnyValue`` attributes with ``intValue`` as
a string. Trace-level fields go on the root span under the shared convention:
``aiscale.task.id``, ``aiscale.trial``, ``aiscale.variant``, ``aiscale.outcome.success``,
``aiscale.outcome.score``, ``user.id``, ``session.id``, ``metadata`` (the step cap). Span JSON
is built column-wise with Arrow compute (no Python call per span); only lines are joined in Python.

Examples
--------
>>> import json, tempfile, pathlib
>>> from aiscale.sim.simulate import simulate
>>> sim = simulate(4, seed=1)
>>> path = write_otlp(sim.spans, sim.traces, pathlib.Path(tempfile.mkdtemp()) / "t.jsonl")
>>> request = json.loads(path.read_text().splitlines()[0])
>>> list(request["resourceSpans"][0])
['resource', 'scopeSpans']
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale import schema

SERVICE_NAME = "aiscale-sim-agent"
SCOPE = {"name": "aiscale.simulate", "version": "0.1.0"}
_OPERATION = {"llm": "chat", "tool": "execute_tool", "agent": "invoke_agent",
              "embedding": "embeddings", "retrieval": "retrieval"}
_SPAN_KIND = {"llm": "3", "embedding": "3"}  # CLIENT; everything else INTERNAL (1)
_STATUS = {"ok": '{"code":1}', "error": None, "unset": "{}"}
_TOKENS = {"input_tokens": "gen_ai.usage.input_tokens",
           "output_tokens": "gen_ai.usage.output_tokens",
           "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
           "cache_write_tokens": "gen_ai.usage.cache_creation.input_tokens",
           "reasoning_tokens": "gen_ai.usage.reasoning.output_tokens"}


def _join(*parts, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def joined_present(frags: list[pa.Array]) -> pa.Array:
    """Each row's non-null ``frags`` joined by commas ("" where all are null).

    Arrow's ``binary_join_element_wise(..., null_handling="skip")`` drops a row whose inputs
    are all null (pyarrow 26), which would shift every row after it: an empty last fragment
    keeps each row, and the comma it leaves is trimmed (a fragment never ends with one).

    Examples
    --------
    >>> joined_present([pa.array(['{"a"}', None]), pa.array([None, None], pa.string())]).to_pylist()
    ['{"a"}', '']
    """
    joined = pc.binary_join_element_wise(*frags, "", ",", null_handling="skip")
    return pc.utf8_rtrim(joined, characters=",")


def _escape(values: pa.Array) -> pa.Array:
    """JSON-escape strings (only the columns that hold a character needing it are rewritten)."""
    if not pc.any(pc.match_substring_regex(values, r'["\\\x00-\x1f]')).as_py():
        return values
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        values = pc.replace_substring(values, raw, escaped)
    control = pc.match_substring_regex(values, r"[\x00-\x1f]")
    if pc.any(control).as_py():
        raise ValueError("Strings with control characters other than \\n, \\r, \\t cannot be written.")
    return values


def _map(values: pa.Array, mapping: dict[str, str | None]) -> pa.Array:
    keys = pa.array(list(mapping), type=pa.string())
    return pc.take(pa.array(list(mapping.values()), type=pa.string()), pc.index_in(values, keys))


def _any_value(value) -> str:
    if isinstance(value, bool):
        return json.dumps({"boolValue": value})
    if isinstance(value, int):
        return json.dumps({"intValue": str(value)})
    if isinstance(value, float):
        return json.dumps({"doubleValue": value})
    if isinstance(value, str):
        return json.dumps({"stringValue": value}, ensure_ascii=False, separators=(",", ":"))
    return json.dumps({"stringValue": json.dumps(value)}, ensure_ascii=False, separators=(",", ":"))


def _kv(key: str, values: pa.Array, type_: str) -> pa.Array:
    """``{"key":K,"value":{T:V}}`` per row; null where the value is null."""
    if type_ == "string":
        return _join(f'{{"key":"{key}","value":{{"stringValue":"', _escape(values), '"}}')
    if type_ == "int":
        return _join(f'{{"key":"{key}","value":{{"intValue":"', values.cast(pa.string()), '"}}')
    if type_ == "double":
        return _join(f'{{"key":"{key}","value":{{"doubleValue":', values.cast(pa.string()), "}}")
    text = pc.if_else(values, "true", "false")
    return _join(f'{{"key":"{key}","value":{{"boolValue":', text, "}}")


def _extra_attributes(attributes: pa.Array) -> pa.Array:
    """Typed fragments for the JSON ``attributes`` column, parsed once per distinct value."""
    distinct = pc.unique(attributes.drop_null()).to_pylist()
    mapping = {}
    for text in distinct:
        items = json.loads(text) if text else {}
        frags = [f'{{"key":{json.dumps(k)},"value":{_any_value(v)}}}' for k, v in items.items()
                 if v is not None]
        mapping[text] = ",".join(frags) or None
    return _map(attributes, mapping) if mapping else pa.nulls(len(attributes), pa.string())


def _trace_fields(spans: pa.Table, traces: pa.Table) -> list[pa.Array]:
    """Trace-level attributes for root spans (null elsewhere)."""
    at = pc.index_in(spans["trace_id"], traces["trace_id"])
    at = pc.if_else(pc.is_null(spans["parent_id"]), at, pa.scalar(None, pa.int32()))
    fields = [("aiscale.task.id", "task_id", "string"), ("aiscale.trial", "trial", "int"),
              ("aiscale.variant", "variant", "string"),
              ("aiscale.outcome.success", "success", "bool"),
              ("aiscale.outcome.score", "score", "double"), ("user.id", "user_id", "string"),
              ("session.id", "session_id", "string"), ("metadata", "metadata", "string")]
    return [_kv(key, pc.take(traces[col], at).combine_chunks(), type_) for key, col, type_ in fields]


def span_json(spans: pa.Table, traces: pa.Table) -> pa.Array:
    """One OTLP JSON span object per canonical span row."""
    col = {name: spans[name].combine_chunks() for name in spans.column_names}
    frags = [_kv("gen_ai.operation.name", _map(col["kind"], _OPERATION), "string"),
             _kv("gen_ai.provider.name", col["provider"], "string"),
             _extra_attributes(col["attributes"]),
             _kv("gen_ai.response.model", col["model"], "string"),
             *[_kv(key, col[c], "int") for c, key in _TOKENS.items()],
             _kv("gen_ai.tool.name", col["tool_name"], "string"),
             _kv("gen_ai.tool.call.arguments", col["tool_arguments"], "string"),
             _kv("error.type", col["error_type"], "string"), *_trace_fields(spans, traces)]
    attributes = joined_present(frags)
    error = _join('{"message":"', _escape(pc.coalesce(col["error_type"], "error")), '","code":2}')
    status = pc.coalesce(_map(col["status"], _STATUS), error)
    nanos = [pc.multiply(col[c].cast(pa.int64()), 1000).cast(pa.string())
             for c in ("start_time", "end_time")]
    parent = pc.coalesce(_join('"parentSpanId":"', col["parent_id"], '",'), "")
    return _join('{"traceId":"', col["trace_id"], '","spanId":"', col["span_id"], '",', parent,
                 '"name":"', _escape(pc.coalesce(col["name"], "")), '","kind":',
                 pc.coalesce(_map(col["kind"], _SPAN_KIND), "1"), ',"startTimeUnixNano":"',
                 nanos[0], '","endTimeUnixNano":"', pc.coalesce(nanos[1], nanos[0]),
                 '","attributes":[', pc.coalesce(attributes, ""), '],"status":', status, "}")


def _line_prefix() -> str:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": SERVICE_NAME}}]}
    return ('{"resourceSpans":[{"resource":' + json.dumps(resource, separators=(",", ":"))
            + ',"scopeSpans":[{"scope":' + json.dumps(SCOPE, separators=(",", ":"))
            + ',"spans":[')


def as_table(frame: pd.DataFrame | pa.Table, table: str) -> pa.Table:
    """A canonical frame as an Arrow table with exactly the schema of ``table`` (fast path for
    frames that already have the canonical dtypes, else :func:`aiscale.schema.conform`)."""
    target = schema.schema_of(table)
    if isinstance(frame, pd.DataFrame):
        try:
            frame = pa.Table.from_pandas(frame[list(target.names)], preserve_index=False)
        except (KeyError, pa.ArrowException):
            return schema.conform(frame, table)
    return frame.select(list(target.names)).cast(target)


def _lines(objects: pa.Array, trace_ids: pa.ChunkedArray, traces_per_line: int) -> memoryview:
    """Join span objects into request lines (in Arrow) and return the bytes of all lines."""
    ids = trace_ids.to_numpy()
    new_trace = np.r_[True, ids[1:] != ids[:-1]]
    line_of = (np.cumsum(new_trace) - 1) // traces_per_line
    bounds = np.r_[0, np.flatnonzero(np.diff(line_of)) + 1, len(ids)].astype(np.int32)
    grouped = pa.ListArray.from_arrays(pa.array(bounds), objects)
    lines = _join(_line_prefix(), pc.binary_join(grouped, ","), "]}]}]}\n")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:]
    return memoryview(lines.buffers()[2])[offsets[0]:offsets[len(lines)]]


def write_otlp(spans: pd.DataFrame | pa.Table, traces: pd.DataFrame | pa.Table, path: str | Path,
               *, append: bool = False, traces_per_line: int = 25) -> Path:
    """Write spans (and their trace rows) to ``path`` as OTLP JSON lines.

    Parameters
    ----------
    spans, traces : DataFrame or pyarrow.Table
        Canonical spans and traces (:mod:`aiscale.schema`); spans of a trace should be
        contiguous (a trace split over lines is still valid OTLP).
    path : str or Path
        The output file.
    append : bool, default=False
        Add lines to an existing file (for chunked writing).
    traces_per_line : int, default=25
        How many traces each ``ExportTraceServiceRequest`` line carries.

    Returns
    -------
    Path
    """
    spans, traces = as_table(spans, "spans"), as_table(traces, "traces")
    path = Path(path)
    with open(path, "ab" if append else "wb") as handle:
        if len(spans):
            handle.write(_lines(span_json(spans, traces), spans["trace_id"], traces_per_line))
    return path
