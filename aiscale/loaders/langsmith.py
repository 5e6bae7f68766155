"""LangSmith run exports (JSONL, JSON or Parquet): one row per run, LLM runs counted once.

Fields read: ``id``, ``trace_id``, ``parent_run_id``, ``name``, ``run_type`` (llm, chain, tool,
retriever, embedding, prompt, parser), ``start_time``, ``end_time``, ``status``, ``error``;
for ``llm`` runs only: ``prompt_tokens``, ``completion_tokens``, ``total_tokens``,
``prompt_token_details`` (``cache_read``, ``cache_creation``), ``completion_token_details``
(``reasoning``), or else the SDK's ``usage_metadata`` (in ``outputs`` or ``extra.metadata``); ``total_cost`` (or prompt +
completion cost) as ``reported_cost_usd``; ``extra.metadata.ls_provider`` /
``ls_model_name`` (the response's ``outputs.model`` first; else ``extra.invocation_params.model``). Chain and root runs that carry
their children's totals keep them in ``attributes``. For the trace (from the root run):
``reference_example_id`` is the task id (repeated runs of one example are trials 0, 1, ...
by start time), ``feedback_stats`` the outcome (``score`` = the mean of the chosen key,
``success`` = it when every value is 0 or 1), metadata ``user_id`` and ``thread_id`` /
``session_id``.

Examples
--------
>>> sniff(Path("runs.jsonl"), b'{"id": "r", "trace_id": "t", "run_type": "llm", "dotted_order": "x"}')
True
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from aiscale.loaders._platform import (
    column,
    demote_llm_wrappers,
    is_null,
    json_rows,
    normalise_tokens,
    number,
    parse_json_cells,
    sniff_platform,
    timestamps,
)
from aiscale.loaders._records import ROW, read_records
from aiscale.loaders.base import Chunk, json_text

NAME = "langsmith"
PRIORITY = 40
KINDS = {"llm": "llm", "chain": "chain", "tool": "tool", "retriever": "retrieval",
         "embedding": "embedding", "prompt": "other", "parser": "other"}
_STATUS = {"success": "ok", "error": "error", "pending": "unset"}
_NESTED = ("extra", "outputs", "feedback_stats", "prompt_token_details", "completion_token_details",
           "inputs")
_USED = {"id", "trace_id", "parent_run_id", "name", "run_type", "start_time", "end_time", "status",
         "error", "prompt_tokens", "completion_tokens", "total_tokens", "prompt_cost",
         "completion_cost", "total_cost", "inputs", "outputs", "feedback_stats",
         "reference_example_id", ROW}
FEEDBACK_PREFERENCE = ("correctness", "correct", "success", "pass", "score", "accuracy")


def sniff(path: Path, head: bytes) -> bool:
    """A file whose records have ``run_type`` and ``dotted_order`` / ``trace_id``."""
    return sniff_platform(path, head) == "langsmith"


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield span and trace rows of a LangSmith run export, then the trials of repeated runs."""
    path = Path(path)
    roots: list[pd.DataFrame] = []
    for records, bad in read_records(path):
        if not len(records):
            yield Chunk(quarantined=bad, rows_read=len(bad))
            continue
        spans, traces = to_spans(records, path)
        roots.append(traces[["trace_id", "task_id", "started_at"]])
        yield Chunk(spans=spans, traces=traces, quarantined=bad, rows_read=len(records) + len(bad))
    trials = _trials(roots)
    if trials is not None:
        yield Chunk(traces=trials, rows_read=0)


def dig(series: pd.Series, *keys: str) -> pd.Series:
    """``value[k1][k2]...`` per cell, None where any level is missing."""
    def one(value: Any) -> Any:
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value
    return series.map(one).astype(object) if len(series) else series.astype(object)


def _tokens(records: pd.DataFrame, is_llm: pd.Series) -> tuple[dict[str, pd.Series], pd.Series]:
    usage = dig(column(records, "outputs"), "usage_metadata").fillna(
        dig(column(records, "extra"), "metadata", "usage_metadata"))
    pdet, cdet = column(records, "prompt_token_details"), column(records, "completion_token_details")
    raw = {
        "input_tokens": number(column(records, "prompt_tokens")).fillna(number(dig(usage, "input_tokens"))),
        "output_tokens": number(column(records, "completion_tokens")).fillna(
            number(dig(usage, "output_tokens"))),
        "cache_read_tokens": number(dig(pdet, "cache_read")).fillna(
            number(dig(usage, "input_token_details", "cache_read"))),
        "cache_write_tokens": number(dig(pdet, "cache_creation")).fillna(number(dig(pdet, "cache_write")))
        .fillna(number(dig(usage, "input_token_details", "cache_creation"))),
        "reasoning_tokens": number(dig(cdet, "reasoning")).fillna(
            number(dig(usage, "output_token_details", "reasoning"))),
    }
    total = number(column(records, "total_tokens")).fillna(number(dig(usage, "total_tokens")))
    inp, out, how = normalise_tokens(raw["input_tokens"], raw["output_tokens"], raw["cache_read_tokens"],
                                     raw["cache_write_tokens"], raw["reasoning_tokens"], total)
    raw["input_tokens"], raw["output_tokens"] = inp, out
    return {k: v.where(is_llm) for k, v in raw.items()}, how.where(is_llm & (how != ""))


def _attributes(records: pd.DataFrame, is_llm: pd.Series, tokens: dict, how: pd.Series) -> list[str]:
    keep = records[[c for c in records.columns if c not in _USED]].copy()
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "prompt_cost",
                 "completion_cost", "total_cost"):
        if name in records:  # totals of chain/root runs stay, as exported
            keep[name] = records[name].where(~is_llm)
    keep["total_tokens"] = column(records, "total_tokens")
    no_usage = is_llm & pd.concat(list(tokens.values()), axis=1).isna().all(axis=1)
    keep["aiscale.usage_missing"] = no_usage.where(no_usage)
    keep["aiscale.tokens_normalised"] = how
    return json_rows(keep)


def to_spans(records: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map one chunk of LangSmith runs to canonical spans and trace rows."""
    records = records.copy()
    for name in _NESTED:
        if name in records:
            records[name] = parse_json_cells(records[name])
    run_type = column(records, "run_type").astype("string").str.lower()
    kind = run_type.map(KINDS).fillna("other").astype(object)
    is_llm = kind == "llm"
    tokens, how = _tokens(records, is_llm)
    meta = dig(column(records, "extra"), "metadata")
    error = column(records, "error").replace("", None)
    status = column(records, "status").astype("string").str.lower().map(_STATUS).astype(object)
    cost = number(column(records, "total_cost")).fillna(
        number(column(records, "prompt_cost")) + number(column(records, "completion_cost")))
    spans = pd.DataFrame({
        "trace_id": column(records, "trace_id").astype("string"),
        "span_id": column(records, "id").astype("string"),
        "parent_id": column(records, "parent_run_id").astype("string").replace("", pd.NA),
        "kind": kind, "name": column(records, "name"),
        "start_time": timestamps(column(records, "start_time")),
        "end_time": timestamps(column(records, "end_time")),
        "status": status.mask(error.notna(), "error").fillna("unset"),
        "error_type": error.astype("string").str.split("\n").str[0].str.slice(0, 200),
        "provider": dig(meta, "ls_provider"),
        "model": dig(column(records, "outputs"), "model").fillna(dig(meta, "ls_model_name")).fillna(
            dig(column(records, "extra"), "invocation_params", "model")).where(is_llm),
        **tokens,
        "reported_cost_usd": cost.where(is_llm),
        "tool_name": column(records, "name").where(kind == "tool"),
        "tool_arguments": column(records, "inputs").map(_json_or_none).where(kind == "tool"),
    })
    spans["attributes"] = _attributes(records, is_llm, tokens, how)
    spans["source"], spans["source_file"], spans["source_row"] = NAME, str(path), records[ROW].to_numpy()
    spans = demote_llm_wrappers(spans)
    return spans, _traces(records, spans, meta)


def _json_or_none(value: Any) -> str | None:
    return None if is_null(value) else json_text(value)


def _traces(records: pd.DataFrame, spans: pd.DataFrame, meta: pd.Series) -> pd.DataFrame:
    outcome = column(records, "feedback_stats").map(feedback_outcome)
    session = dig(meta, "thread_id").fillna(dig(meta, "session_id")).fillna(dig(meta, "conversation_id"))
    traces = pd.DataFrame({
        "trace_id": spans["trace_id"],
        "task_id": column(records, "reference_example_id").astype("string").replace("", pd.NA),
        "started_at": spans["start_time"],
        "success": outcome.map(lambda o: o[0]), "score": outcome.map(lambda o: o[1]),
        "user_id": dig(meta, "user_id"), "session_id": session,
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
