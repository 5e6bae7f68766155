"""Shared input handling for the reliability analyses: column checks and outcome extraction.

The reliability functions all start from the same long table: one row per known outcome with
the group (usually ``variant``), the task and the outcome as a float (1.0 / 0.0 for success, the
score itself for continuous scores). Unknown outcomes (null success or score) are dropped here and
counted, never treated as failures.

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"task_id": ["a", "a", "b"], "variant": "v",
...                       "success": pd.array([True, None, False], dtype="boolean")})
>>> out = outcomes(facts, by="variant", column="success", threshold=None)
>>> out.data["y"].tolist(), out.unknown.to_dict()
([1.0, 0.0], {'v': 1})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis._result import check_columns


@dataclass(frozen=True, eq=False)
class Outcomes:
    """Known outcomes in long form plus the count of unknown ones per group.

    ``data`` has columns ``group``, ``task``, ``y`` (float); ``unknown`` is a Series by group.
    """

    data: pd.DataFrame
    unknown: pd.Series
    binary: bool
    by: str
    column: str
    threshold: float | None

    def groups(self) -> list:
        """Groups in order of first appearance (including groups with only unknown outcomes)."""
        return list(self.unknown.index)


def _as_float(series: pd.Series) -> np.ndarray:
    if isinstance(series.dtype, pd.ArrowDtype) or series.dtype == "boolean" or series.dtype == bool:
        return series.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    if series.dtype == object:
        return pd.array(series, dtype="Float64").to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(series, errors="raise").astype("Float64").to_numpy(
        dtype=float, na_value=np.nan)


def outcomes(
    facts: pd.DataFrame, *, by: str | None, column: str, threshold: float | None,
    binary: bool = True,
) -> Outcomes:
    """Extract known outcomes per (group, task) from a facts frame.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts; needs ``column`` and ``by`` (``task_id`` falls back to ``trace_id``, then to
        the row position).
    by : str or None
        Grouping column (None: one group named "all").
    column : str
        Outcome column: boolean success, or a numeric score.
    threshold : float or None
        If given, the outcome is ``column >= threshold`` (a score turned into success).
    binary : bool, default=True
        Require 0/1 outcomes (after thresholding).
    """
    check_columns(facts, [column] + ([by] if by is not None else []))
    y = _as_float(facts[column])
    if threshold is not None:
        y = np.where(np.isnan(y), np.nan, (y >= threshold).astype(float))
    known = ~np.isnan(y)
    other = y[known][~np.isin(y[known], (0.0, 1.0))]
    if binary and len(other):
        raise ValueError(
            f"Column {column!r} has values other than 0/1 (e.g. {float(other[0])!r}); pass "
            "`threshold=` to turn a score into success, or use `score_mean` for continuous scores."
        )
    group = facts[by].astype(object).where(facts[by].notna(), "(none)") if by else "all"
    task = task_ids(facts)
    long = pd.DataFrame({"group": group, "task": task, "y": y}, index=facts.index)
    order = pd.unique(long["group"])
    unknown = (~known).astype(int)
    unknown = pd.Series(unknown, index=facts.index).groupby(
        long["group"].to_numpy(), sort=False).sum()
    unknown = unknown.reindex(order).fillna(0).astype(int)
    return Outcomes(long[known].reset_index(drop=True), unknown, binary, by or "all", column,
                    threshold)


def task_ids(facts: pd.DataFrame) -> np.ndarray:
    """Task of each row as str: ``task_id``, else ``trace_id``, else the row position."""
    key = None
    for col in ("task_id", "trace_id"):
        if col in facts.columns:
            values = facts[col].astype("string")
            key = values if key is None else key.where(key.notna(), values)
            if key.notna().all():
                return key.astype(str).to_numpy()
    positions = pd.Series(np.arange(len(facts)).astype(str), index=facts.index)
    key = positions if key is None else key.where(key.notna(), positions)
    return key.astype(str).to_numpy()


def task_table(data: pd.DataFrame) -> pd.DataFrame:
    """Per (group, task): number of known trials ``n``, sum ``s`` and sum of squares ``ss``.

    Rows come in order of first appearance; computed with factorize + bincount (no groupby).
    """
    g_codes, g_uniq = pd.factorize(data["group"])
    t_codes, t_uniq = pd.factorize(data["task"])
    pair, first = pd.factorize(g_codes.astype(np.int64) * max(len(t_uniq), 1) + t_codes)
    y = data["y"].to_numpy(float)
    return pd.DataFrame({
        "group": np.asarray(g_uniq, dtype=object)[first // max(len(t_uniq), 1)],
        "task": np.asarray(t_uniq, dtype=object)[first % max(len(t_uniq), 1)],
        "n": np.bincount(pair, minlength=len(first)),
        "s": np.bincount(pair, weights=y, minlength=len(first)),
        "ss": np.bincount(pair, weights=y * y, minlength=len(first)),
    })


def unknown_note(unknown: int, column: str) -> str:
    """Sentence fragment about excluded unknown outcomes ('' when there are none)."""
    if unknown == 0:
        return ""
    return f"{unknown} trial(s) with unknown {column} excluded (not counted as failures)."


def by_group(tasks: pd.DataFrame, groups: Sequence) -> dict:
    """Split a task table by group in one pass; groups without known outcomes get empty frames."""
    parts = dict(tuple(tasks.groupby("group", sort=False)))
    return {g: parts.get(g, tasks.iloc[:0]) for g in groups}
