"""Display helpers shared by the reliability result objects (notebook repr, axes creation).

Examples
--------
>>> fmt_pp(0.0612)
'6'
"""

from __future__ import annotations

import html

import pandas as pd


class ResultDisplay:
    """Mixin: ``_repr_html_`` from ``repr``, ``summary()`` and the ``notes`` field."""

    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_html_(self) -> str:
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<p><code>{html.escape(repr(self))}</code></p>"
                + self.summary().to_html(index=False, float_format=lambda v: f"{v:.4g}")
                + (f"<ul>{notes}</ul>" if notes else ""))


def new_axes(ax=None):
    """Return ``ax``, or new axes on a new figure when ``ax`` is None (never shows)."""
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is a core dependency
        raise ImportError("Plotting requires matplotlib. You can install matplotlib with "
                          "`pip install matplotlib`.") from exc
    _, ax = plt.subplots()
    return ax


def fmt_pp(value: float) -> str:
    """A proportion as rounded percentage points with a true minus sign, e.g. '−1'."""
    text = f"{value * 100:.0f}"
    return "0" if text in ("-0", "0") else text.replace("-", "−")
