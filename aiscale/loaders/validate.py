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

from typing import TYPE_CHECKING

import numpy as np

from aiscale.loaders.base import Quarantined
from aiscale.schema import SPAN_KINDS, SPAN_STATUSES, TOKEN_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

MAX_TOKENS_PER_SPAN = 100_000_000
MAX_ID_CHARS = 512
MAX_TOKENS_PER_TRACE = 100_000_000_000
MAX_CALLS_PER_TRACE = 10_000_000


def _missing(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype("string").str.strip() == "")


def _span_rules(spans: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    import pandas as pd

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
    for column in ("start_time", "end_time"):
        if column in spans:
            parsed = pd.to_datetime(spans[column], utc=True, errors="coerce", format="mixed")
            rules.append((f"{column} is not a timestamp", parsed.isna() & spans[column].notna()))
    if "start_time" in spans and "end_time" in spans:
        start = pd.to_datetime(spans["start_time"], utc=True, errors="coerce", format="mixed")
        end = pd.to_datetime(spans["end_time"], utc=True, errors="coerce", format="mixed")
        rules.append(("end_time before start_time", (end < start).fillna(False)))
    for column in TOKEN_COLUMNS:
        if column in spans:
            values = pd.to_numeric(spans[column], errors="coerce")
            bad_type = values.isna() & spans[column].notna()
            rules.append((f"{column} is not a number", bad_type))
            rules.append((f"{column} is not a whole number",
                          (values.notna() & (values != values.round())).fillna(False)))
            rules.append((f"{column} is negative", (values < 0).fillna(False)))
            rules.append((f"{column} is absurd (over {MAX_TOKENS_PER_SPAN:,} in one span)",
                          (values > MAX_TOKENS_PER_SPAN).fillna(False)))
    if "reported_cost_usd" in spans:
        cost = pd.to_numeric(spans["reported_cost_usd"], errors="coerce")
        rules.append(("reported_cost_usd is not a number",
                      cost.isna() & spans["reported_cost_usd"].notna()))
        rules.append(("reported_cost_usd is negative", (cost < 0).fillna(False)))
        rules.append(("reported_cost_usd is not finite", cost.isin([np.inf])))
    if "parent_id" in spans and "span_id" in spans:
        rules.append(("span is its own parent",
                      (spans["parent_id"] == spans["span_id"]).fillna(False).astype(bool)))
    return rules


def _split(frame: pd.DataFrame, rules: list[tuple[str, pd.Series]], *,
           lost: bool = True) -> tuple[pd.DataFrame, list[Quarantined]]:
    """Rows that break no rule, and a Quarantined per row that does (the first rule it breaks).

    With ``lost`` (the row's content is gone, not kept in another row), a quarantined LLM
    span of a known trace is marked as a lost call, so that trace's cost becomes unknown.
    """
    import pandas as pd

    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    for text, mask in rules:
        mask = mask.fillna(True).astype(bool) if mask.dtype == object else mask.astype(bool)
        reason = reason.mask(reason.isna() & mask, text)
    bad = reason.notna()
    if not bad.any():  # the common case: no copy of the frame
        return frame, []
    quarantined = [
        Quarantined(str(row.get("source_file", "")),
                    None if pd.isna(row.get("source_row")) else int(row.get("source_row")),
                    str(why), **lost_call(row) if lost else {})
        for row, why in zip(frame.loc[bad].to_dict("records"), reason[bad], strict=True)
    ]
    return frame.loc[~bad], quarantined


def lost_call(row: dict) -> dict:
    """``trace_id`` and ``lost_llm_call`` for a quarantined span row that was an LLM call of a
    known trace (empty otherwise).

    Examples
    --------
    >>> lost_call({"trace_id": "t", "kind": "llm"})
    {'trace_id': 't', 'lost_llm_call': True}
    >>> lost_call({"trace_id": "t", "kind": "tool"})
    {}
    """
    trace, kind = row.get("trace_id"), row.get("kind")
    if isinstance(trace, str) and trace and kind == "llm":
        return {"trace_id": trace, "lost_llm_call": True}
    return {}


def validate_spans(spans: pd.DataFrame) -> tuple[pd.DataFrame, list[Quarantined]]:
    """Split span rows into usable rows and quarantined rows (with the rule broken).

    Rules: trace_id and span_id present; kind and status in their enums; end not before
    start; token counts numeric, non-negative and not absurd; reported cost non-negative;
    no span its own parent; no second span with the same (trace_id, span_id) in the chunk;
    no span on a parent cycle (a -> b -> ... -> a) within the chunk. The spans of a cycle
    are quarantined (the tree they claim is impossible); spans below a cycle are kept and
    counted as orphans by the store.
    """
    good, bad = _split(spans, _span_rules(spans))
    duplicated = good.duplicated(subset=["trace_id", "span_id"], keep="first")
    dup_rules = [("duplicate span_id within the trace (an earlier row has it)", duplicated)]
    good, dup_bad = _split(good, dup_rules, lost=False)  # the earlier row is kept
    good, cycle_bad = _split(good, [("span is on a parent cycle (its ancestors lead back to it)",
                                     on_parent_cycle(good))])
    return good, bad + dup_bad + cycle_bad


def on_parent_cycle(spans: pd.DataFrame) -> pd.Series:
    """Mask of spans whose parent chain returns to themselves (any cycle length).

    Vectorised pointer jumping: after ``ceil(log2(n)) + 1`` squarings of the parent map,
    every span maps to a span on the cycle its chain ends in (or to a sink when it
    reaches a root or a parent outside the frame); those images are exactly the cycles.

    Examples
    --------
    >>> import pandas as pd
    >>> spans = pd.DataFrame({"trace_id": ["t"] * 4, "span_id": ["a", "b", "c", "d"],
    ...                       "parent_id": ["c", "a", "b", "a"]})
    >>> on_parent_cycle(spans).tolist()
    [True, True, True, False]
    """
    import pandas as pd

    n = len(spans)
    if n == 0 or "parent_id" not in spans or spans["parent_id"].isna().all():
        return pd.Series(False, index=spans.index)
    trace = pd.factorize(spans["trace_id"].astype("string"))[0].astype(np.int64)
    ids, distinct = pd.factorize(pd.concat([spans["span_id"], spans["parent_id"]]).astype("string"))
    ids = ids.astype(np.int64)  # one number per id text, shared by span and parent ids; -1: null
    keys = pd.Index(trace * (len(distinct) + 1) + ids[:n])
    parents = np.where(ids[n:] < 0, -1, trace * (len(distinct) + 1) + ids[n:])
    step = keys.get_indexer(parents)  # -1: no parent in the frame
    return pd.Series(cycle_members(step), index=spans.index)


def cycle_members(step: np.ndarray) -> np.ndarray:
    """Mask of the rows on a cycle of the parent map ``step`` (row -> parent row, -1: none).

    Examples
    --------
    >>> cycle_members(np.array([2, 0, 1, 0, -1])).tolist()
    [True, True, True, False, False]
    """
    n = len(step)
    step = np.where(step < 0, n, step).astype(np.int64)
    jump = np.append(step, n)  # the sink maps to itself
    for _ in range(int(np.ceil(np.log2(n + 1))) + 1):
        jump = jump[jump]
    ends = np.unique(jump[:n])
    member = np.zeros(n + 1, dtype=bool)
    member[ends] = True
    return member[:n]


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
    """Split per-trace fact rows: trace_id present and unique, plus counts, tokens and cost
    that are numbers, non-negative and not absurd."""
    import pandas as pd

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
            limit = MAX_TOKENS_PER_TRACE if column in TOKEN_COLUMNS else MAX_CALLS_PER_TRACE
            if column not in ("cost_usd", "reported_cost_usd"):
                rules.append((f"{column} is absurd (over {limit:,} in one trace)",
                              (values > limit).fillna(False)))
    good, more = _split(good, rules)
    return good, bad + more
