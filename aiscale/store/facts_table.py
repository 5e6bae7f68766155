"""Per-trace tables without spans (CSV, Parquet, JSON lines) read straight into trace facts.

A leaderboard's per-instance cost, an export of root runs or a spreadsheet of results has one
row per trace and no spans. :func:`load_facts` renames its columns to the canonical fact
columns with a column map, checks every row, and returns the usable rows as a trace-facts
frame; the columns the table lacks stay null (unknown). Columns outside the map and the
schema are kept, per row, as JSON in ``metadata``.

Examples
--------
>>> import pandas as pd, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "runs.csv"
>>> pd.DataFrame({"id": ["a", "b"], "calls": [3, "x"], "ok": ["true", "false"]}).to_csv(path, index=False)
>>> facts = load_facts(path, columns={"id": "trace_id", "calls": "iterations", "ok": "success"})
>>> facts[["trace_id", "iterations", "success"]].values.tolist()
[['a', 3, True]]
>>> facts.attrs["load_summary"]["rows_quarantined"], facts.attrs["quarantined"][0]["reason"]
(1, "iterations is not a number ('x')")
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa

from aiscale import schema
from aiscale.loaders.base import Quarantined, excerpt, iter_json_lines, json_text
from aiscale.loaders.validate import validate_facts

Format = Literal["csv", "parquet", "jsonl"]
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
                                ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
# Columns an analysis reads beside the facts (kept as columns, not moved into metadata):
# ``censored`` marks a trace cut off by a step cap, for ``fit_iterations(censored="censored")``.
ANALYSIS_COLUMNS = {"censored": pa.bool_()}
_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}


def check_choice(name: str, value: object, allowed: list[str]) -> None:
    if value not in allowed:
        raise ValueError(f"The value for `{name}` must be one of {allowed}, but {value!r} was passed.")


def _read_table(path: Path, format: Format) -> pd.DataFrame:
    if format == "csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    if format == "parquet":
        return pd.read_parquet(path)
    try:
        return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON lines ({exc}); fix or remove the bad line.") from exc


def _rename(table: pd.DataFrame, columns: dict[str, str] | None) -> pd.DataFrame:
    columns = dict(columns or {})
    missing = [source for source in columns if source not in table.columns]
    if missing:
        raise ValueError(f"The column map names {missing}, which the table lacks. "
                         f"Available columns: {list(table.columns)}.")
    allowed = [*schema.FACT_COLUMNS, *ANALYSIS_COLUMNS]
    unknown = [target for target in columns.values() if target not in allowed]
    if unknown:
        raise ValueError(f"The column map targets {unknown}, which are not trace-facts columns. "
                         f"Allowed targets: {allowed}.")
    return table.rename(columns=columns)


def _with_metadata(table: pd.DataFrame) -> pd.DataFrame:
    extra = [c for c in table.columns if c not in schema.FACT_COLUMNS and c not in ANALYSIS_COLUMNS]
    if not extra:
        return table
    records = table[extra].astype(object).where(table[extra].notna(), None).to_dict("records")
    base = table["metadata"] if "metadata" in table else pd.Series(None, index=table.index)
    merged = [json_text({**rec, **({"metadata": m} if isinstance(m, str) and m else {})})
              for rec, m in zip(records, base, strict=True)]
    return table.drop(columns=extra).assign(metadata=merged)


def _coerce(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Cast columns to their fact types; the first cast failure per row becomes its reason."""
    reason = pd.Series(pd.NA, index=table.index, dtype="string")
    out = table.copy()
    for field in [*schema.FACTS, *(pa.field(n, t) for n, t in ANALYSIS_COLUMNS.items())]:
        if field.name not in out or field.name in ("metadata",):
            continue
        raw = out[field.name]
        present = raw.notna() & (raw.astype("string").str.strip() != "")
        values, ok = _cast(raw, field.type)
        failed = present & ~ok
        texts = raw.astype("string").str.slice(0, 40)
        reason = reason.mask(reason.isna() & failed, f"{field.name} is not a " + _type_word(field.type)
                             + " ('" + texts + "')")
        out[field.name] = values.where(~failed)
    return out, reason


def _type_word(arrow_type: object) -> str:
    text = str(arrow_type)
    return {"int64": "number", "double": "number", "bool": "boolean (true/false)"}.get(
        text, "timestamp" if text.startswith("timestamp") else "text")


def _cast(raw: pd.Series, arrow_type: object) -> tuple[pd.Series, pd.Series]:
    text = str(arrow_type)
    if text in ("int64", "double"):
        values = pd.to_numeric(raw, errors="coerce")
        ok = values.notna()
        if text == "int64":
            ok &= (values.round() == values).fillna(False)
        return values, ok
    if text == "bool":
        lowered = raw.astype("string").str.strip().str.lower()
        values = lowered.map(lambda v: True if v in _TRUE else False if v in _FALSE else pd.NA)
        return values.astype("boolean"), values.notna()
    if text.startswith("timestamp"):
        values = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
        return values, values.notna()
    return raw.astype("string"), pd.Series(True, index=raw.index)


def _read(path: Path, format: Format) -> tuple[pd.DataFrame, pd.Series, list[Quarantined]]:
    """The table, each row's line/row number in the file, and lines that could not be parsed."""
    if format == "jsonl":
        records, numbers, bad = [], [], []
        for number, value in iter_json_lines(path):
            if isinstance(value, Quarantined):
                bad.append(value)
            elif not isinstance(value, dict):
                bad.append(Quarantined(str(path), number, "a line must be a JSON object", excerpt(value)))
            else:
                records.append(value)
                numbers.append(number)
        return pd.DataFrame.from_records(records), pd.Series(numbers, dtype="int64"), bad
    table = _read_table(path, format)
    offset = 2 if format == "csv" else 1  # CSV: the header is line 1; Parquet: rows from 1
    return table, pd.Series(range(offset, offset + len(table)), dtype="int64"), []


def _summary(path: Path, format: Format, read: int, loaded: int, quarantined: list) -> dict:
    return {"path": str(path), "format": format, "rows_read": read, "rows_loaded": loaded,
            "rows_quarantined": len(quarantined), "unit": "row"}


def load_facts(path: str | Path, *, columns: dict[str, str] | None = None,
               format: Format | None = None, row_ids: bool = False) -> pd.DataFrame:
    """Read a per-trace table (CSV, Parquet or JSON lines) as trace facts.

    Parameters
    ----------
    path : str or Path
        The table.
    columns : dict, optional
        Source column -> canonical fact column (e.g. ``{"instance": "trace_id", "calls":
        "iterations", "resolved": "success"}``). Columns already named like fact columns
        need no entry. ``censored`` (a trace cut off by its step cap; true/false) is kept as
        a boolean column for ``fit_iterations(censored="censored")``. Other unmapped columns
        go to ``metadata`` (JSON per row).
    format : {"csv", "parquet", "jsonl"}, optional
        Forced format; by default from the file suffix.
    row_ids : bool, default=False
        When the table has no ``trace_id`` column (per-request logs), name each row
        ``"<file stem>:<row>"`` instead of raising.

    Returns
    -------
    pandas.DataFrame
        One row per usable trace with the columns of :data:`aiscale.schema.FACT_COLUMNS`
        (Int64, boolean, float64 with NaN, UTC timestamps); ``task_id`` defaults to
        ``trace_id`` and ``trial`` to 0, as for traces loaded from spans. ``attrs["load_summary"]`` holds
        rows read / loaded / quarantined; ``attrs["quarantined"]`` each bad row's file,
        row (CSV: line number; JSON lines: line; Parquet: row from 1) and reason.

    Raises
    ------
    ValueError
        Unknown format, a column map naming missing or non-fact columns, no ``trace_id``.
    """
    path = Path(path)
    format = format or _SUFFIXES.get(path.suffix.lower())
    check_choice("format", format, ["csv", "parquet", "jsonl"])
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty; nothing to load.")
    table, numbers, bad = _read(path, format)
    rows_read = len(table) + len(bad)
    table = _rename(table, columns)
    if "trace_id" not in table and row_ids:
        table["trace_id"] = (f"{path.stem}:" + pd.Series(numbers).astype(str)).to_numpy()
    if "trace_id" not in table:
        raise ValueError(f"{path}: the table needs a `trace_id` column; map one with "
                         f"columns={{'<column>': 'trace_id'}}. Available columns: {list(table.columns)}.")
    table = table.reset_index(drop=True)
    table["task_id"] = table["task_id"].fillna(table["trace_id"]) if "task_id" in table else table["trace_id"]
    table["trial"] = table["trial"].fillna(0) if "trial" in table else 0
    table, reason = _coerce(_with_metadata(table))
    table = table.assign(source_file=str(path), source_row=numbers.to_numpy())
    failed = reason.notna()
    bad += [Quarantined(str(path), int(n), str(r)) for n, r in zip(table["source_row"][failed], reason[failed],
                                                                    strict=True)]
    good, rejected = validate_facts(table.loc[~failed])
    bad += rejected
    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    facts = schema.conform(good, "facts").to_pandas(types_mapper=mapping.get)
    for name in ANALYSIS_COLUMNS:
        if name in good:
            facts[name] = pd.array(good[name].astype("boolean").to_numpy(), dtype="boolean")
    facts.attrs["load_summary"] = _summary(path, format, rows_read, len(facts), bad)
    facts.attrs["quarantined"] = [vars(q) for q in bad]
    return facts
