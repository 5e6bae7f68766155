"""Phoenix spans dataframe (``get_spans_dataframe()`` saved as Parquet or JSONL), OpenInference.

Columns read: ``context.trace_id``, ``context.span_id`` (column or index), ``parent_id``,
``name``, ``span_kind``, ``start_time``, ``end_time`` (ISO text, timestamps, or epoch
milliseconds as ``DataFrame.to_json`` writes them), ``status_code``, ``status_message``,
``events`` and the flattened ``attributes.*`` columns, mapped with OpenInference semantics
(:mod:`aiscale.loaders._openinference`): ``llm.model_name``, ``llm.provider`` /
``llm.system``, ``llm.token_count.*`` (LLM spans only; CHAIN/AGENT totals stay in
``attributes``), ``llm.cost.*`` as ``reported_cost_usd``, ``tool.name``, ``input.value`` of
TOOL spans as the tool arguments, and ``session.id``, ``user.id``, ``metadata`` for the trace.

Rows are spans; a row is quarantined with its file and row (JSONL line) number.

Examples
--------
>>> sniff(Path("spans.jsonl"), b'{"context.span_id": "a", "context.trace_id": "t", "span_kind": "LLM"}')
True
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from aiscale.loaders._openinference import map_openinference
from aiscale.loaders._platform import (
    column,
    demote_llm_wrappers,
    json_rows,
    parse_json_cells,
    sniff_platform,
    timestamps,
)
from aiscale.loaders._records import ROW, read_records
from aiscale.loaders.base import Chunk

NAME = "phoenix"
PRIORITY = 40
_PREFIX = "attributes."
_STATUS = {"OK": "ok", "ERROR": "error", "UNSET": "unset"}


def sniff(path: Path, head: bytes) -> bool:
    """A Parquet/JSONL/JSON/CSV file whose records have ``context.span_id`` / ``span_kind``."""
    return sniff_platform(path, head) == "phoenix"


def read(path: str | Path) -> Iterator[Chunk]:
    """Yield span and trace rows of a Phoenix spans dataframe file, chunk by chunk."""
    path = Path(path)
    for records, bad in read_records(path):
        if not len(records):
            yield Chunk(quarantined=bad, rows_read=len(bad))
            continue
        spans, traces = to_spans(records, path)
        yield Chunk(spans=spans, traces=traces, quarantined=bad, rows_read=len(records) + len(bad))


def _attributes(records: pd.DataFrame) -> pd.DataFrame:
    names = [c for c in records.columns if c.startswith(_PREFIX)]
    attrs = records[names].rename(columns=lambda c: c[len(_PREFIX):])
    if "attributes" in records:  # nested (not flattened) attributes column
        nested = pd.json_normalize(parse_json_cells(records["attributes"]).map(
            lambda v: v if isinstance(v, dict) else {}).tolist())
        nested.index = records.index
        attrs = pd.concat([attrs, nested[[c for c in nested if c not in attrs]]], axis=1)
    return attrs


def _error_type(records: pd.DataFrame, status: pd.Series) -> pd.Series:
    message = column(records, "status_message").astype("string").str.slice(0, 200)
    events = parse_json_cells(column(records, "events"))
    exc = events.where(status == "error").map(_exception_type)
    return exc.fillna(message.where(status == "error").replace("", pd.NA)).astype(object)


def _exception_type(events: object) -> str | None:
    from aiscale.loaders._platform import plain

    events = plain(events)
    for event in events if isinstance(events, list) else []:
        if isinstance(event, dict) and event.get("name") == "exception":
            attrs = event.get("attributes") or {}
            return attrs.get("exception.type") or attrs.get("exception.message")
    return None


def to_spans(records: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Map one chunk of Phoenix dataframe rows to canonical spans and trace rows."""
    attrs = _attributes(records)
    mapped, keep = map_openinference(attrs, kind=column(records, "span_kind"))
    spans = mapped.drop(columns=["session_id", "user_id", "metadata"])
    spans["trace_id"] = column(records, "context.trace_id", "trace_id")
    spans["span_id"] = column(records, "context.span_id", "span_id")
    spans["parent_id"] = column(records, "parent_id").replace("", None)
    spans["name"] = column(records, "name")
    spans["start_time"] = timestamps(column(records, "start_time"))
    spans["end_time"] = timestamps(column(records, "end_time"))
    status = column(records, "status_code").astype("string").str.upper().map(_STATUS)
    spans["status"] = status.fillna("unset").astype(object)
    spans["error_type"] = _error_type(records, spans["status"])
    is_tool = spans["kind"] == "tool"
    spans["tool_name"] = spans["tool_name"].where(~is_tool | spans["tool_name"].notna(), spans["name"])
    spans["tool_arguments"] = column(attrs, "input.value").where(is_tool)
    spans["attributes"] = json_rows(keep)
    spans["source"] = NAME
    spans["source_file"] = str(path)
    spans["source_row"] = records[ROW].to_numpy()
    spans = demote_llm_wrappers(spans)
    traces = pd.DataFrame({"trace_id": spans["trace_id"], "session_id": mapped["session_id"],
                           "user_id": mapped["user_id"],
                           "metadata": mapped["metadata"].map(_metadata_text),
                           "_root": spans["parent_id"].isna()})
    traces = traces.sort_values("_root", ascending=False, kind="stable").drop(columns="_root")
    traces = traces.groupby("trace_id", sort=False, as_index=False).first()
    return spans, traces


def _metadata_text(value: object) -> str | None:
    from aiscale.loaders._platform import is_null, plain
    from aiscale.loaders.base import json_text

    if is_null(value):
        return None
    return value if isinstance(value, str) else json_text(plain(value))


