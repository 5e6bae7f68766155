"""Time windows over traces: UTC timestamps, the partition days a window reads, the mask.

Examples
--------
>>> window_days("2025-01-02", None)[2]
('2025-01-01', '9999-99-99')
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def utc_timestamp(value) -> pd.Timestamp | None:
    """Return ``value`` as a UTC timestamp (naive values are taken as UTC); None stays None."""
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def window_days(since, until) -> tuple[pd.Timestamp | None, pd.Timestamp | None, tuple[str, str] | None]:
    """The window's bounds and the span-partition days to read (one day of margin each side)."""
    low, high = utc_timestamp(since), utc_timestamp(until)
    if low is None and high is None:
        return None, None, None
    first = (low - pd.Timedelta(days=1)).strftime("%Y-%m-%d") if low is not None else "0000-00-00"
    last = (high + pd.Timedelta(days=1)).strftime("%Y-%m-%d") if high is not None else "9999-99-99"
    return low, high, (first, last)


def in_window(started_at: pd.Series, since=None, until=None) -> np.ndarray:
    """Boolean mask of traces that started in ``[since, until)`` (unknown start: outside).

    Examples
    --------
    >>> s = pd.Series(pd.to_datetime(["2025-01-01", "2025-01-03", None], utc=True))
    >>> in_window(s, "2025-01-02").tolist()
    [False, True, False]
    """
    started = pd.to_datetime(started_at, utc=True)
    keep = started.notna()
    if since is not None:
        keep &= started >= utc_timestamp(since)
    if until is not None:
        keep &= started < utc_timestamp(until)
    return keep.fillna(False).to_numpy(dtype=bool)


def utc_day_labels(start_time: pd.Series, form: str = "%Y-%m-%d") -> pd.Series:
    """The UTC day of each timestamp written as ``form`` (null where the time is unknown), as
    ``Series.dt.strftime`` writes it (the same dtype).

    Each distinct day is formatted once: a million calls span a few hundred days, and
    formatting every timestamp took a second.

    Examples
    --------
    >>> s = pd.Series(["2025-01-01T23:59:59Z", None, "2025-01-01T00:00:00+02:00"])
    >>> utc_day_labels(s, "day=%Y-%m-%d").fillna("unknown").tolist()
    ['day=2025-01-01', 'unknown', 'day=2024-12-31']
    """
    stamps = pd.Series(pd.to_datetime(start_time, utc=True, errors="coerce"))
    if stamps.empty:
        return stamps.dt.strftime(form)
    codes, days = pd.factorize(stamps.dt.floor("D"))
    labels = np.append(np.asarray(days.strftime(form), dtype=object), None)  # code -1 (unknown) picks None
    return pd.Series(labels[codes], index=getattr(start_time, "index", None))  # dtype inferred, as strftime's
