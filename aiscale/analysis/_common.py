"""What every analysis module shares: argument checks, result display, new axes.

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
import html
from collections.abc import Sequence

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


class ResultDisplay:
    """Mixin for result objects: ``_repr_html_`` from ``repr``, ``summary()`` and ``notes``.

    Every string is escaped; unknown values show as "unknown", never as 0.
    """

    def summary(self) -> pd.DataFrame:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{html.escape(str(n))}</li>" for n in getattr(self, "notes", ()))
        table = self.summary().to_html(index=False, escape=True, na_rep="unknown",
                                       float_format=lambda v: f"{v:.4g}")
        return (f"<p><code>{html.escape(repr(self))}</code></p>" + table
                + (f"<ul>{notes}</ul>" if notes else ""))
