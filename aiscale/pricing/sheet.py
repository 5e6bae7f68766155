"""User price sheets (CSV or YAML) that win over genai-prices.

One row per (provider, model, from_date). Columns (all optional but ``model``):

- ``provider``: blank or ``*`` matches any provider; ``model`` may hold ``*`` / ``?`` wildcards
  (an Azure deployment name, ``gpt-4o*``, ``*``). Matching ignores case.
- ``from_date``: the row applies to spans on or after this day (the latest applicable row wins).
- ``input_per_mtok``, ``cached_input_per_mtok``, ``cache_write_per_mtok``, ``output_per_mtok``,
  ``reasoning_per_mtok``: USD per million tokens (cache and reasoning are billed at input and
  output when left blank, and what the cache saved is then unknown); ``per_call_usd``: a flat
  price per call.
- ``price_as``: price like this genai-prices model (e.g. an Azure deployment priced as ``gpt-4o``).
- ``discount``: a fraction taken off every rate (batch 0.5, negotiated 0.2); a row with only a
  discount discounts the genai-prices rate of the span's own model.
- ``gpu_hour_usd`` (with ``gpus``, default 1): a self-hosted model; the cost is spread over
  calls, either a steady ``calls_per_hour`` the deployment serves, or the day's actual calls
  over ``hours_per_day`` GPU-hours (default 24, an always-on reservation).

Examples
--------
>>> import pandas as pd
>>> sheet = read_price_sheet(pd.DataFrame({"model": ["my-llama"], "per_call_usd": [0.001]}))
>>> sheet.loc[0, ["per_call_usd", "discount"]].tolist()
[0.001, 0.0]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

PRICE_FIELDS = {
    "input_per_mtok": "input_usd_per_token",
    "cached_input_per_mtok": "cache_read_usd_per_token",
    "cache_write_per_mtok": "cache_write_usd_per_token",
    "output_per_mtok": "output_usd_per_token",
    "reasoning_per_mtok": "reasoning_usd_per_token",
}
_ALIASES = {"cache_read_per_mtok": "cached_input_per_mtok", "from": "from_date",
            "valid_from": "from_date", "call_usd": "per_call_usd"}
_NUMERIC = [*PRICE_FIELDS, "per_call_usd", "discount", "gpu_hour_usd", "gpus",
            "calls_per_hour", "hours_per_day"]
SHEET_COLUMNS = ["provider", "model", "from_date", "price_as", *_NUMERIC]


def read_price_sheet(sheet: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read a price sheet (CSV, YAML or a DataFrame) into a normalised frame.

    Parameters
    ----------
    sheet : path or DataFrame
        ``.csv``, ``.yaml``/``.yml`` (a list of rows, or ``{"prices": [...]}``) or a frame.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SHEET_COLUMNS`, one row per sheet row, in sheet order.
    """
    where = "" if isinstance(sheet, pd.DataFrame) else f"{sheet}: "
    try:
        return _normalised(_read_raw(sheet))
    except (ValueError, TypeError) as exc:  # name the file in every complaint about it
        raise ValueError(f"{where}{exc}" if where and not str(exc).startswith(str(sheet)) else str(exc)) from None


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.rename(columns=lambda c: str(c).strip().lower().replace("-", "_"))
    frame = frame.rename(columns=_ALIASES)
    unknown = sorted(set(frame.columns) - set(SHEET_COLUMNS))
    if unknown:
        raise ValueError(f"Price sheet columns must be among {SHEET_COLUMNS}, but {unknown} "
                         "were passed.")
    if "model" not in frame.columns or frame["model"].isna().any():
        raise ValueError("Every price sheet row needs a `model` (a name or a pattern like 'gpt-4o*').")
    out = frame.reindex(columns=SHEET_COLUMNS)
    for column in _NUMERIC:
        out[column] = pd.to_numeric(out[column], errors="raise").astype(float)
    out["discount"] = out["discount"].fillna(0.0)
    out["gpus"] = out["gpus"].fillna(1.0)
    if ((out["discount"] < 0) | (out["discount"] >= 1)).any():
        raise ValueError("The price sheet `discount` must be a fraction in [0, 1) (0.5 = half price).")
    out["from_date"] = pd.to_datetime(out["from_date"]).dt.date
    for column in ("provider", "model", "price_as"):
        values = [None if pd.isna(v) or str(v).strip() in ("", "*" if column == "provider" else "")
                  else str(v).strip().lower() for v in out[column]]
        out[column] = pd.Series(values, index=out.index, dtype="object")
    return out.reset_index(drop=True)


def _read_raw(sheet: str | Path | pd.DataFrame) -> pd.DataFrame:
    if isinstance(sheet, pd.DataFrame):
        return sheet.copy()
    path = Path(sheet)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype={"provider": "string", "model": "string"})
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(path.read_text())
        rows = data.get("prices", data) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ValueError(f"{path}: a YAML price sheet is a list of rows or {{prices: [...]}}.")
        return pd.DataFrame(rows)
    raise ValueError(f"The price sheet must be a .csv, .yaml or .yml file or a DataFrame, but "
                     f"{path.name!r} was passed.")


def match_rows(sheet: pd.DataFrame, provider: str | None, model: str) -> pd.DataFrame:
    """Return the sheet rows that apply to (provider, model), with a ``_rank`` (higher wins).

    Exact model names beat patterns and a named provider beats any provider; among equals,
    the later ``from_date`` wins, then the later row.
    """
    from fnmatch import fnmatchcase

    model_l, provider_l = model.lower(), (provider or "").lower()
    keep = np.array([fnmatchcase(model_l, pattern) and (pd.isna(p) or p == provider_l)
                     for pattern, p in zip(sheet["model"], sheet["provider"], strict=True)],
                    dtype=bool)
    hits = sheet[keep].copy()
    hits["_rank"] = (hits["model"] == model_l).astype(int) * 2 + hits["provider"].notna()
    return hits


def row_for_day(rows: pd.DataFrame, day) -> pd.Series | None:
    """Pick the row in force on ``day`` among :func:`match_rows` hits, or None."""
    started = np.array([d is None or pd.isna(d) or d <= day for d in rows["from_date"]], dtype=bool)
    rows = rows[started]
    if rows.empty:
        return None
    dates = [pd.Timestamp.min.date() if d is None or pd.isna(d) else d for d in rows["from_date"]]
    order = sorted(range(len(rows)), key=lambda i: (rows["_rank"].iloc[i], dates[i], i))
    return rows.iloc[order[-1]]


def has_own_prices(row: pd.Series) -> bool:
    """True when the row states token or per-call prices itself."""
    return bool(row[[*PRICE_FIELDS, "per_call_usd"]].notna().any())


def own_rates(row: pd.Series) -> dict:
    """Per-token rates (USD) stated by a sheet row, before the discount."""
    rates = {col: row[field] / 1e6 for field, col in PRICE_FIELDS.items()}
    rates["call_usd"] = row["per_call_usd"]
    return {k: (None if pd.isna(v) else float(v)) for k, v in rates.items()}


def gpu_call_usd(row: pd.Series, n_calls: float | None) -> float | None:
    """Per-call cost of a self-hosted model: GPU-hours spread over calls (None when unknown)."""
    gpu_hour = row["gpu_hour_usd"] * row["gpus"]
    if pd.notna(row["calls_per_hour"]):
        return float(gpu_hour / row["calls_per_hour"])
    if n_calls is None or pd.isna(n_calls) or n_calls <= 0:
        return None
    hours = row["hours_per_day"] if pd.notna(row["hours_per_day"]) else 24.0
    return float(gpu_hour * hours / n_calls)
