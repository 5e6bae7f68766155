"""The one result kit of the analyses: argument checks, input columns, display, formats, axes.

Examples
--------
>>> import pandas as pd
>>> check_columns(pd.DataFrame({"success": [1]}), ["sucess"])
Traceback (most recent call last):
...
ValueError: `facts` lacks columns ['sucess']; available columns: ['success']. Did you mean 'success' for 'sucess'?
"""

from __future__ import annotations

import difflib
import functools
import html
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    """Raise ValueError naming the parameter, the allowed values and the value passed."""
    if value not in allowed:
        raise ValueError(f"The value for `{name}` must be one of {list(allowed)}, but {value!r} was passed.")


def check_columns(frame: pd.DataFrame, columns: Sequence[str], name: str = "facts") -> None:
    """Raise for a missing column, listing the available ones and the closest matches.

    TypeError when ``frame`` is not a DataFrame; ValueError naming what is missing.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame, but {type(frame).__name__} was passed.")
    missing = [c for c in columns if c not in frame.columns]
    if not missing:
        return
    available = [str(c) for c in frame.columns]
    hints = [(c, difflib.get_close_matches(str(c), available, n=1)) for c in missing]
    hint = "; ".join(f"Did you mean {close[0]!r} for {c!r}?" for c, close in hints if close)
    raise ValueError(f"`{name}` lacks columns {missing}; available columns: {available}."
                     + (f" {hint}" if hint else ""))


def new_axes(ax=None):
    """Return ``ax``, or new axes on a new figure when ``ax`` is None (never shows)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    return ax


PLOT_CELLS = 2_000
"""Cells per axis a drawn line is resolved to: about three per pixel of a report's figure."""


def drawn_points(x, y, *, log_x: bool = False, log_y: bool = False, cells: int = PLOT_CELLS) -> np.ndarray:
    """Mask of the points of a line worth drawing: in each run of consecutive points that fall
    in one cell of a ``cells`` x ``cells`` grid over the data (log scaled where the axis is),
    the first and the last. The line drawn through them differs from the whole one only inside
    those cells; a survival curve of 25,000 steps keeps about 4,000. Points that a log axis
    cannot place (zero, negative, infinite) are kept, and so is every point of a line of at
    most ``cells`` points (cheap to draw as it is).

    Examples
    --------
    >>> x = np.arange(1.0, 100_001.0)
    >>> int(drawn_points(x, 1 / x, log_x=True, log_y=True).sum()) < 5_000
    True
    >>> drawn_points(np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0]), cells=2).tolist()
    [True, False, True]
    """
    if len(x) <= cells:
        return np.ones(len(x), dtype=bool)

    def cell(values, log: bool) -> tuple[np.ndarray, np.ndarray]:
        values = np.asarray(values, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.log10(values) if log else values
        placed = np.isfinite(scaled)
        if not placed.any():
            return np.zeros(len(values)), placed
        low, high = scaled[placed].min(), scaled[placed].max()
        return np.floor((np.where(placed, scaled, low) - low) / ((high - low) or 1.0) * cells), placed

    cx, placed_x = cell(x, log_x)
    cy, placed_y = cell(y, log_y)
    key = np.where(placed_x & placed_y, cx * (cells + 1) + cy, -1.0 - np.arange(len(cx)))  # unplaced: own run
    starts = np.r_[True, key[1:] != key[:-1]]
    return starts | np.r_[starts[1:], True]


class ResultDisplay:
    """Mixin for result objects: ``_repr_html_`` from ``repr``, ``summary()`` and ``notes``.

    Every string is escaped; unknown values show as "unknown", never as 0. Every ``plot``
    of a subclass draws trace strings (variant and model names) as text, never as math:
    see :func:`literal_text`.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "plot" in cls.__dict__:
            cls.plot = literal_text(cls.__dict__["plot"])

    def summary(self) -> pd.DataFrame:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{html.escape(str(n))}</li>" for n in getattr(self, "notes", ()))
        table = self.summary().to_html(index=False, escape=True, na_rep="unknown",
                                       float_format=lambda v: f"{v:.4g}")
        return (f"<p><code>{html.escape(repr(self))}</code></p>" + table
                + (f"<ul>{notes}</ul>" if notes else ""))


def literal_text(plot: Callable) -> Callable:
    """Wrap a plot method so that the text it draws is never parsed as Matplotlib mathtext.

    Names from traces may hold ``$``: ``$\\frac{a}{b}$`` would be drawn as a fraction and
    ``team$$a`` fails the whole figure. Text made while plotting (titles, legends, labels and
    the tick labels of the axes drawn) is made with ``text.parse_math`` off.
    """
    if getattr(plot, "_literal_text", False):
        return plot

    @functools.wraps(plot)
    def wrapped(self, *args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            ax = plot(self, *args, **kwargs)
            for axes in getattr(getattr(ax, "figure", None), "axes", []):
                for axis in (axes.xaxis, axes.yaxis):  # tick labels are made lazily: make them now
                    axis.get_major_ticks(len(axis.get_majorticklocs()))
        return ax

    wrapped._literal_text = True
    return wrapped


def fmt_usd(value: float) -> str:
    """Dollars with cents, or 'unknown' for a null (never '$0' for unknown).

    Examples
    --------
    >>> fmt_usd(1234.5), fmt_usd(float("nan"))
    ('$1,234.50', 'unknown')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    return f"${value:,.2f}"


def named_models(models) -> str:
    """Up to three model names, in order of first appearance, then "and others".

    Examples
    --------
    >>> named_models(["b", "a", "b", "c", "d"])
    'b, a, c and others'
    """
    unique = pd.unique(pd.Series(models, dtype=object))
    return ", ".join(str(m) for m in unique[:3]) + (" and others" if len(unique) > 3 else "")


def fmt_pp(value: float) -> str:
    """A proportion as rounded percentage points with a true minus sign, e.g. '−1'.

    Examples
    --------
    >>> fmt_pp(0.0612)
    '6'
    """
    text = f"{value * 100:.0f}"
    return "0" if text in ("-0", "0") else text.replace("-", "−")


def task_keys(facts: pd.DataFrame) -> np.ndarray:
    """Task of each trace as text: ``task_id``, else ``trace_id``, else the row position."""
    for col in ("task_id", "trace_id"):  # the usual case, a complete column: one conversion
        if col in facts.columns:
            if facts[col].notna().all():
                return facts[col].astype(str).to_numpy(dtype=object)
            break
    key = pd.Series(np.arange(len(facts)).astype(str), index=facts.index, dtype=object)
    for col in ("trace_id", "task_id"):
        if col in facts.columns:
            key = facts[col].astype(object).where(facts[col].notna(), key)
    return key.astype(str).to_numpy()


def floats(series: pd.Series) -> np.ndarray:
    """Any numeric or boolean (nullable, Arrow) column as float64 with NaN for null (a new array)."""
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":  # NumPy numbers: NaN is the null
        return series.to_numpy(dtype=float, copy=True)
    if isinstance(series.array, (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)):
        return series.to_numpy(dtype=float, na_value=np.nan, copy=True)  # nullable: values and mask
    if series.dtype == object:
        if series.isna().all():  # nulls only (a source without the column): no conversion per cell
            return np.full(len(series), np.nan)
        series = pd.Series(pd.array(series, dtype="Float64"), index=series.index)
    return pd.to_numeric(series, errors="raise").astype("Float64").to_numpy(
        dtype=float, na_value=np.nan)


def trace_cost(facts: pd.DataFrame, cost: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Cost per trace and where it came from.

    ``cost="auto"`` takes ``cost_usd`` (aiscale's price) and falls back to
    ``reported_cost_usd`` trace by trace; any other value names one column. Returns the costs
    (NaN = unpriced) and an array of source column names ('' where unpriced). A reported
    cost of exactly 0 for a trace that used tokens (or made LLM calls) is unknown, not free:
    sources write 0 for models they cannot price.

    Examples
    --------
    >>> f = pd.DataFrame({"cost_usd": [1.0, None], "reported_cost_usd": [2.0, 3.0]})
    >>> c, src = trace_cost(f)
    >>> c.tolist(), src.tolist()
    ([1.0, 3.0], ['cost_usd', 'reported_cost_usd'])
    >>> trace_cost(pd.DataFrame({"reported_cost_usd": [0.0], "output_tokens": [50]}))[0].tolist()
    [nan]
    """
    n = len(facts)
    if cost != "auto":
        check_columns(facts, [cost])
        values = floats(facts[cost])
        return values, np.where(np.isnan(values), "", cost).astype(object)
    cols = [c for c in ("cost_usd", "reported_cost_usd") if c in facts.columns]
    if not cols:
        check_columns(facts, ["cost_usd"])
    values, source = np.full(n, np.nan), np.full(n, "", dtype=object)
    for col in cols:
        v = floats(facts[col])
        if col == "reported_cost_usd":
            v = np.where((v == 0) & used_tokens(facts), np.nan, v)
        fill = np.isnan(values) & ~np.isnan(v)
        values[fill], source[fill] = v[fill], col
    return values, source


def used_tokens(facts: pd.DataFrame) -> np.ndarray:
    """Whether each trace used tokens or made LLM calls (a reported cost of 0 is then unknown)."""
    used = np.zeros(len(facts), dtype=bool)
    for column in ("input_tokens", "output_tokens", "n_llm_calls"):
        if column in facts.columns:
            used |= floats(facts[column]) > 0  # NaN (unknown) is not > 0
    return used


def source_label(sources: np.ndarray) -> str:
    """'cost_usd', 'reported_cost_usd', 'cost_usd + reported_cost_usd' or 'unpriced'."""
    used = [s for s in ("cost_usd", "reported_cost_usd") if (sources == s).any()]
    other = sorted(set(pd.unique(sources)) - {"", *used})  # hashed, not a loop per trace
    return " + ".join(used + other) or "unpriced"
