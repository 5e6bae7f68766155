"""Power and runs needed for comparing two variants on the same tasks (Miller 2024, sec. 5).

With n tasks, K trials per task per variant, ω² the variance across tasks of the true per-task
difference (b − a) and σ²_a, σ²_b the mean within-task (run-to-run) variances, the paired mean
difference has variance (ω² + σ²_a/K + σ²_b/K)/n. A difference δ is detected with power 1 − β
at two-sided level α when n = (z_{1−α/2} + z_{1−β})² (ω² + (σ²_a + σ²_b)/K) / δ².
More trials per task only shrink the within-task part: past a point, only more tasks help.

Examples
--------
>>> sample_size(effect=0.05, between_var=0.02, within_var=0.2, trials=1)
1319
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_choice, new_axes
from aiscale.analysis._stats import z_value
from aiscale.analysis.reliability.outcomes import outcomes, task_table
from aiscale.analysis.reliability.paired import _paired_tasks


def _z(alpha: float, power: float) -> float:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"`alpha` and `power` must be in (0, 1), but alpha={alpha!r}, "
                         f"power={power!r} were passed.")
    return z_value(1 - alpha) + z_value(2 * power - 1)


def _within(within_var: float | tuple[float, float]) -> float:
    return float(sum(within_var)) if isinstance(within_var, tuple) else 2.0 * float(within_var)


def sample_size(*, effect: float, between_var: float, within_var: float | tuple[float, float],
                trials: int = 1, alpha: float = 0.05, power: float = 0.8) -> int:
    """Tasks needed to detect a paired difference ``effect`` (Miller's formula).

    Parameters
    ----------
    effect : float
        Difference to detect (e.g. 0.05 for 5 pp).
    between_var : float
        ω²: variance across tasks of the true per-task difference (b − a).
    within_var : float or (float, float)
        σ²: mean within-task variance of one trial (p(1 − p) averaged over tasks), the same for
        both variants or (σ²_a, σ²_b).
    trials : int, default=1
        Trials per task per variant.
    alpha : float, default=0.05
        Two-sided significance level.
    power : float, default=0.8

    Returns
    -------
    int

    Examples
    --------
    >>> sample_size(effect=0.1, between_var=0.02, within_var=0.2, trials=4)
    95
    """
    var = between_var + _within(within_var) / trials
    return int(math.ceil(_z(alpha, power) ** 2 * var / effect**2))


def minimum_detectable_effect(*, n_tasks: int, between_var: float,
                              within_var: float | tuple[float, float], trials: int = 1,
                              alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest paired difference detected with the given power on ``n_tasks`` tasks.

    Examples
    --------
    >>> round(minimum_detectable_effect(n_tasks=95, between_var=0.02, within_var=0.2,
    ...                                 trials=4), 3)
    0.1
    """
    var = between_var + _within(within_var) / trials
    return float(_z(alpha, power) * math.sqrt(var / n_tasks))


@dataclass(frozen=True, eq=False, repr=False)
class PowerResult(ResultDisplay):
    """Tasks needed per trials-per-task, the variance components behind them, and the MDE."""

    table: pd.DataFrame
    components: dict
    effect: float
    alpha: float
    power: float
    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """Per trials-per-task K: tasks needed and total runs (both variants)."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """Variance components and the minimum detectable effect of the data at hand."""
        return pd.DataFrame([self.components])

    def plot(self, ax=None, **kwargs):
        """Tasks needed against trials per task."""
        ax = new_axes(ax)
        t = self.table.dropna(subset=["tasks_needed"])
        ax.plot(t["trials"], t["tasks_needed"], marker=kwargs.pop("marker", "o"), **kwargs)
        ax.set_xlabel("trials per task (each variant)")
        ax.set_ylabel(f"tasks to detect {self.effect:g} (power {self.power:.0%}, α {self.alpha:g})")
        return ax

    def __repr__(self) -> str:
        c = self.components
        return (f"<aiscale.PowerResult: effect {self.effect:g} needs "
                f"{_fmt_needed(self.table)}; MDE of the data {c['mde_observed']:.3g} on "
                f"{c['n_tasks']} tasks>")


def _fmt_needed(t: pd.DataFrame) -> str:
    t = t.dropna(subset=["tasks_needed"])
    return ", ".join(f"{int(r.tasks_needed)} tasks at {int(r.trials)} trial(s)"
                     for r in t.head(3).itertuples()) or "unknown"


def runs_needed(facts: pd.DataFrame, *, a: str, b: str, effect: float, by: str = "variant",
                column: str = "success", threshold: float | None = None,
                trials: Sequence[int] = (1, 2, 3, 5, 10), tasks: int | None = None,
                alpha: float = 0.05, power: float = 0.8) -> PowerResult:
    """Tasks and trials needed to detect ``effect`` between ``a`` and ``b``, from pilot data.

    Estimates ω² and σ² from the shared tasks of a pilot run (σ² needs tasks with at least two
    trials), then applies :func:`sample_size` for each number of trials per task. Also reports
    the minimum detectable effect of the data at hand, from its observed paired standard error.

    Parameters
    ----------
    facts : pandas.DataFrame
        Pilot trace facts with ``task_id``, ``by`` and the outcome column.
    a, b : str
        The two variants (values of ``by``).
    effect : float
        Difference to detect (0.05 = 5 pp).
    by, column, threshold
        As in :func:`aiscale.analysis.paired.compare`.
    trials : sequence of int, default=(1, 2, 3, 5, 10)
        Trials per task per variant to plan for.
    tasks : int, optional
        A fixed number of tasks: ``components["trials_needed"]`` then gives the trials per task
        needed with that many tasks (inf when no number of trials is enough: add tasks).
    alpha : float, default=0.05
    power : float, default=0.8

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"task_id": list("aabbccdd") * 2, "variant": ["A"] * 8 + ["B"] * 8,
    ...                   "success": [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0]})
    >>> runs_needed(f, a="A", b="B", effect=0.2).summary()["trials"].tolist()
    [1, 2, 3, 5, 10]
    """
    out = outcomes(facts, by=by, column=column, threshold=threshold, binary=False)
    check_choice("a", a, out.groups())
    check_choice("b", b, out.groups())
    t = _paired_tasks(task_table(out.data), a, b)
    comp = _components(t)
    comp["mde_observed"] = _z(alpha, power) * comp.pop("se_observed")
    if tasks is not None:
        comp["trials_needed"] = _trials_needed(comp, effect, tasks, _z(alpha, power))
    rows = []
    for k in trials:
        need = (sample_size(effect=effect, between_var=comp["between_var"], within_var=(
            comp["within_var_a"], comp["within_var_b"]), trials=k, alpha=alpha, power=power)
            if np.isfinite(comp["within_var_a"] + comp["within_var_b"]) else
            math.ceil(_z(alpha, power) ** 2 * comp["diff_var"] / effect**2) if k == 1 else np.nan)
        rows.append({"trials": k, "tasks_needed": need, "total_runs": 2 * k * need})
    notes = ["Miller (2024) paired power formula; variance components from the shared tasks."]
    if not np.isfinite(comp["within_var_a"]):
        notes.append("No task has two trials: within-task variance is unknown, so only one trial "
                     "per task can be planned.")
    return PowerResult(pd.DataFrame(rows), comp, effect, alpha, power, tuple(notes))


def _components(t: pd.DataFrame) -> dict:
    d = t["difference"].to_numpy(float)
    n = len(d)
    if n < 2:
        raise ValueError(f"Power needs at least 2 tasks shared by both variants, but {n} are.")
    within = {}
    for side in ("a", "b"):
        nn, s, ss = (t[f"{c}_{side}"].to_numpy(float) for c in ("n", "s", "ss"))
        multi = nn >= 2
        s2 = (ss[multi] - s[multi] ** 2 / nn[multi]) / (nn[multi] - 1)
        within[side] = float(s2.mean()) if multi.any() else np.nan
    diff_var = float(np.var(d, ddof=1))
    noise = np.mean(within["a"] / t["n_a"].to_numpy(float) + within["b"] / t["n_b"].to_numpy(float))
    between = max(0.0, diff_var - noise) if np.isfinite(noise) else np.nan
    return {"n_tasks": n, "mean_trials": float(t[["n_a", "n_b"]].to_numpy().mean()),
            "between_var": between, "within_var_a": within["a"], "within_var_b": within["b"],
            "diff_var": diff_var, "se_observed": float(np.sqrt(diff_var / n))}


def _trials_needed(comp: dict, effect: float, tasks: int, z: float) -> float:
    """Trials per task so that ``tasks`` tasks detect ``effect``: solve Miller's formula for K."""
    room = tasks * effect**2 / z**2 - comp["between_var"]
    if not room > 0:
        return math.inf
    return float(math.ceil((comp["within_var_a"] + comp["within_var_b"]) / room))
