"""How a report section is displayed in a notebook: finding, figure, table and note, every string
from a trace escaped, unknown values shown as unknown.

Examples
--------
>>> import pandas as pd
>>> "unknown" in table_html(pd.DataFrame({"cost_usd": [float("nan")]}))
True
>>> "None" in table_html(pd.DataFrame({"tail_dominated": [None]}))  # an object column's None too
False
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Section:
    """One report section: a finding sentence, an optional figure and table.

    ``data`` holds the figures the finding rests on (totals, group sizes), written beside the
    section's output in the executed notebook (output metadata ``aiscale``) so that tests and
    scripts can check them; ``status`` is ``"finding"``, or ``"why not"`` when the section
    says why it cannot apply.
    """

    finding: str
    figure: Any = None
    table: pd.DataFrame | None = None
    note: str = ""
    data: dict = field(default_factory=dict)
    status: str = "finding"
    columns: tuple[str, ...] = ()


def show(section: Section) -> None:
    """Display a section in a notebook: finding, figure, table, note, all escaped."""
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    from aiscale.report import figures_ahead

    payload = {"status": section.status, "finding": section.finding, **_plain(section.data)}
    display(HTML(f'<p class="aiscale-finding">{html.escape(section.finding)}</p>'),
            metadata={"aiscale": payload})
    if section.figure is not None:
        figure = getattr(section.figure, "figure", section.figure)
        if not figures_ahead.draw_ahead(figure):  # drawn in a second process when a report renders
            display(figure)
        plt.close(figure)
    if section.table is not None and len(section.table):
        display(HTML(table_html(section.table, section.columns)))
    if section.note:
        display(HTML(f"<p><i>{html.escape(section.note)}</i></p>"))
    figures_ahead.place_drawn()


WIDE = 8
CELL_CHARS = 60


def table_html(table: pd.DataFrame, columns: tuple[str, ...] = ()) -> str:
    """A narrow table of what matters, the whole table one click away (``<details>``, no script).

    ``columns`` are the key columns; without them a table wider than :data:`WIDE` columns
    shows its first :data:`WIDE`. Long cells (lists of variants) are cut in the narrow table.
    Every string is escaped.

    Examples
    --------
    >>> html_text = table_html(pd.DataFrame({"a": [1.5], "b": ["x" * 100]}), ("a", "b"))
    >>> "<details>" in html_text and "xxxx…" in html_text
    True
    """
    table = _missing_as_unknown(table)
    keys = [c for c in columns if c in table.columns] or list(table.columns[:WIDE])
    narrow = table[keys].copy()
    for column in narrow.columns:
        if narrow[column].dtype == object or pd.api.types.is_string_dtype(narrow[column]):
            narrow[column] = narrow[column].map(
                lambda v: v if not isinstance(v, str) or len(v) <= CELL_CHARS else v[:CELL_CHARS - 1] + "…")
    out = narrow.to_html(escape=True, index=False, max_rows=40, float_format=_fmt, na_rep="unknown")
    if len(keys) < len(table.columns) or not narrow.equals(table[keys]):
        full = table.to_html(escape=True, index=False, max_rows=200, float_format=_fmt, na_rep="unknown")
        out += f"<details><summary>All {len(table.columns)} columns</summary>{full}</details>"
    return out


def _missing_as_unknown(table: pd.DataFrame) -> pd.DataFrame:
    """Nullable columns (``Int64``, ``boolean``, ``string``) whose missing values would print as
    ``<NA>``, and object columns whose None would print as ``None``: numbers become floats (NaN
    prints as unknown), the rest text with ``unknown``."""
    out = table.copy()
    for column in out.columns:
        values = out[column]
        nullable = pd.api.types.is_extension_array_dtype(values) or values.dtype == object
        if not nullable or not values.isna().any():
            continue
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out[column] = values.astype("float64")
        elif pd.api.types.is_string_dtype(values):
            out[column] = values.fillna("unknown")
        else:
            out[column] = values.astype(object).where(values.notna(), "unknown")
    return out


def _plain(value: Any) -> Any:
    """JSON-safe copy of section data: NaN and NA become None, NumPy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    if value is None or (isinstance(value, float) and not np.isfinite(value)) or value is pd.NA:
        return None
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _fmt(value: float) -> str:
    """One number format: thousands separated, 4 significant digits below 1,000, no exponents above."""
    if not np.isfinite(value):
        return "unknown" if np.isnan(value) else f"{value}"
    if value == 0:
        return "0"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"

