"""Shared machinery of the platform loaders (Phoenix, Langfuse, LangSmith).

Not a loader (the leading underscore keeps it out of the registry). It tells the platform
formats apart from a file's first records, normalises token counts to the canonical
convention, and counts a framework's LLM span over the client's LLM span once. Files are
read by :mod:`aiscale.loaders._records` and mapped in DuckDB (:mod:`aiscale.loaders._platform_sql`).

Examples
--------
>>> classify_keys({"context.span_id", "context.trace_id", "span_kind", "name"})
'phoenix'
>>> classify_keys({"id", "trace_id", "run_type", "dotted_order"})
'langsmith'
>>> classify_keys({"resourceSpans"}) is None
True
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from aiscale.loaders._records import snake

_SCORE_KEYS = {"value", "name"}


def classify_keys(keys: set[str]) -> str | None:
    """Which platform record a set of top-level keys is (None when none).

    Returns one of ``phoenix``, ``langsmith``, ``langfuse-observations``,
    ``langfuse-traces``, ``langfuse-scores``.
    """
    keys = {snake(k) for k in keys}
    if {"resource_spans", "scope_spans"} & keys or "trace_id" in keys and "span_id" in keys \
            and "kind" in keys:
        return None  # OTLP JSON or canonical spans: not ours
    if "context.span_id" in keys or ("context.trace_id" in keys and "span_kind" in keys):
        return "phoenix"
    if "run_type" in keys and ("dotted_order" in keys or "trace_id" in keys or "parent_run_id" in keys):
        return "langsmith"
    if "trace_id" in keys and "type" in keys and ("start_time" in keys or "parent_observation_id" in keys):
        return "langfuse-observations"
    if "trace_id" in keys and _SCORE_KEYS <= keys and ({"data_type", "source"} & keys):
        return "langfuse-scores"
    if "id" in keys and "timestamp" in keys and ({"session_id", "user_id", "release"} & keys):
        return "langfuse-traces"
    return None


def _head_records(path: Path, head: bytes) -> list[dict] | None:
    """The complete records in the sniffing head (None when the head is not records)."""
    if head.startswith(b"PAR1"):
        try:
            return [dict.fromkeys(pq.read_schema(path).names)]
        except Exception:  # not readable Parquet
            return None
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if text.startswith("{"):
        lines = [line for line in text.splitlines() if line.strip()]
        complete = lines[:-1] if len(head) >= 65536 and len(lines) > 1 else lines
        records = []
        for line in complete[:50]:
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue  # a bad line: the loader quarantines it
            records.append(value if isinstance(value, dict) else {})
        if not records and len(head) >= 65536 and len(lines) == 1:  # a first record over 64 KB
            keys = re.findall(r'"([A-Za-z_.]+)"\s*:', lines[0])
            records = [dict.fromkeys(keys)] if keys else []
        return records or _json_document_head(text)
    if text.startswith("["):
        return _json_document_head(text)
    if Path(path.name.removesuffix(".gz")).suffix.lower() in (".csv", ".tsv"):
        reader = csv.reader(io.StringIO(text.splitlines()[0] if text else ""))
        return [dict.fromkeys(next(reader, []))]
    return None


def _json_document_head(text: str) -> list[dict] | None:
    """The first object of a JSON list, or of a ``{"data": [...]}`` API response."""
    match = re.search(r'^\s*(\[|\{\s*"data"\s*:\s*\[)\s*', text)
    if not match:
        return None
    try:
        first, _ = json.JSONDecoder().raw_decode(text, match.end())
    except json.JSONDecodeError:
        keys = re.findall(r'"([A-Za-z_.]+)"\s*:', text[match.end():match.end() + 8192])
        return [dict.fromkeys(keys)] if keys else None
    return [first] if isinstance(first, dict) else None


def sniff_platform(path: Path, head: bytes) -> str | None:
    """The platform record type of a file, from its head; raise on a mixed file.

    Raises
    ------
    UnknownFormatError
        When the first records of the file are of different platform formats.
    """
    records = _head_records(path, head)
    if not records:
        return None
    kinds = [classify_keys(set(r)) for r in records]
    found = sorted({k for k in kinds if k is not None})
    if len(found) > 1:
        from aiscale.loaders import UnknownFormatError

        lines = {k: kinds.index(k) + 1 for k in found}
        raise UnknownFormatError(
            f"{path}: the file mixes records of several formats ("
            + ", ".join(f"{k} at record {n}" for k, n in lines.items())
            + "). Split it into one file per format, or force one with --format NAME.")
    return found[0] if found and kinds[0] is not None else None


def column(frame: pd.DataFrame, *names: str) -> pd.Series:
    """The first of ``names`` present in ``frame`` (null Series when none)."""
    for name in names:
        if name in frame.columns:
            return frame[name]
    return pd.Series(None, index=frame.index, dtype=object)


def number(series: pd.Series) -> pd.Series:
    """Numbers (text or numeric) as float64 with NaN; bad text becomes NaN."""
    return pd.to_numeric(series, errors="coerce").astype("float64")


def normalise_tokens(inp: pd.Series, out: pd.Series, cache_read: pd.Series, cache_write: pd.Series,
                     reasoning: pd.Series, total: pd.Series, *, apart_when_unknown: bool = False,
                     ) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Input including cache reads and writes, output including reasoning, whichever way counted.

    A source counts cache (reasoning) tokens *apart* from input (output) when input is
    smaller than the cache tokens, or when its total equals the sum of all parts; the
    parts are then added. Without a total, ``apart_when_unknown`` says how the source counts
    (Langfuse's usage details count apart; OpenAI-style usage counts inside). Returns ``(input, output, how)`` where ``how`` names what was added.

    Examples
    --------
    >>> s = lambda *v: pd.Series(v, dtype="float64")
    >>> i, o, how = normalise_tokens(s(20, 100), s(5, 10), s(80, 80), s(0, 0), s(2, 0), s(107, 110))
    >>> i.tolist(), o.tolist(), how.tolist()
    ([100.0, 100.0], [7.0, 10.0], ['cache+reasoning', ''])
    """
    cache = cache_read.fillna(0) + cache_write.fillna(0)
    think = reasoning.fillna(0)
    summed = total.notna() & (cache + think > 0) & (total == inp + out + cache + think)
    unknown = total.isna() & apart_when_unknown
    add_cache = (cache > 0) & ((inp < cache) | summed | unknown | (total == inp + out + cache))
    add_think = (think > 0) & ((out < think) | summed | unknown | (total == inp + out + think))
    how = pd.Series("", index=inp.index, dtype=object)
    how = how.mask(add_cache, "cache").mask(add_think, "reasoning").mask(add_cache & add_think,
                                                                          "cache+reasoning")
    return inp + cache.where(add_cache, 0), out + think.where(add_think, 0), how


def plain(value: Any) -> Any:
    """A value made JSON-ready (NumPy arrays and scalars, Arrow dicts, timestamps)."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def is_null(value: Any) -> bool:
    """True for None and NaN/NaT scalars (containers are never null)."""
    if value is None:
        return True
    if isinstance(value, (list, dict, tuple, np.ndarray)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def demote_llm_wrappers(spans: pd.DataFrame) -> pd.DataFrame:
    """An LLM span with an LLM child is a wrapper of that call, not a second call.

    Frameworks traced together with the client they call (LangChain's ``ChatOpenAI`` over an
    instrumented OpenAI client) give both an LLM span with the same usage. The outer one
    becomes kind ``other``; its tokens and cost move to ``attributes``
    (``aiscale.wrapped_llm_usage``), so the call is counted once. Works within a chunk.

    Examples
    --------
    >>> spans = pd.DataFrame({"trace_id": ["t", "t"], "span_id": ["a", "b"], "parent_id": [None, "a"],
    ...     "kind": ["llm", "llm"], "input_tokens": [10.0, 10.0], "attributes": ["{}", "{}"]})
    >>> out = demote_llm_wrappers(spans)
    >>> out["kind"].tolist(), out["input_tokens"].tolist(), out["attributes"][0]
    (['other', 'llm'], [nan, 10.0], '{"aiscale.wrapped_llm_usage":{"input_tokens":10.0}}')
    """
    llm = spans["kind"] == "llm"
    children = spans.loc[llm & spans["parent_id"].notna(), ["trace_id", "parent_id"]]
    candidate = llm & spans["span_id"].isin(children["parent_id"])  # by span id alone first: cheap
    if not candidate.any():
        return spans
    keys = pd.MultiIndex.from_frame(spans.loc[candidate, ["trace_id", "span_id"]].astype(object))
    wrapper = pd.Series(False, index=spans.index)
    wrapper[candidate] = keys.isin(pd.MultiIndex.from_frame(children.astype(object)))
    if not wrapper.any():
        return spans
    spans = spans.copy()
    moved = [c for c in (*TOKEN_NAMES, "reported_cost_usd") if c in spans]
    for index in spans.index[wrapper]:
        attrs = json.loads(spans.at[index, "attributes"])
        attrs["aiscale.wrapped_llm_usage"] = {c: plain(spans.at[index, c]) for c in moved
                                              if not is_null(spans.at[index, c])}
        spans.at[index, "attributes"] = json.dumps(attrs, separators=(",", ":"), sort_keys=True,
                                                   default=str, ensure_ascii=False)
    spans.loc[wrapper, moved] = None
    spans.loc[wrapper, "kind"] = "other"
    return spans


TOKEN_NAMES = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
               "reasoning_tokens")
