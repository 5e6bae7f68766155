"""LangSmith run exports (JSONL, JSON or Parquet): one row per run, LLM runs counted once.

Fields read: ``id``, ``trace_id``, ``parent_run_id``, ``name``, ``run_type`` (llm, chain, tool,
retriever, embedding, prompt, parser), ``start_time``, ``end_time``, ``status``, ``error``;
for ``llm`` runs only: ``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
``prompt_token_details`` (``cache_read``, ``cache_creation``), ``completion_token_details``
(``reasoning``), or else the SDK's ``usage_metadata`` (the one in ``outputs`` when there is one,
else ``extra.metadata``'s; one that is no object gives no counts); ``total_cost`` (or prompt +
completion cost) as ``reported_cost_usd``; ``extra.metadata.ls_provider`` /
``ls_model_name`` (the response's ``outputs.model`` first; else ``extra.invocation_params.model``).
``attributes`` is the run as exported (so chain and root runs that carry their children's totals
keep them there, never counted). For the trace (from the root run):
``reference_example_id`` is the task id (repeated runs of one example are trials 0, 1, ...
by start time), ``feedback_stats`` the outcome (``score`` = the mean of the chosen key,
``success`` = it when every value is 0 or 1), metadata ``user_id`` and ``thread_id`` /
``session_id``. Records are mapped in DuckDB, a batch at a time, by one query and nothing per
row in Python (:mod:`aiscale.loaders._platform_sql`, which also states the quarantine rules for
times and counts).

Examples
--------
>>> sniff(Path("runs.jsonl"), b'{"id": "r", "trace_id": "t", "run_type": "llm", "dotted_order": "x"}')
True
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aiscale import schema
from aiscale.loaders._platform import sniff_platform
from aiscale.loaders._platform_map import mapped_batches
from aiscale.loaders._platform_rows import arrow_chunk
from aiscale.loaders._platform_sql import (
    RECORD_TEXT,
    connect,
    extract,
    finished,
    first_problem,
    normalised,
    number,
    number_problem,
    run,
    time_problem,
    time_sql,
)
from aiscale.loaders._records import LINE, ROW
from aiscale.loaders.base import ArrowChunk, Chunk

NAME = "langsmith"
PRIORITY = 40
READS_GZIP = True
KINDS = {"llm": "llm", "chain": "chain", "tool": "tool", "retriever": "retrieval",
         "embedding": "embedding", "prompt": "other", "parser": "other"}
_STATUS = {"success": "ok", "error": "error", "pending": "unset"}
FEEDBACK_PREFERENCE = ("correctness", "correct", "success", "pass", "score", "accuracy")
_USAGE = {"input": ("input_tokens",), "output": ("output_tokens",), "total": ("total_tokens",),
          "cache_read": ("input_token_details", "cache_read"),
          "cache_creation": ("input_token_details", "cache_creation"),
          "reasoning": ("output_token_details", "reasoning")}
_USAGE_AT = {"outputs": ("outputs",), "metadata": ("extra", "metadata")}
_DETAILS = {"prompt_token_details": ("cache_read", "cache_creation", "cache_write"),
            "completion_token_details": ("reasoning",)}
_FIELDS = {
    **{name: [(name,)] for name in (
        "id", "trace_id", "parent_run_id", "name", "run_type", "start_time", "end_time", "status", "error",
        "prompt_cost", "completion_cost", "total_cost", "reference_example_id", "prompt_tokens",
        "completion_tokens", "total_tokens", "feedback_stats")},
    # the SDK's usage_metadata (in outputs, else extra.metadata): which one holds it, and its counts
    "usage_in_outputs": [("outputs", "usage_metadata")],
    **{f"{where}_{name}": [(*at, "usage_metadata", *keys)] for where, at in _USAGE_AT.items()
       for name, keys in _USAGE.items()},
    **{f"{detail}_{key}": [(detail, key)] for detail, keys in _DETAILS.items() for key in keys},
    "provider": [("extra", "metadata", "ls_provider")],
    "model": [("outputs", "model"), ("extra", "metadata", "ls_model_name"), ("extra", "invocation_params", "model")],
    "user_id": [("extra", "metadata", "user_id")],
    "session_id": [("extra", "metadata", "thread_id"), ("extra", "metadata", "session_id"),
                   ("extra", "metadata", "conversation_id")],
}


def _usage(name: str) -> str:
    """A count of usage_metadata: the one in ``outputs`` when there is one, else extra.metadata's."""
    return f"CASE WHEN usage_in_outputs IS NULL THEN metadata_{name} ELSE outputs_{name} END"


_COUNT_SQL = {  # count: the run's own field, else usage_metadata's
    "input": f"coalesce(prompt_tokens, {_usage('input')})",
    "output": f"coalesce(completion_tokens, {_usage('output')})",
    "total": f"coalesce(total_tokens, {_usage('total')})",
    "cache_read": f"coalesce(prompt_token_details_cache_read, {_usage('cache_read')})",
    "cache_write": "coalesce(prompt_token_details_cache_creation, prompt_token_details_cache_write, "
                   f"{_usage('cache_creation')})",
    "reasoning": f"coalesce(completion_token_details_reasoning, {_usage('reasoning')})",
}
_COUNTS = ("input", "output", "total", "cache_read", "cache_write", "reasoning")
_KIND = "CASE lower(run_type) " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in KINDS.items()) + " ELSE 'other' END"
_STATUS_SQL = "CASE lower(status) " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _STATUS.items()) + " END"
_NUMBERS = (*_COUNTS, "total_cost", "prompt_cost", "completion_cost")  # each cast once, as _<name>
_INPUT, _OUTPUT, _HOW = normalised(*(f"_{c}" for c in ("input", "output", "cache_read", "cache_write",
                                                        "reasoning", "total")))
_PREFERENCE = "[" + ", ".join(f"'{k}'" for k in FEEDBACK_PREFERENCE) + "]"
# feedback_stats of a root run: its preferred key (else the first by name), that entry's avg
_KEY = f"coalesce(list_filter({_PREFERENCE}, lambda k: list_contains(json_keys(_fb), k))[1], list_sort(json_keys(_fb))[1])"
_POINTER = "'/' || replace(replace(_key, '~', '~0'), '/', '~1')"  # a JSON pointer: any key, no quoting
_MAPPED = extract(_FIELDS) + f"""
, t AS (SELECT *, {_KIND} AS kind, {time_sql("start_time")} AS start_ts, {time_sql("end_time")} AS end_ts FROM y),
z AS (SELECT *, {", ".join(f"CASE WHEN kind = 'llm' THEN {sql} END AS {name}" for name, sql in _COUNT_SQL.items())},
    CASE WHEN _json_ok AND nullif(parent_run_id, '') IS NULL AND starts_with(feedback_stats, '{{')
        THEN json_extract({LINE}, '$.feedback_stats') END AS _fb  -- parsed again only where it can be an object
  FROM t),
n AS (SELECT *, {", ".join(f"{number(c)} AS _{c}" for c in _NUMBERS)} FROM z),
k AS (SELECT *, CASE WHEN json_type(_fb) = 'OBJECT' THEN {_KEY} END AS _key FROM n),
v AS (SELECT *, CASE WHEN json_type(json_extract(_fb, {_POINTER})) = 'OBJECT'
                     THEN json_extract(json_extract(_fb, {_POINTER}), '$.avg') END AS _avg FROM k),
o AS (SELECT *, CASE WHEN json_type(_avg) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN TRY_CAST(_avg AS DOUBLE) END AS score
      FROM v)
SELECT {ROW}, {LINE}, trace_id, id AS span_id, nullif(parent_run_id, '') AS parent_id, kind, name,
    start_ts AS start_time, end_ts AS end_time,
    CASE WHEN nullif(error, '') IS NOT NULL THEN 'error' ELSE coalesce({_STATUS_SQL}, 'unset') END AS status,
    left(split_part(nullif(error, ''), chr(10), 1), 200) AS error_type, provider,
    CASE WHEN kind = 'llm' THEN model END AS model, {_INPUT} AS input_tokens, {_OUTPUT} AS output_tokens,
    _cache_read AS cache_read_tokens, _cache_write AS cache_write_tokens, _reasoning AS reasoning_tokens,
    CASE WHEN kind = 'llm' THEN coalesce(_total_cost, _prompt_cost + _completion_cost) END AS reported_cost_usd,
    CASE WHEN kind = 'tool' THEN name END AS tool_name,
    CASE WHEN kind = 'tool' THEN json_extract({LINE}, '$.inputs')::VARCHAR END AS tool_arguments,
    {RECORD_TEXT} AS attributes,
    CASE WHEN kind = 'llm' THEN {_HOW} END AS _how,
    nullif(reference_example_id, '') AS task_id, user_id, session_id,
    CASE WHEN score = 0 THEN false WHEN score = 1 THEN true END AS success, score,
    {first_problem(time_problem("start_time", "start_time", "start_ts"),
                   time_problem("end_time", "end_time", "end_ts"),
                   *(f"CASE WHEN kind = 'llm' THEN {number_problem(c, c + '_tokens')} END" for c in _COUNTS),
                   "CASE WHEN kind = 'llm' THEN " + number_problem("total_cost", "total_cost") + " END")} AS _problem
FROM o"""
TRACE_FIELDS = ("task_id", "success", "score", "user_id", "session_id")
QUERY = finished(_MAPPED, TRACE_FIELDS)


def sniff(path: Path, head: bytes) -> bool:
    """A file whose records have ``run_type`` and ``dotted_order`` / ``trace_id``."""
    return sniff_platform(path, head) == "langsmith"


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield span and trace rows of a LangSmith run export, then the trials of repeated runs."""
    path = Path(path)
    roots: list[pa.Table] = []
    for rows, bad in mapped_batches(path, QUERY):
        if rows is None or not rows.num_rows:
            yield Chunk(quarantined=bad, rows_read=len(bad))
            continue
        chunk = arrow_chunk(rows, bad, str(path), NAME, TRACE_FIELDS, roots_first=True, root_start=True)
        roots.append(chunk.trace_table.select(["trace_id", "task_id", "started_at"]))
        yield chunk
    trials = _trials(roots)
    if trials is not None:
        yield ArrowChunk(None, trials, rows_read=0)


def feedback_outcome(stats: Any) -> tuple[bool | None, float | None]:
    """``(success, score)`` from a run's ``feedback_stats``.

    The key is the only one, else the first of ``FEEDBACK_PREFERENCE`` present, else the
    first by name. ``score`` is its mean; ``success`` is set only for 0/1 feedback.
    The loader's own SQL, run on one ``feedback_stats`` object.

    Examples
    --------
    >>> feedback_outcome({"correctness": {"n": 2, "avg": 0.5, "values": {}}})
    (None, 0.5)
    >>> feedback_outcome({"helpful": {"n": 1, "avg": 0.8}, "correctness": {"n": 1, "avg": 1.0}})
    (True, 1.0)
    """
    line = json.dumps({"id": "r", "trace_id": "r", "run_type": "chain", "feedback_stats": stats})
    row = run(connect(), pa.table({LINE: [line], ROW: [1]}), QUERY).to_pylist()[0]
    return row["success"], row["score"]


def _trials(roots: list[pa.Table]) -> pa.Table | None:
    """Trial numbers 0, 1, ... of the traces of each example, by start time (then trace id)."""
    if not roots:
        return None
    table = pa.concat_tables(roots)
    table = table.filter(pc.is_valid(table.column("task_id")))
    codes = np.asarray(pc.dictionary_encode(table.column("trace_id").combine_chunks()).indices)
    table = table.take(pa.array(np.sort(np.unique(codes, return_index=True)[1]), pa.int64()))  # first of each
    if not table.num_rows:
        return None
    table = table.take(pc.sort_indices(table, [("task_id", "ascending"), ("started_at", "ascending"),
                                               ("trace_id", "ascending")]))  # nulls last, as pandas
    tasks = np.asarray(pc.dictionary_encode(table.column("task_id").combine_chunks()).indices)
    at = np.arange(len(tasks))
    starts = np.maximum.accumulate(np.where(np.r_[True, tasks[1:] != tasks[:-1]], at, 0))
    return schema.conform_table(table.select(["trace_id", "task_id"]).append_column(
        "trial", pa.array(at - starts, pa.int64())), "traces")
