"""Display helpers shared by the token and cost result objects (notebook repr, axes).

Examples
--------
>>> fmt_usd(1234.5)
'$1,234.50'
>>> fmt_usd(float("nan"))
'unknown'
"""

from __future__ import annotations

import html
import math

import pandas as pd


class Displayable:
    """Mixin: ``_repr_html_`` from ``repr`` and ``summary()``, plus ``notes`` when present."""

    def summary(self) -> pd.DataFrame:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in getattr(self, "notes", ()))
        table = self.summary().to_html(index=False, float_format=lambda v: f"{v:.4g}",
                                       na_rep="unknown")
        return (f"<p><code>{html.escape(repr(self))}</code></p>" + table
                + (f"<ul>{notes}</ul>" if notes else ""))


def new_axes(ax=None):
    """Return ``ax``, or new axes on a new figure when ``ax`` is None (never shows)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    return ax


def fmt_usd(value: float) -> str:
    """Dollars with cents, or 'unknown' for a null (never '$0' for unknown)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    return f"${value:,.2f}"


def check_choice(name: str, value: object, allowed) -> None:
    """Raise the standard ValueError when ``value`` is not among ``allowed``."""
    if value not in allowed:
        raise ValueError(f"The value for `{name}` must be one of {list(allowed)}, but {value!r} "
                         "was passed.")


def require_columns(frame: pd.DataFrame, columns, what: str = "data") -> None:
    """Raise a ValueError listing the missing and the available columns."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"`{what}` lacks columns {missing}; available: {list(frame.columns)}.")
