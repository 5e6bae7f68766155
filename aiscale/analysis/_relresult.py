"""Display helpers shared by the reliability result objects (notebook repr, axes creation).

Examples
--------
>>> fmt_pp(0.0612)
'6'
"""

from __future__ import annotations

from aiscale.analysis._common import ResultDisplay, new_axes  # noqa: F401 - re-exported


def fmt_pp(value: float) -> str:
    """A proportion as rounded percentage points with a true minus sign, e.g. '−1'."""
    text = f"{value * 100:.0f}"
    return "0" if text in ("-0", "0") else text.replace("-", "−")
