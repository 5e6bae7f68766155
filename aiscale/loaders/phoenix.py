"""Phoenix spans dataframe (``get_spans_dataframe()`` saved as Parquet or JSONL), OpenInference.

Columns read: ``context.trace_id``, ``context.span_id`` (column or index), ``parent_id``,
``name``, ``span_kind``, ``start_time``, ``end_time`` (ISO text, timestamps, or numbers since
1970 such as the milliseconds ``DataFrame.to_json`` writes, unit by magnitude),
``status_code``, ``status_message``, ``events`` and the ``attributes.*`` columns (flattened, or one
nested ``attributes`` object), mapped with OpenInference semantics
(:mod:`aiscale.loaders._openinference`): ``llm.model_name``, ``llm.provider`` /
``llm.system``, ``llm.token_count.*`` (LLM spans only; CHAIN/AGENT totals stay in
``attributes``), ``llm.cost.*`` as ``reported_cost_usd``, ``tool.name``, ``input.value`` of
TOOL spans as the tool arguments, and ``session.id``, ``user.id``, ``metadata`` for the trace.

``attributes`` is the row as exported, the ``attributes.`` prefix taken off its keys. Rows are
spans, mapped in DuckDB a batch at a time; a row is quarantined with its file and row (JSONL
line) number and the rule it broke (:mod:`aiscale.loaders._platform_sql`).

Examples
--------
>>> sniff(Path("spans.jsonl"), b'{"context.span_id": "a", "context.trace_id": "t", "span_kind": "LLM"}')
True
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from aiscale.loaders._openinference import (
    COST_COMPLETION,
    COST_PROMPT,
    COST_TOTAL,
    TOKENS,
    TOTAL,
    map_openinference,
)
from aiscale.loaders._platform import demote_llm_wrappers, sniff_platform
from aiscale.loaders._platform_sql import (
    extract,
    first_problem,
    mapped_batches,
    number,
    number_problem,
    path,
    time_problem,
    time_sql,
    with_flags,
)
from aiscale.loaders._records import LINE, ROW
from aiscale.loaders.base import Chunk

NAME = "phoenix"
PRIORITY = 40
READS_GZIP = True
_PREFIX = "attributes."
_STATUS = {"OK": "ok", "ERROR": "error", "UNSET": "unset"}
_TEXT = ("openinference.span.kind", "llm.model_name", "llm.provider", "llm.system", "tool.name", "session.id",
         "user.id")
_NUMBERS = (*TOKENS.values(), TOTAL, COST_TOTAL, COST_PROMPT, COST_COMPLETION)
_EXCEPTION = (f"list_filter(try(from_json(json_extract({LINE}, '$.events'), "
              """'[{"name": "VARCHAR", "attributes": "JSON"}]')), lambda e: e.name = 'exception')[1].attributes""")


def _keys(key: str, nested: bool) -> list[tuple[str, ...]]:
    """Where an OpenInference key is: a flattened column, or inside a nested ``attributes`` object."""
    return [(_PREFIX + key,), *((("attributes", key), ("attributes", *key.split("."))) if nested else ())]


# "attributes.llm.model_name": -> "llm.model_name": (only keys: a key is a string followed by a colon)
_ATTRIBUTES = (f"regexp_replace(rtrim({LINE}, chr(10) || chr(13)), "
               r"""'"attributes\.([^"\\]*)"(\s*):', '"\1"\2:', 'g')""")
_STATUS_SQL = "CASE upper(status_code) " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _STATUS.items()) + " END"
_KIND = 'upper(coalesce(span_kind, "openinference.span.kind"))'


def _query(nested: bool) -> str:
    """The query of a batch: flattened ``attributes.*`` columns, and also a nested ``attributes`` object."""
    fields = {"trace_id": [("context.trace_id",), ("trace_id",)], "span_id": [("context.span_id",), ("span_id",)],
              **{name: [(name,)] for name in ("parent_id", "name", "span_kind", "start_time", "end_time",
                                              "status_code", "status_message")},
              **{key: _keys(key, nested) for key in (*_TEXT, *_NUMBERS, "metadata")}}
    tool_input = ", ".join(f"json_extract_string({LINE}, '{path(*keys)}')" for keys in _keys("input.value", nested))
    rules = [time_problem("start_time", "start_time", "start_ts"), time_problem("end_time", "end_time", "end_ts"),
             *(f"CASE WHEN {_KIND} = 'LLM' THEN {number_problem(k, k)} END" for k in _NUMBERS)]
    return extract(fields) + f"""
, z AS (SELECT *, {time_sql("start_time")} AS start_ts, {time_sql("end_time")} AS end_ts FROM y)
SELECT {ROW}, {LINE}, trace_id, span_id, nullif(parent_id, '') AS parent_id, name,
    coalesce(span_kind, "openinference.span.kind") AS span_kind, start_ts AS start_time, end_ts AS end_time,
    coalesce({_STATUS_SQL}, 'unset') AS status,
    CASE WHEN {_STATUS_SQL} = 'error' THEN coalesce(
        {_EXCEPTION} ->> '$."exception.type"', {_EXCEPTION} ->> '$."exception.message"',
        nullif(left(status_message, 200), '')) END AS error_type,
    {", ".join(f'"{k}"' for k in _TEXT)}, {", ".join(f'{number(k)} AS "{k}"' for k in _NUMBERS)},
    CASE WHEN {_KIND} = 'TOOL' THEN coalesce({tool_input}) END AS "input.value",
    metadata, {_ATTRIBUTES} AS attributes, {first_problem(*rules)} AS _problem
FROM z"""


_FLAT, _NESTED = _query(False), _query(True)


def sniff(path: Path, head: bytes) -> bool:
    """A Parquet/JSONL/JSON/CSV file whose records have ``context.span_id`` / ``span_kind``."""
    return sniff_platform(path, head) == "phoenix"


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield span and trace rows of a Phoenix spans dataframe file, chunk by chunk."""
    path = Path(path)
    for records, bad in mapped_batches(path, lambda batch: _NESTED if _nested(batch) else _FLAT):
        if not len(records):
            yield Chunk(quarantined=bad, rows_read=len(bad))
            continue
        spans, traces = to_spans(records, path)
        yield Chunk(spans=spans, traces=traces, quarantined=bad, rows_read=len(records) + len(bad))


def _nested(batch: pa.Table) -> bool:
    """Whether the batch's first records keep attributes as one nested object."""
    return any('"attributes":' in line for line in batch.column(LINE).slice(0, 10).to_pylist())


def to_spans(records: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map one batch of Phoenix rows (the query's columns) to canonical spans and trace rows.

    ``attributes`` is the row as exported with the ``attributes.`` prefix taken off its keys,
    plus aiscale's flags.
    """
    mapped, keep = map_openinference(records[[*_TEXT, *_NUMBERS, "metadata"]], kind=records["span_kind"])
    spans = mapped.drop(columns=["session_id", "user_id", "metadata"])
    for name in ("trace_id", "span_id", "parent_id", "name", "start_time", "end_time", "status", "error_type"):
        spans[name] = records[name]
    spans["status"] = spans["status"].astype(object)
    is_tool = spans["kind"] == "tool"
    spans["tool_name"] = spans["tool_name"].where(~is_tool | spans["tool_name"].notna(), spans["name"])
    spans["tool_arguments"] = records["input.value"].where(is_tool)
    spans["attributes"] = with_flags(records["attributes"], {
        flag: keep[flag] for flag in ("aiscale.usage_missing", "aiscale.tokens_normalised")})
    spans["source"] = NAME
    spans["source_file"] = str(path)
    spans["source_row"] = records[ROW].to_numpy()
    spans = demote_llm_wrappers(spans)
    traces = pd.DataFrame({"trace_id": spans["trace_id"], "session_id": mapped["session_id"],
                           "user_id": mapped["user_id"], "metadata": mapped["metadata"],
                           "_root": spans["parent_id"].isna()})
    traces = traces.sort_values("_root", ascending=False, kind="stable").drop(columns="_root")
    traces = traces.groupby("trace_id", sort=False, as_index=False).first()
    return spans, traces
