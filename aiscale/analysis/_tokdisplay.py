"""Display helpers shared by the token and cost result objects (notebook repr, axes).

Examples
--------
>>> fmt_usd(1234.5)
'$1,234.50'
>>> fmt_usd(float("nan"))
'unknown'
"""

from __future__ import annotations

import math

import pandas as pd

from aiscale.analysis._common import (  # noqa: F401 - re-exported for the token modules
    ResultDisplay,
    check_choice,
    check_columns,
    new_axes,
)

Displayable = ResultDisplay


def fmt_usd(value: float) -> str:
    """Dollars with cents, or 'unknown' for a null (never '$0' for unknown)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    return f"${value:,.2f}"


def require_columns(frame: pd.DataFrame, columns, what: str = "data") -> None:
    """Raise a ValueError listing the missing and the available columns (see check_columns)."""
    check_columns(frame, columns, what)
