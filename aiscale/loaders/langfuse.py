"""Langfuse exports: observations, traces and scores (CSV, JSON, JSONL; snake_case or camelCase).

Observations (``id``, ``trace_id``, ``type``, ``parent_observation_id``, ``start_time``,
``end_time``, ``name``, ``provided_model_name`` / ``model``, ``usage_details``,
``cost_details``, ``total_cost``, ``level``, ``status_message``; the public API's camelCase
``traceId``, ``usageDetails``, ... is read the same) become spans. Only GENERATION
observations are LLM calls with tokens and ``reported_cost_usd``; usage on other types stays in
``attributes``. ``usage_details`` counts cache and reasoning tokens apart from ``input`` and
``output`` (its ``total`` is the sum of every key); they are added back so that input includes
cache reads and writes and output includes reasoning (a source whose ``total`` equals
``input + output`` counted them inside, and is kept as is). Type ERROR level is an error span.

Traces (``id``, ``timestamp``, ``user_id``, ``session_id``, ``metadata``) give trace rows.
Scores (``trace_id``, ``name``, ``value``, ``data_type``) give outcomes: a BOOLEAN score sets
``success``; a NUMERIC score (else the boolean's 0/1) sets ``score``; with several names, the
first of ``SCORE_PREFERENCE`` present, else the first by name. Rows are file records.

Examples
--------
>>> usage_columns({"input": 20, "input_cached_tokens": 80, "output": 5,
...                "output_reasoning_tokens": 3, "total": 108})
(100, 8, 80, None, 3)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from aiscale.loaders._common import as_int
from aiscale.loaders._platform import (
    column,
    demote_llm_wrappers,
    is_null,
    json_rows,
    number,
    parse_json_cells,
    sniff_platform,
    timestamps,
)
from aiscale.loaders._records import ROW, read_records
from aiscale.loaders.base import Chunk, Quarantined, json_text

NAME = "langfuse"
PRIORITY = 40
KINDS = {"GENERATION": "llm", "EMBEDDING": "embedding", "AGENT": "agent", "TOOL": "tool",
         "CHAIN": "chain", "RETRIEVER": "retrieval", "EVALUATOR": "evaluator",
         "GUARDRAIL": "guardrail", "SPAN": "other", "EVENT": "other"}
SCORE_PREFERENCE = ("success", "correctness", "correct", "pass", "score", "accuracy")
_OBS_USED = {"id", "trace_id", "type", "parent_observation_id", "start_time", "end_time", "name",
             "provided_model_name", "model", "usage_details", "cost_details", "total_cost",
             "status_message", "input", "user_id", "session_id", ROW}


def sniff(path: Path, head: bytes) -> bool:
    """A Langfuse observations, traces or scores export."""
    return (sniff_platform(path, head) or "").startswith("langfuse")


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield span, trace or outcome rows of a Langfuse export, by what the file holds."""
    path = Path(path)
    kind: str | None = None
    scores: list[pd.DataFrame] = []
    for records, bad in read_records(path):
        if not len(records):
            yield Chunk(quarantined=bad, rows_read=len(bad), unit="row")
            continue
        kind = kind or _kind_of(records)
        if kind == "langfuse-observations":
            spans, traces = observations_to_spans(records, path)
            yield Chunk(spans=spans, traces=traces, quarantined=bad, rows_read=len(records) + len(bad))
        elif kind == "langfuse-scores":
            good, more = _checked_scores(records, path)
            scores.append(good)
            yield Chunk(quarantined=bad + more, rows_read=len(records) + len(bad), unit="row")
        else:
            traces, more = traces_rows(records, path)
            yield Chunk(traces=traces, quarantined=bad + more, rows_read=len(records) + len(bad),
                        unit="row")
    if scores:
        yield Chunk(traces=score_outcomes(pd.concat(scores, ignore_index=True)), rows_read=0, unit="row")


def _kind_of(records: pd.DataFrame) -> str:
    from aiscale.loaders._platform import classify_keys

    return classify_keys(set(records.columns) - {ROW}) or "langfuse-traces"


def usage_columns(usage: Any) -> tuple[int | None, ...]:
    """``(input, output, cache_read, cache_write, reasoning)`` in the canonical convention."""
    if not isinstance(usage, dict):
        return (None,) * 5
    values = {str(k): as_int(v) for k, v in usage.items() if as_int(v) is not None}
    parts = {k: v for k, v in values.items() if k != "total"}
    if not parts:
        return (None,) * 5

    def total_of(test) -> int | None:
        found = [v for k, v in parts.items() if test(k)]
        return sum(found) if found else None

    cache_read = total_of(lambda k: "cache_read" in k or "cached" in k)
    cache_write = total_of(lambda k: "cache_creation" in k or "cache_write" in k)
    reasoning = total_of(lambda k: "reasoning" in k)
    base_in, base_out, total = parts.get("input"), parts.get("output"), values.get("total")
    inclusive = total is not None and base_in is not None and total == base_in + (base_out or 0) \
        and total != sum(parts.values())
    if inclusive:
        return base_in, base_out, cache_read, cache_write, reasoning
    inp = total_of(lambda k: k.startswith("input") or ("cache" in k and not k.startswith("output")))
    out = total_of(lambda k: k.startswith("output") or k == "reasoning")
    return inp, out, cache_read, cache_write, reasoning


def observations_to_spans(records: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map one chunk of Langfuse observations to canonical spans and trace rows."""
    records = records.copy()
    for name in ("usage_details", "cost_details", "usage", "metadata", "model_parameters"):
        if name in records:
            records[name] = parse_json_cells(records[name])
    kind = column(records, "type").astype("string").str.upper().map(KINDS).fillna("other").astype(object)
    is_llm = kind == "llm"
    usage = column(records, "usage_details").where(column(records, "usage_details").map(
        lambda u: isinstance(u, dict) and bool(u)), column(records, "usage"))
    tokens = pd.DataFrame(usage.map(usage_columns).tolist(), index=records.index,
                          columns=["input_tokens", "output_tokens", "cache_read_tokens",
                                   "cache_write_tokens", "reasoning_tokens"], dtype="float64")
    cost = number(column(records, "total_cost", "calculated_total_cost")).fillna(
        number(column(records, "cost_details").map(lambda c: c.get("total") if isinstance(c, dict) else None)))
    error = column(records, "level").astype("string").str.upper() == "ERROR"
    spans = pd.DataFrame({
        "trace_id": column(records, "trace_id"), "span_id": column(records, "id"),
        "parent_id": column(records, "parent_observation_id").replace("", None),
        "kind": kind, "name": column(records, "name"),
        "start_time": timestamps(column(records, "start_time")),
        "end_time": timestamps(column(records, "end_time")),
        "status": pd.Series("unset", index=records.index).mask(error.fillna(False), "error"),
        "error_type": column(records, "status_message").astype("string").str.slice(0, 200)
        .where(error.fillna(False)),
        "model": column(records, "provided_model_name", "model"),
        **{c: tokens[c].where(is_llm) for c in tokens},
        "reported_cost_usd": cost.where(is_llm),
        "tool_name": column(records, "name").where(kind == "tool"),
        "tool_arguments": column(records, "input").map(
            lambda v: None if is_null(v) else v if isinstance(v, str) else json_text(v)).where(kind == "tool"),
    })
    keep = records[[c for c in records.columns if c not in _OBS_USED or c in (
        "usage_details", "cost_details", "total_cost")]].copy()
    no_usage = is_llm & tokens.isna().all(axis=1)
    keep["aiscale.usage_missing"] = no_usage.where(no_usage)
    spans["attributes"] = json_rows(keep)
    spans["source"], spans["source_file"], spans["source_row"] = NAME, str(path), records[ROW].to_numpy()
    spans = demote_llm_wrappers(spans)
    traces = pd.DataFrame({"trace_id": spans["trace_id"], "user_id": column(records, "user_id"),
                           "session_id": column(records, "session_id")})
    return spans, traces.groupby("trace_id", sort=False, as_index=False).first()


def traces_rows(records: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[Quarantined]]:
    """Trace rows of a Langfuse traces export; a row without ``id`` is quarantined."""
    trace_id = column(records, "id").astype("string")
    missing = trace_id.isna() | (trace_id.str.strip() == "")
    bad = [Quarantined(str(path), int(row), "missing trace id (`id`)") for row in records.loc[missing, ROW]]
    meta = parse_json_cells(column(records, "metadata"))
    traces = pd.DataFrame({
        "trace_id": trace_id, "started_at": timestamps(column(records, "timestamp")),
        "user_id": column(records, "user_id"), "session_id": column(records, "session_id"),
        "metadata": meta.map(lambda m: None if is_null(m) else m if isinstance(m, str) else json_text(m)),
    })
    return traces.loc[~missing], bad


def _checked_scores(records: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, list[Quarantined]]:
    frame = pd.DataFrame({"trace_id": column(records, "trace_id").astype("string"),
                          "name": column(records, "name").astype("string"),
                          "data_type": column(records, "data_type").astype("string").str.upper().fillna("NUMERIC"),
                          "value": number(column(records, "value")), "row": records[ROW]})
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
