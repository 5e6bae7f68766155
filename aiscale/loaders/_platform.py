"""Shared machinery of the platform loaders (Phoenix, Langfuse, LangSmith).

Not a loader (the leading underscore keeps it out of the registry). It tells the platform
formats apart from a file's first records. Files are read by :mod:`aiscale.loaders._records`
and mapped in DuckDB (:mod:`aiscale.loaders._platform_sql`, which also normalises token counts
to the canonical convention and counts a framework's LLM span over the client's LLM span once).

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
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from aiscale.loaders._records import snake

if TYPE_CHECKING:
    import pandas as pd

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


def number(series: pd.Series) -> pd.Series:
    """Numbers (text or numeric) as float64 with NaN; bad text becomes NaN."""
    import pandas as pd

    return pd.to_numeric(series, errors="coerce").astype("float64")
