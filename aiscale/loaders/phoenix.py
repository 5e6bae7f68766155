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
spans, mapped in DuckDB a batch at a time by one query (nothing per row in Python); a row is quarantined with its file and row (JSONL
line) number and the rule it broke (:mod:`aiscale.loaders._platform_sql`).

Examples
--------
>>> sniff(Path("spans.jsonl"), b'{"context.span_id": "a", "context.trace_id": "t", "span_kind": "LLM"}')
True
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from aiscale.loaders._openinference import (
    COST_COMPLETION,
    COST_PROMPT,
    COST_TOTAL,
    KINDS,
    TOKENS,
    TOTAL,
)
from aiscale.loaders._platform import sniff_platform
from aiscale.loaders._platform_map import mapped_batches
from aiscale.loaders._platform_rows import arrow_chunk
from aiscale.loaders._platform_sql import (
    extract,
    finished,
    first_problem,
    normalised,
    number,
    number_problem,
    time_problem,
    time_sql,
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
TRACE_FIELDS = ("session_id", "user_id", "metadata")
_NUMBERS = (*TOKENS.values(), TOTAL, COST_TOTAL, COST_PROMPT, COST_COMPLETION)
_EXCEPTION = (f"list_filter(try(from_json(json_extract({LINE}, '$.events'), "
              """'[{"name": "VARCHAR", "attributes": "JSON"}]')), lambda e: e.name = 'exception')[1].attributes""")


def _keys(key: str, nested: bool) -> list[tuple[str, ...]]:
    """Where an OpenInference key is: a flattened column, or inside a nested ``attributes`` object."""
    return [(_PREFIX + key,), *((("attributes", key), ("attributes", *key.split("."))) if nested else ())]


# "attributes.llm.model_name": -> "llm.model_name": (only keys: a key is a string followed by a colon);
# the line loses the newline before it and its trailing carriage returns, as its own newline
# (leading spaces are kept, as exported)
_RECORD = f"ltrim({LINE}, chr(10))"
_ATTRIBUTES = (f"regexp_replace(CASE WHEN ends_with({LINE}, chr(13)) THEN rtrim({_RECORD}, chr(13)) ELSE {_RECORD} END, "
               r"""'"attributes\.([^"\\]*)"(\s*):', '"\1"\2:', 'g')""")
_STATUS_SQL = "CASE upper(status_code) " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _STATUS.items()) + " END"
_RAW_KIND = 'upper(coalesce(span_kind, "openinference.span.kind"))'
_KIND = f"CASE {_RAW_KIND} " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in KINDS.items()) + " ELSE 'other' END"
_INPUT, _OUTPUT, _HOW = normalised(*(number(TOKENS[c]) for c in ("input_tokens", "output_tokens", "cache_read_tokens",
                                                                 "cache_write_tokens", "reasoning_tokens")),
                                   number(TOTAL))


def _query(nested: bool) -> str:
    """The query of a batch: flattened ``attributes.*`` columns, and also a nested ``attributes`` object."""
    fields = {"trace_id": [("context.trace_id",), ("trace_id",)], "span_id": [("context.span_id",), ("span_id",)],
              **{name: [(name,)] for name in ("parent_id", "name", "span_kind", "start_time", "end_time",
                                              "status_code", "status_message")},
              **{key: _keys(key, nested) for key in (*_TEXT, *_NUMBERS, "metadata", "input.value")}}
    rules = [time_problem("start_time", "start_time", "start_ts"), time_problem("end_time", "end_time", "end_ts"),
             *(f"CASE WHEN {_RAW_KIND} = 'LLM' THEN {number_problem(k, k)} END" for k in _NUMBERS)]
    llm = "CASE WHEN kind = 'llm' THEN"
    return finished(extract(fields, lstrip="\n") + f"""
, z AS (SELECT *, {time_sql("start_time")} AS start_ts, {time_sql("end_time")} AS end_ts, {_KIND} AS kind FROM y)
SELECT {ROW}, {LINE}, trace_id, span_id, nullif(parent_id, '') AS parent_id, kind, name,
    start_ts AS start_time, end_ts AS end_time, coalesce({_STATUS_SQL}, 'unset') AS status,
    CASE WHEN {_STATUS_SQL} = 'error' THEN coalesce(
        {_EXCEPTION} ->> '$."exception.type"', {_EXCEPTION} ->> '$."exception.message"',
        nullif(left(status_message, 200), '')) END AS error_type,
    coalesce("llm.provider", "llm.system") AS provider, "llm.model_name" AS model,
    {llm} {_INPUT} END AS input_tokens, {llm} {_OUTPUT} END AS output_tokens,
    {", ".join(f'{llm} {number(TOKENS[c])} END AS {c}' for c in ("cache_read_tokens", "cache_write_tokens",
                                                                  "reasoning_tokens"))},
    {llm} coalesce({number(COST_TOTAL)}, {number(COST_PROMPT)} + {number(COST_COMPLETION)}) END AS reported_cost_usd,
    CASE WHEN kind = 'tool' THEN coalesce("tool.name", name) ELSE "tool.name" END AS tool_name,
    CASE WHEN kind = 'tool' THEN "input.value" END AS tool_arguments, {_ATTRIBUTES} AS attributes,
    {llm} {_HOW} END AS _how, "session.id" AS session_id, "user.id" AS user_id, metadata,
    {first_problem(*rules)} AS _problem
FROM z""", TRACE_FIELDS)


_FLAT, _NESTED = _query(False), _query(True)


def sniff(path: Path, head: bytes) -> bool:
    """A Parquet/JSONL/JSON/CSV file whose records have ``context.span_id`` / ``span_kind``."""
    return sniff_platform(path, head) == "phoenix"


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield span and trace rows of a Phoenix spans dataframe file, chunk by chunk."""
    path = Path(path)
    for rows, bad in mapped_batches(path, lambda batch: _NESTED if _nested(batch) else _FLAT):
        if rows is None or not rows.num_rows:
            yield Chunk(quarantined=bad, rows_read=len(bad))
            continue
        yield arrow_chunk(rows, bad, str(path), NAME, TRACE_FIELDS, roots_first=True)


def _nested(batch: pa.Table) -> bool:
    """Whether the batch's first records keep attributes as one nested object."""
    return any('"attributes":' in line for line in batch.column(LINE).slice(0, 10).to_pylist())
