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
