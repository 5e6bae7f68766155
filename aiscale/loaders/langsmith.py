"""LangSmith run exports (JSONL, JSON or Parquet): one row per run, LLM runs counted once.

Fields read: ``id``, ``trace_id``, ``parent_run_id``, ``name``, ``run_type`` (llm, chain, tool,
retriever, embedding, prompt, parser), ``start_time``, ``end_time``, ``status``, ``error``;
for ``llm`` runs only: ``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
``prompt_token_details`` (``cache_read``, ``cache_creation``), ``completion_token_details``
(``reasoning``), or else the SDK's ``usage_metadata`` (in ``outputs`` or ``extra.metadata``); ``total_cost`` (or prompt +
completion cost) as ``reported_cost_usd``; ``extra.metadata.ls_provider`` /
``ls_model_name`` (the response's ``outputs.model`` first; else ``extra.invocation_params.model``).
``attributes`` is the run as exported (so chain and root runs that carry their children's totals
keep them there, never counted). For the trace (from the root run):
``reference_example_id`` is the task id (repeated runs of one example are trials 0, 1, ...
by start time), ``feedback_stats`` the outcome (``score`` = the mean of the chosen key,
``success`` = it when every value is 0 or 1), metadata ``user_id`` and ``thread_id`` /
``session_id``. Records are mapped in DuckDB, a batch at a time
(:mod:`aiscale.loaders._platform_sql`, which also states the quarantine rules for times and counts).

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

import pandas as pd

from aiscale.loaders._platform import demote_llm_wrappers, normalise_tokens, sniff_platform
from aiscale.loaders._platform_sql import (
    extract,
    first_problem,
    mapped_batches,
    number,
    number_problem,
    time_problem,
    time_sql,
    with_flags,
)
from aiscale.loaders._records import LINE, ROW
from aiscale.loaders.base import Chunk

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
_FIELDS = {
    **{name: [(name,)] for name in (
        "id", "trace_id", "parent_run_id", "name", "run_type", "start_time", "end_time", "status", "error",
        "prompt_cost", "completion_cost", "total_cost", "reference_example_id", "prompt_tokens",
        "completion_tokens", "total_tokens", "prompt_token_details", "completion_token_details")},
    # the SDK's usage_metadata (in outputs, else extra.metadata): one small object, read apart
    "usage": [("outputs", "usage_metadata"), ("extra", "metadata", "usage_metadata")],
    "provider": [("extra", "metadata", "ls_provider")],
    "model": [("outputs", "model"), ("extra", "metadata", "ls_model_name"), ("extra", "invocation_params", "model")],
    "user_id": [("extra", "metadata", "user_id")],
    "session_id": [("extra", "metadata", "thread_id"), ("extra", "metadata", "session_id"),
                   ("extra", "metadata", "conversation_id")],
}
_COUNT_SQL = {  # count: the run's own field, else usage_metadata's
    "input": "coalesce(prompt_tokens, json_extract_string(usage, '$.input_tokens'))",
    "output": "coalesce(completion_tokens, json_extract_string(usage, '$.output_tokens'))",
    "total": "coalesce(total_tokens, json_extract_string(usage, '$.total_tokens'))",
    "cache_read": "coalesce(json_extract_string(prompt_token_details, '$.cache_read'), "
                  "json_extract_string(usage, '$.input_token_details.cache_read'))",
    "cache_write": "coalesce(json_extract_string(prompt_token_details, '$.cache_creation'), "
                   "json_extract_string(prompt_token_details, '$.cache_write'), "
                   "json_extract_string(usage, '$.input_token_details.cache_creation'))",
    "reasoning": "coalesce(json_extract_string(completion_token_details, '$.reasoning'), "
                 "json_extract_string(usage, '$.output_token_details.reasoning'))",
}
_COUNTS = ("input", "output", "total", "cache_read", "cache_write", "reasoning")
_KIND = "CASE lower(run_type) " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in KINDS.items()) + " ELSE 'other' END"
_STATUS_SQL = "CASE lower(status) " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in _STATUS.items()) + " END"
QUERY = extract(_FIELDS) + f"""
, z AS (SELECT *, {_KIND} AS kind, {time_sql("start_time")} AS start_ts, {time_sql("end_time")} AS end_ts,
    {", ".join(f"CASE WHEN {_KIND} = 'llm' THEN {sql} END AS {name}" for name, sql in _COUNT_SQL.items())}
  FROM y)
SELECT {ROW}, {LINE}, trace_id, id AS span_id, nullif(parent_run_id, '') AS parent_id, kind, name,
    start_ts AS start_time, end_ts AS end_time,
    CASE WHEN nullif(error, '') IS NOT NULL THEN 'error' ELSE coalesce({_STATUS_SQL}, 'unset') END AS status,
    left(split_part(nullif(error, ''), chr(10), 1), 200) AS error_type, provider, model,
    {", ".join(f"{number(c)} AS {c}" for c in _COUNTS)},
    coalesce({number("total_cost")}, {number("prompt_cost")} + {number("completion_cost")}) AS cost,
    CASE WHEN kind = 'tool' THEN json_extract({LINE}, '$.inputs')::VARCHAR END AS tool_arguments,
    CASE WHEN _json_ok AND nullif(parent_run_id, '') IS NULL
        THEN json_extract({LINE}, '$.feedback_stats')::VARCHAR END
        AS feedback,
    nullif(reference_example_id, '') AS task_id, user_id, session_id,
    {first_problem(time_problem("start_time", "start_time", "start_ts"),
                   time_problem("end_time", "end_time", "end_ts"),
                   *(f"CASE WHEN kind = 'llm' THEN {number_problem(c, c + '_tokens')} END" for c in _COUNTS),
                   "CASE WHEN kind = 'llm' THEN " + number_problem("total_cost", "total_cost") + " END")} AS _problem
FROM z"""


def sniff(path: Path, head: bytes) -> bool:
    """A file whose records have ``run_type`` and ``dotted_order`` / ``trace_id``."""
    return sniff_platform(path, head) == "langsmith"


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield span and trace rows of a LangSmith run export, then the trials of repeated runs."""
    path = Path(path)
    roots: list[pd.DataFrame] = []
    for records, bad in mapped_batches(path, QUERY):
        if not len(records):
            yield Chunk(quarantined=bad, rows_read=len(bad))
            continue
        spans, traces = to_spans(records, path)
        roots.append(traces[["trace_id", "task_id", "started_at"]])
        yield Chunk(spans=spans, traces=traces, quarantined=bad, rows_read=len(records) + len(bad))
    trials = _trials(roots)
    if trials is not None:
        yield Chunk(traces=trials, rows_read=0)


def to_spans(records: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map one batch of LangSmith runs (the query's columns) to canonical spans and trace rows.

    ``attributes`` is the run as exported (every field, lossless), with aiscale's flags added.
    """
    is_llm = records["kind"] == "llm"
    inp, out, how = normalise_tokens(records["input"], records["output"], records["cache_read"],
                                     records["cache_write"], records["reasoning"], records["total"])
    tokens = {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": records["cache_read"],
              "cache_write_tokens": records["cache_write"], "reasoning_tokens": records["reasoning"]}
    tokens = {name: values.where(is_llm) for name, values in tokens.items()}
    no_usage = is_llm & pd.concat(list(tokens.values()), axis=1).isna().all(axis=1)
    spans = pd.DataFrame({
        "trace_id": records["trace_id"], "span_id": records["span_id"], "parent_id": records["parent_id"],
        "kind": records["kind"].astype(object), "name": records["name"],
        "start_time": records["start_time"], "end_time": records["end_time"],
        "status": records["status"].astype(object), "error_type": records["error_type"],
        "provider": records["provider"], "model": records["model"].where(is_llm), **tokens,
        "reported_cost_usd": records["cost"].where(is_llm),
        "tool_name": records["name"].where(records["kind"] == "tool"),
        "tool_arguments": records["tool_arguments"],
    })
    spans["attributes"] = with_flags(records[LINE].str.strip(), {
        "aiscale.usage_missing": no_usage.where(no_usage),
        "aiscale.tokens_normalised": how.where(is_llm & (how != ""))})
    spans["source"], spans["source_file"], spans["source_row"] = NAME, str(path), records[ROW].to_numpy()
    spans = demote_llm_wrappers(spans)
    return spans, _traces(records, spans)


def _traces(records: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    feedback = records["feedback"].dropna()
    outcome = pd.Series([feedback_outcome(json.loads(text)) for text in feedback], index=feedback.index,
                        dtype=object).reindex(records.index)  # one per root run with feedback
    traces = pd.DataFrame({
        "trace_id": spans["trace_id"], "task_id": records["task_id"], "started_at": spans["start_time"],
        "success": outcome.map(lambda o: o[0], na_action="ignore"),
        "score": outcome.map(lambda o: o[1], na_action="ignore"),
        "user_id": records["user_id"], "session_id": records["session_id"],
        "_root": spans["parent_id"].isna(),
    })
    traces = traces.sort_values("_root", ascending=False, kind="stable")
    firsts = traces.drop(columns="_root").groupby("trace_id", sort=False, as_index=False).first()
    roots = traces.loc[traces["_root"], ["trace_id", "started_at"]].drop_duplicates("trace_id")
    firsts = firsts.drop(columns="started_at").merge(roots, on="trace_id", how="left")
    return firsts


def feedback_outcome(stats: Any) -> tuple[bool | None, float | None]:
    """``(success, score)`` from a run's ``feedback_stats``.

    The key is the only one, else the first of ``FEEDBACK_PREFERENCE`` present, else the
    first by name. ``score`` is its mean; ``success`` is set only for 0/1 feedback.

    Examples
    --------
    >>> feedback_outcome({"correctness": {"n": 2, "avg": 0.5, "values": {}}})
    (None, 0.5)
    >>> feedback_outcome({"helpful": {"n": 1, "avg": 0.8}, "correctness": {"n": 1, "avg": 1.0}})
    (True, 1.0)
    """
    if not isinstance(stats, dict) or not stats:
        return None, None
    key = next((k for k in FEEDBACK_PREFERENCE if k in stats), sorted(stats)[0])
    entry = stats[key] if isinstance(stats[key], dict) else {}
    avg = entry.get("avg")
    if isinstance(avg, bool) or not isinstance(avg, (int, float)):
        return None, None
    success = bool(avg == 1) if avg in (0, 1) else None
    return success, float(avg)


def _trials(roots: list[pd.DataFrame]) -> pd.DataFrame | None:
    """Trial numbers 0, 1, ... of the traces of each example, by start time."""
    if not roots:
        return None
    table = pd.concat(roots, ignore_index=True).dropna(subset=["task_id"])
    table = table.drop_duplicates("trace_id")
    if not len(table):
        return None
    table = table.sort_values(["task_id", "started_at", "trace_id"], kind="stable")
    table["trial"] = table.groupby("task_id").cumcount()
    return table[["trace_id", "task_id", "trial"]]
