"""Shared machinery of the platform loaders (Phoenix, Langfuse, LangSmith).

Not a loader (the leading underscore keeps it out of the registry). It reads a file as
chunks of flat records with their row numbers (JSONL line, JSON list index, CSV data row,
Parquet row, all 1-based), tells the platform formats apart from the first records, and
normalises token counts to the canonical convention.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from aiscale.loaders.base import Quarantined, excerpt, iter_json_lines

CHUNK_ROWS = 20_000
ROW = "_row"
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
_SCORE_KEYS = {"value", "name"}


def snake(name: str) -> str:
    """camelCase to snake_case (``traceId`` -> ``trace_id``); other names unchanged."""
    return _CAMEL.sub(r"_\1", name).lower() if "." not in name else name


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
        return records or _json_document_head(text)
    if text.startswith("["):
        return _json_document_head(text)
    if path.suffix.lower() in (".csv", ".tsv"):
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


def _parquet_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        yield pd.DataFrame(), [Quarantined(str(path), None, f"unreadable Parquet: {exc}")]
        return
    offset = 0
    for batch in parquet.iter_batches(batch_size=CHUNK_ROWS):
        frame = batch.to_pandas()
        if frame.index.name is not None and frame.index.name not in frame.columns:
            frame = frame.reset_index()
        frame = frame.reset_index(drop=True)
        frame[ROW] = np.arange(offset + 1, offset + 1 + len(frame))
        offset += len(frame)
        yield frame, []


def _jsonl_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    rows: list[dict] = []
    bad: list[Quarantined] = []
    for number, value in iter_json_lines(path):
        if isinstance(value, Quarantined):
            bad.append(value)
        elif not isinstance(value, dict):
            bad.append(Quarantined(str(path), number, "line is not a JSON object", excerpt(value)))
        else:
            rows.append({**value, ROW: number})
        if len(rows) + len(bad) >= CHUNK_ROWS:
            yield pd.DataFrame.from_records(rows), bad
            rows, bad = [], []
    if rows or bad:
        yield pd.DataFrame.from_records(rows), bad


def _json_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    from aiscale.loaders._common import read_document

    document, problem = read_document(path)
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    bad = [problem] if problem else []
    if not isinstance(document, list):
        yield pd.DataFrame(), bad or [Quarantined(str(path), None, "expected a JSON list of records")]
        return
    for start in range(0, len(document), CHUNK_ROWS):
        rows, part_bad = [], bad if start == 0 else []
        for index, value in enumerate(document[start:start + CHUNK_ROWS], start=start + 1):
            if isinstance(value, dict):
                rows.append({**value, ROW: index})
            else:
                part_bad.append(Quarantined(str(path), index, "record is not a JSON object", excerpt(value)))
        yield pd.DataFrame.from_records(rows), part_bad


def _csv_chunks(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    offset = 0
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    for frame in pd.read_csv(path, sep=sep, chunksize=CHUNK_ROWS, dtype=str, keep_default_na=False,
                             na_values=[""]):
        frame[ROW] = np.arange(offset + 1, offset + 1 + len(frame))
        offset += len(frame)
        yield frame, []


def _is_json_object(line: bytes) -> bool:
    """Whether a line is a complete JSON object (a JSONL record, not the start of a document)."""
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def read_records(path: Path) -> Iterator[tuple[pd.DataFrame, list[Quarantined]]]:
    """Yield ``(records, quarantined)`` chunks of a Parquet, JSONL, JSON or CSV file.

    ``records`` has the file's columns (camelCase renamed to snake_case) plus ``_row``.
    """
    with open(path, "rb") as handle:
        first = handle.read(4)
        if first != b"PAR1":
            handle.seek(0)
            for raw in handle:
                first = raw.lstrip(b"\xef\xbb\xbf").strip()
                if first:
                    break
    if first.startswith(b"PAR1"):
        chunks = _parquet_chunks(path)
    elif first.startswith(b"["):
        chunks = _json_chunks(path)
    elif first.startswith(b"{"):
        chunks = _jsonl_chunks(path) if _is_json_object(first) else _json_chunks(path)
    else:
        chunks = _csv_chunks(path)
    for frame, bad in chunks:
        yield frame.rename(columns=snake), bad


def column(frame: pd.DataFrame, *names: str) -> pd.Series:
    """The first of ``names`` present in ``frame`` (null Series when none)."""
    for name in names:
        if name in frame.columns:
            return frame[name]
    return pd.Series(None, index=frame.index, dtype=object)


def number(series: pd.Series) -> pd.Series:
    """Numbers (text or numeric) as float64 with NaN; bad text becomes NaN."""
    return pd.to_numeric(series, errors="coerce").astype("float64")


def timestamps(series: pd.Series) -> pd.Series:
    """ISO text, datetimes or epoch milliseconds (pandas' JSON default) to UTC timestamps."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return pd.to_datetime(series, unit="ms", utc=True)
    values = pd.to_datetime(series, utc=True, errors="coerce", format="mixed")
    return values.dt.as_unit("us")


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


def json_rows(frame: pd.DataFrame, extra: list[dict] | None = None) -> list[str]:
    """One compact JSON object text per row of ``frame`` (nulls dropped), merged with ``extra``."""
    records = frame.to_dict("records")
    out = []
    for index, record in enumerate(records):
        kept = {k: plain(v) for k, v in record.items() if not is_null(v)}
        if extra is not None:
            kept.update(extra[index])
        out.append(json.dumps(kept, separators=(",", ":"), sort_keys=True, default=str,
                              ensure_ascii=False))
    return out


def parse_json_cells(series: pd.Series) -> pd.Series:
    """Cells holding JSON text (CSV and some Parquet exports) parsed; dicts stay dicts."""
    def one(value: Any) -> Any:
        if isinstance(value, str) and value[:1] in "{[":
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return plain(value) if isinstance(value, (dict, np.ndarray)) else value
    return series.map(one) if len(series) else series
