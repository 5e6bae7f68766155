"""Output that is safe to open: atomic files, CSV cells a spreadsheet will not run as formulas.

Examples
--------
>>> import pandas as pd
>>> neutralise_formulas(pd.DataFrame({"a": ["=1+1", "ok", "-2"], "n": [1, 2, 3]}))["a"].tolist()
["'=1+1", 'ok', "'-2"]
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a frame is read: writing Parquet atomically needs none
    import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would read as a formula with ``'`` (OWASP's rule).

    Only text columns change; numbers (negative ones included) are written as they are.
    """
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        text = values.astype("string")
        risky = text.str.startswith(FORMULA_STARTS).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            values = values.astype(object).copy()
            values[risky] = "'" + text[risky].astype(str)
            out[column] = values
    return out


def write_atomically(out: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``out``, then rename it to ``out``.

    A failure (disk full, Ctrl-C) leaves no truncated ``out`` and no temporary file.
    """
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
