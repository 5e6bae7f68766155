"""Langfuse exports: observations, traces and scores (CSV, JSON, JSONL; snake_case or camelCase).

Observations (``id``, ``trace_id``, ``type``, ``parent_observation_id``, ``start_time``,
``end_time``, ``name``, ``provided_model_name`` / ``model``, ``usage_details``,
``cost_details``, ``total_cost``, ``level``, ``status_message``; the public API's camelCase
``traceId``, ``usageDetails``, ... is read the same) become spans. Only GENERATION
observations are LLM calls with tokens and ``reported_cost_usd``; usage on other types stays in
``attributes``. ``usage_details`` counts cache and reasoning tokens apart from ``input`` and
``output`` (its ``total`` is the sum of every key); they are added back so that input includes
cache reads and writes and output includes reasoning (a source whose ``total`` equals
``input + output`` counted them inside, and is kept as is); a usage value that is not a whole
number quarantines the observation. Level ERROR is an error span. ``attributes`` is the
observation as exported.

Traces (``id``, ``timestamp``, ``user_id``, ``session_id``, ``metadata``) give trace rows.
Scores (``trace_id``, ``name``, ``value``, ``data_type``) give outcomes: a BOOLEAN score sets
``success``; a NUMERIC score (else the boolean's 0/1) sets ``score``; with several names, the
first of ``SCORE_PREFERENCE`` present, else the first by name. Rows are file records, mapped in
DuckDB a batch at a time (:mod:`aiscale.loaders._platform_sql` states the rules for times and
numbers); nothing is done per row in Python.

Examples
--------
>>> usage_columns({"input": 20, "input_cached_tokens": 80, "output": 5,
...                "output_reasoning_tokens": 3, "total": 108})
(100, 8, 80, None, 3)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from aiscale import schema
from aiscale.loaders._platform import classify_keys, number, sniff_platform
from aiscale.loaders._platform_map import mapped_batches
from aiscale.loaders._platform_rows import arrow_chunk
from aiscale.loaders._platform_sql import (
    RECORD_TEXT,
    connect,
    extract,
    finished,
    first_problem,
    number_problem,
    run,
    spellings,
    time_problem,
    time_sql,
)
from aiscale.loaders._platform_sql import number as number_sql
from aiscale.loaders._records import LINE, ROW
from aiscale.loaders.base import ArrowChunk, Chunk, Quarantined

if TYPE_CHECKING:
    import pandas as pd

NAME = "langfuse"
PRIORITY = 40
READS_GZIP = True
KINDS = {"GENERATION": "llm", "EMBEDDING": "embedding", "AGENT": "agent", "TOOL": "tool",
         "CHAIN": "chain", "RETRIEVER": "retrieval", "EVALUATOR": "evaluator",
         "GUARDRAIL": "guardrail", "SPAN": "other", "EVENT": "other"}
SCORE_PREFERENCE = ("success", "correctness", "correct", "pass", "score", "accuracy")
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def _fields(*names: str) -> dict[str, list[tuple[str, ...]]]:
    return {name: list(spellings(name)) for name in names}


_KIND = "CASE upper(type) " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in KINDS.items()) + " ELSE 'other' END"
_OBSERVATIONS = finished(extract({
    **_fields("id", "trace_id", "type", "parent_observation_id", "start_time", "end_time", "name",
              "provided_model_name", "model", "total_cost", "calculated_total_cost", "level",
              "status_message", "user_id", "session_id"),
    "detail_cost": [("cost_details", "total"), ("costDetails", "total")]}) + f"""
, u AS (SELECT *, {_KIND} AS kind, {time_sql("start_time")} AS start_ts, {time_sql("end_time")} AS end_ts,
    CASE WHEN {_KIND} = 'llm' THEN json_extract({LINE}, ['$.usage_details', '$.usageDetails', '$.usage']) END AS _u
  FROM y),
z AS (SELECT *, CASE WHEN kind = 'llm' THEN coalesce(
        CASE WHEN len(json_keys(coalesce(_u[1], _u[2], '{{}}'))) > 0 THEN coalesce(_u[1], _u[2]) END, _u[3]) END AS _usage
  FROM u),
e AS (SELECT z.{ROW}, j.key AS k, TRY_CAST(j.value AS DOUBLE) AS v, j.type AS t FROM z, json_each(z._usage) AS j
      WHERE json_type(z._usage) = 'OBJECT' AND j.type <> 'NULL'),
n AS (SELECT {ROW}, k, t, CASE WHEN t IN ('UBIGINT', 'BIGINT') OR (t = 'DOUBLE' AND isfinite(v) AND v = floor(v))
                             THEN v END AS v FROM e),
a AS (SELECT {ROW},
    count(v) FILTER (k <> 'total') AS n_parts, sum(v) FILTER (k <> 'total') AS parts,
    max(v) FILTER (k = 'input') AS base_in, max(v) FILTER (k = 'output') AS base_out,
    max(v) FILTER (k = 'total') AS total,
    sum(v) FILTER (k <> 'total' AND (starts_with(k, 'input') OR (contains(k, 'cache') AND NOT starts_with(k, 'output'))))
        AS inp,
    sum(v) FILTER (k <> 'total' AND (starts_with(k, 'output') OR k = 'reasoning')) AS outp,
    sum(v) FILTER (k <> 'total' AND (contains(k, 'cache_read') OR contains(k, 'cached'))) AS cache_read_tokens,
    sum(v) FILTER (k <> 'total' AND (contains(k, 'cache_creation') OR contains(k, 'cache_write')))
        AS cache_write_tokens,
    sum(v) FILTER (k <> 'total' AND contains(k, 'reasoning')) AS reasoning_tokens,
    string_agg(k, ', ' ORDER BY k) FILTER (v IS NULL AND t IN ('UBIGINT', 'BIGINT', 'DOUBLE')) AS not_whole
  FROM n GROUP BY {ROW}),
w AS (SELECT z.*, a.* EXCLUDE ({ROW}), a.total IS NOT NULL AND a.base_in IS NOT NULL
        AND a.total = a.base_in + coalesce(a.base_out, 0) AND a.total <> a.parts AS inclusive
      FROM z LEFT JOIN a USING ({ROW}))
SELECT {ROW}, {LINE}, trace_id, id AS span_id, nullif(parent_observation_id, '') AS parent_id, kind, name,
    start_ts AS start_time, end_ts AS end_time,
    CASE WHEN upper(level) = 'ERROR' THEN 'error' ELSE 'unset' END AS status,
    CASE WHEN upper(level) = 'ERROR' THEN left(status_message, 200) END AS error_type,
    NULL::VARCHAR AS provider, coalesce(provided_model_name, model) AS model,
    CASE WHEN n_parts > 0 THEN CASE WHEN inclusive THEN base_in ELSE inp END END AS input_tokens,
    CASE WHEN n_parts > 0 THEN CASE WHEN inclusive THEN base_out ELSE outp END END AS output_tokens,
    CASE WHEN n_parts > 0 THEN cache_read_tokens END AS cache_read_tokens,
    CASE WHEN n_parts > 0 THEN cache_write_tokens END AS cache_write_tokens,
    CASE WHEN n_parts > 0 THEN reasoning_tokens END AS reasoning_tokens,
    CASE WHEN kind = 'llm' THEN coalesce({number_sql("total_cost")}, {number_sql("calculated_total_cost")},
                                         {number_sql("detail_cost")}) END AS reported_cost_usd,
    CASE WHEN kind = 'tool' THEN name END AS tool_name,
    CASE WHEN kind = 'tool' THEN CASE json_type(coalesce(json_extract({LINE}, '$.input'), 'null'))
        WHEN 'NULL' THEN NULL WHEN 'VARCHAR' THEN json_extract_string({LINE}, '$.input')
        ELSE json_extract({LINE}, '$.input')::VARCHAR END END AS tool_arguments,
    {RECORD_TEXT} AS attributes,
    NULL::VARCHAR AS _how, user_id, session_id,
    {first_problem(time_problem("start_time", "start_time", "start_ts"), time_problem("end_time", "end_time", "end_ts"),
                   "CASE WHEN kind = 'llm' AND not_whole IS NOT NULL THEN 'usage_details is not whole numbers: ' "
                   "|| not_whole END",
                   f"CASE WHEN kind = 'llm' THEN {number_problem('total_cost', 'total_cost')} END")} AS _problem
FROM w""", ("user_id", "session_id"))
_TRACES = extract(_fields("id", "timestamp", "user_id", "session_id")) + f"""
, z AS (SELECT *, {time_sql("timestamp")} AS started_at,
    CASE WHEN _json_ok THEN json_extract({LINE}, '$.metadata') END AS _metadata FROM y)
SELECT {ROW}, {LINE}, nullif(trim(id), '') AS trace_id, started_at, user_id, session_id,
    CASE WHEN NOT _json_ok THEN NULL
        WHEN json_type(coalesce(_metadata, 'null')) = 'NULL' THEN NULL
        WHEN json_type(_metadata) = 'VARCHAR' THEN _metadata ->> '$'
        ELSE _metadata::VARCHAR END AS metadata,
    {first_problem("CASE WHEN nullif(trim(id), '') IS NULL THEN 'missing trace id (`id`)' END",
                   time_problem("timestamp", "timestamp", "started_at"))} AS _problem
FROM z"""
_SCORES = extract(_fields("trace_id", "name", "data_type", "value")) + f"""
SELECT {ROW}, {LINE}, trace_id, name, data_type, value, {first_problem("NULL")} AS _problem FROM y"""


def sniff(path: Path, head: bytes) -> bool:
    """A Langfuse observations, traces or scores export."""
    return (sniff_platform(path, head) or "").startswith("langfuse")


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield span, trace or outcome rows of a Langfuse export, by what the file holds."""
    import pandas as pd

    path = Path(path)
    kinds: list[str] = []  # the file's record type, from its first batch

    def query(batch: pa.Table) -> str:
        kinds.append(kinds[0] if kinds else _kind_of(batch))
        return {"langfuse-observations": _OBSERVATIONS, "langfuse-scores": _SCORES}.get(kinds[0], _TRACES)

    scores: list[pd.DataFrame] = []
    for rows, bad in mapped_batches(path, query):
        kind = kinds[0] if kinds else None
        if rows is None or not rows.num_rows:
            yield Chunk(quarantined=bad, rows_read=len(bad), unit="row")
        elif kind == "langfuse-observations":
            yield arrow_chunk(rows, bad, str(path), NAME, ("user_id", "session_id"))
        elif kind == "langfuse-scores":
            good, more = _checked_scores(rows.to_pandas(), path)
            scores.append(good)
            yield Chunk(quarantined=bad + more, rows_read=rows.num_rows + len(bad), unit="row")
        else:
            chunk = ArrowChunk(None, schema.conform_table(rows, "traces"), quarantined=bad,
                               rows_read=rows.num_rows + len(bad))
            chunk.unit = "row"
            yield chunk
    if scores:
        yield Chunk(traces=score_outcomes(pd.concat(scores, ignore_index=True)), rows_read=0, unit="row")


def _kind_of(batch: pa.Table) -> str:
    """The record type, from the keys of the batch's first records."""
    keys: set[str] = set()
    for line in batch.column(LINE).slice(0, 50).to_pylist():
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            continue
        keys |= set(value) if isinstance(value, dict) else set()
    return classify_keys(keys) or "langfuse-traces"


def usage_columns(usage: Any) -> tuple[int | None, ...]:
    """``(input, output, cache_read, cache_write, reasoning)`` in the canonical convention.

    The loader's own SQL, run on one usage object (see the module docstring for the rule).
    """
    line = json.dumps({"id": "o", "trace_id": "t", "type": "GENERATION", "usage_details": usage})
    batch = pa.table({LINE: [line], ROW: [1]})
    row = run(connect(), batch, _OBSERVATIONS).to_pylist()[0]
    return tuple(None if row[c] is None else int(row[c]) for c in TOKENS)


def _checked_scores(records: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[Quarantined]]:
    import pandas as pd

    frame = pd.DataFrame({"trace_id": records["trace_id"].astype("string"),
                          "name": records["name"].astype("string"),
                          "data_type": records["data_type"].astype("string").str.upper().fillna("NUMERIC"),
                          "value": number(records["value"]), "row": records[ROW]})
    rules = [("missing trace_id", frame["trace_id"].isna() | (frame["trace_id"].str.strip() == "")),
             ("missing score name", frame["name"].isna()),
             ("score value is not a number (categorical scores are not outcomes)",
              frame["value"].isna() & (frame["data_type"] != "CATEGORICAL")),
             ("boolean score is not 0 or 1",
              (frame["data_type"] == "BOOLEAN") & ~frame["value"].isin([0, 1]) & frame["value"].notna())]
    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    for text, mask in rules:
        reason = reason.mask(reason.isna() & mask.fillna(False).astype(bool), text)
    bad = [Quarantined(str(path), int(row), str(why)) for row, why in
           zip(frame.loc[reason.notna(), "row"], reason[reason.notna()], strict=True)]
    good = frame.loc[reason.isna() & (frame["data_type"] != "CATEGORICAL")]
    return good, bad


def score_outcomes(scores: pd.DataFrame) -> pd.DataFrame:
    """One outcome row per trace from its scores (see the module docstring for the rule)."""
    import pandas as pd

    rank = {name: i for i, name in enumerate(SCORE_PREFERENCE)}
    scores = scores.assign(_rank=scores["name"].str.lower().map(rank).fillna(len(rank)))
    scores = scores.sort_values(["trace_id", "_rank", "name", "row"], kind="stable")
    boolean = scores[scores["data_type"] == "BOOLEAN"].drop_duplicates("trace_id")
    numeric = scores[scores["data_type"] != "BOOLEAN"].drop_duplicates("trace_id")
    out = pd.DataFrame({"trace_id": scores["trace_id"].unique()})
    out = out.merge(boolean[["trace_id", "value"]].rename(columns={"value": "bool"}), how="left")
    out = out.merge(numeric[["trace_id", "value"]].rename(columns={"value": "score"}), how="left")
    out["success"] = out["bool"].map({1.0: True, 0.0: False}).astype("boolean")
    out["score"] = out["score"].fillna(out["bool"])
    return out[["trace_id", "success", "score"]]
