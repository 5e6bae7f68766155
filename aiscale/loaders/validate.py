"""The rules every span, trace and fact row must meet before it enters the store.

Applied once, at the boundary, to what any loader produced. A row that breaks a rule is
quarantined with the rule it broke; the rest go on. Vectorised: one mask per rule.

Examples
--------
>>> import pandas as pd
>>> spans = pd.DataFrame({"trace_id": ["t", "t"], "span_id": ["a", None], "kind": ["llm", "llm"],
...                       "status": ["ok", "ok"], "source_file": "f.jsonl", "source_row": [1, 2]})
>>> good, bad = validate_spans(spans)
>>> len(good), bad[0].reason
(1, 'missing span_id')
"""

from __future__ import annotations

import pandas as pd

from aiscale.loaders.base import Quarantined
from aiscale.schema import SPAN_KINDS, SPAN_STATUSES, TOKEN_COLUMNS

MAX_TOKENS_PER_SPAN = 100_000_000
MAX_ID_CHARS = 512


def _missing(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype("string").str.strip() == "")


def _span_rules(spans: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    rules: list[tuple[str, pd.Series]] = []
    for column in ("trace_id", "span_id"):
        if column not in spans:
            rules.append((f"missing {column}", pd.Series(True, index=spans.index)))
            continue
        rules.append((f"missing {column}", _missing(spans[column])))
        too_long = spans[column].astype("string").str.len() > MAX_ID_CHARS
        rules.append((f"{column} longer than {MAX_ID_CHARS} characters", too_long.fillna(False)))
    if "kind" in spans:
        rules.append((f"kind is not one of {list(SPAN_KINDS)}", ~spans["kind"].isin(SPAN_KINDS)))
    if "status" in spans:
        rules.append((f"status is not one of {list(SPAN_STATUSES)}",
                      spans["status"].notna() & ~spans["status"].isin(SPAN_STATUSES)))
    if "start_time" in spans and "end_time" in spans:
        start = pd.to_datetime(spans["start_time"], utc=True, errors="coerce")
        end = pd.to_datetime(spans["end_time"], utc=True, errors="coerce")
        rules.append(("end_time before start_time", (end < start).fillna(False)))
    for column in TOKEN_COLUMNS:
        if column in spans:
            values = pd.to_numeric(spans[column], errors="coerce")
            bad_type = values.isna() & spans[column].notna()
            rules.append((f"{column} is not a number", bad_type))
            rules.append((f"{column} is negative", (values < 0).fillna(False)))
            rules.append((f"{column} is absurd (over {MAX_TOKENS_PER_SPAN:,} in one span)",
                          (values > MAX_TOKENS_PER_SPAN).fillna(False)))
    if "reported_cost_usd" in spans:
        cost = pd.to_numeric(spans["reported_cost_usd"], errors="coerce")
        rules.append(("reported_cost_usd is negative", (cost < 0).fillna(False)))
    if "parent_id" in spans and "span_id" in spans:
        rules.append(("span is its own parent",
                      (spans["parent_id"] == spans["span_id"]).fillna(False).astype(bool)))
    return rules


def _split(frame: pd.DataFrame, rules: list[tuple[str, pd.Series]]) -> tuple[pd.DataFrame, list[Quarantined]]:
    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    for text, mask in rules:
        mask = mask.fillna(True).astype(bool) if mask.dtype == object else mask.astype(bool)
        reason = reason.mask(reason.isna() & mask, text)
    bad = reason.notna()
    quarantined = [
        Quarantined(str(row.get("source_file", "")),
                    None if pd.isna(row.get("source_row")) else int(row.get("source_row")),
                    str(why))
        for row, why in zip(frame.loc[bad].to_dict("records"), reason[bad], strict=True)
    ]
    return frame.loc[~bad], quarantined


def validate_spans(spans: pd.DataFrame) -> tuple[pd.DataFrame, list[Quarantined]]:
    """Split span rows into usable rows and quarantined rows (with the rule broken).

    Rules: trace_id and span_id present; kind and status in their enums; end not before
    start; token counts numeric, non-negative and not absurd; reported cost non-negative;
    no span its own parent; no second span with the same (trace_id, span_id) in the chunk.
    """
    good, bad = _split(spans, _span_rules(spans))
    duplicated = good.duplicated(subset=["trace_id", "span_id"], keep="first")
    dup_rules = [("duplicate span_id within the trace (an earlier row has it)", duplicated)]
    good, dup_bad = _split(good, dup_rules)
    return good, bad + dup_bad


def merge_traces(traces: pd.DataFrame) -> pd.DataFrame:
    """Drop trace rows without a trace_id and merge repeated ones (first non-null per column).

    Trace rows are derived from spans, not source records, so they are merged rather than
    quarantined: a trace seen in two chunks of a file keeps one row.
    """
    traces = traces.loc[~_missing(traces["trace_id"])]
    if not traces["trace_id"].duplicated().any():
        return traces
    return traces.groupby("trace_id", sort=False, as_index=False, dropna=False).first()


def validate_facts(facts: pd.DataFrame) -> tuple[pd.DataFrame, list[Quarantined]]:
    """Split per-trace fact rows: trace_id present and unique, plus non-negative counts, tokens and cost."""
    rules = [("missing trace_id", _missing(facts["trace_id"]) if "trace_id" in facts
              else pd.Series(True, index=facts.index))]
    good, bad = _split(facts, rules)
    good, dup = _split(good, [("duplicate trace_id (an earlier row has it)",
                               good.duplicated(subset=["trace_id"], keep="first"))])
    bad += dup
    rules = []
    for column in ("n_llm_calls", "n_tool_calls", "iterations", "cost_usd", "reported_cost_usd",
                   *TOKEN_COLUMNS):
        if column in good:
            values = pd.to_numeric(good[column], errors="coerce")
            rules.append((f"{column} is not a number", values.isna() & good[column].notna()))
            rules.append((f"{column} is negative", (values < 0).fillna(False)))
    good, more = _split(good, rules)
    return good, bad + more
