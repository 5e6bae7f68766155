"""When agent runs finish: discrete-time hazard, Kaplan-Meier survival and a hazard GLM.

At iteration k, the traces *at risk* are those that reached k (iterations >= k). The hazard
of finishing is the share of them that stop at k; of finishing successfully, the share that
stop at k with success. Traces cut off by the step cap (censored) leave the risk set without
an event. The survival curve S(k) = P(still running after k) is the Kaplan-Meier product
with Greenwood log-log intervals; ``p_success_after`` answers "a run still going after k
steps succeeds x% of the time", with Wilson intervals.

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"iterations": [1, 2, 2, 3, 5], "success": [True, True, False, True, False]})
>>> h = iteration_hazard(facts)
>>> h.frame().query("k == 2")[["at_risk", "finished", "succeeded"]].to_numpy().tolist()
[[4, 2, 1]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from aiscale.analysis._dists import norm_ppf
from aiscale.analysis._result import ResultDisplay, check_choice, check_columns, new_axes
from aiscale.analysis._stats import wilson
from aiscale.analysis.loops.calls import censor_mask, coerce_floats, design_matrix, nullable_bools


@dataclass(frozen=True, repr=False)
class IterationHazard(ResultDisplay):
    """Hazard and survival per iteration (per group), and optionally a hazard GLM.

    Attributes
    ----------
    table : DataFrame
        group, k, at_risk, finished, succeeded, censored, hazard_finish (+ ci), hazard_success
        (+ ci), survival (+ ci), p_success_after (+ ci): success rate of traces with
        iterations > k.
    glm : DataFrame or None
        term, coef, se, ci_low, ci_high, p_value, ratio (hazard ratio for cloglog, odds ratio
        for logit) of the discrete-time model; baseline terms ``log_k`` and ``log_k_sq``.
    """

    event: str
    link: str
    n: int
    n_censored: int
    table: pd.DataFrame
    glm: pd.DataFrame | None
    level: float

    def __repr__(self) -> str:
        groups = self.table["group"].nunique()
        return (f"<IterationHazard: {self.event} over {self.n} traces ({self.n_censored} censored), "
                f"{groups} group(s), k = 1..{int(self.table['k'].max())}>")

    def summary(self) -> pd.DataFrame:
        """The GLM coefficients when covariates were given, else the median iterations per group."""
        if self.glm is not None:
            return self.glm.copy()
        rows = []
        for group, part in self.table.groupby("group", sort=False):
            below = part.loc[part["survival"] <= 0.5, "k"]
            rows.append({"group": group, "n": int(part["at_risk"].iloc[0]),
                         "median_iterations": float(below.iloc[0]) if len(below) else np.nan,
                         "p_success_overall": float((part["succeeded"].sum()) / part["at_risk"].iloc[0])})
        return pd.DataFrame(rows)

    def frame(self) -> pd.DataFrame:
        """The per-iteration table."""
        return self.table.copy()

    def plot(self, ax=None, *, y: Literal["survival", "hazard", "p_success_after"] = "survival",
             **kwargs):
        """Draw survival, hazard (of the chosen event) or p_success_after against k, with CI bands."""
        check_choice("y", y, ["survival", "hazard", "p_success_after"])
        column = f"hazard_{self.event}" if y == "hazard" else y
        ax = new_axes(ax)
        for group, part in self.table.groupby("group", sort=False):
            line, = ax.step(part["k"], part[column], where="post", label=str(group), **kwargs)
            ax.fill_between(part["k"], part[f"{column}_low"], part[f"{column}_high"], step="post",
                            alpha=0.2, color=line.get_color())
        ax.set(xlabel="iteration k", ylabel=column.replace("_", " "))
        if self.table["group"].nunique() > 1:
            ax.legend()
        return ax


def iteration_hazard(facts: pd.DataFrame, *, event: Literal["finish", "success"] = "finish",
                     by: str | None = None, covariates: Sequence[str] | None = None,
                     link: Literal["cloglog", "logit"] = "cloglog", censored=None,
                     step_cap: int | None = None, level: float = 0.95) -> IterationHazard:
    """Discrete-time hazard of finishing (at all, or successfully) at each iteration.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with ``iterations`` and ``success``.
    event : {"finish", "success"}, default="finish"
        The event the GLM and the hazard plot model.
    by : str, optional
        Column to split the survival table by (e.g. ``variant``).
    covariates : sequence of str, optional
        Columns for the discrete-time GLM (strings become dummies); no GLM when None.
    link : {"cloglog", "logit"}, default="cloglog"
        Link of the GLM (cloglog: grouped proportional hazards).
    censored, step_cap :
        Traces cut off before finishing, as in :func:`aiscale.analysis.loops.fit_iterations`.
    level : float, default=0.95

    Returns
    -------
    IterationHazard
    """
    check_choice("event", event, ["finish", "success"])
    check_choice("link", link, ["cloglog", "logit"])
    check_columns(facts, ["iterations", "success"] + ([by] if by else []) + list(covariates or []),
                   "facts")
    iters = coerce_floats(facts["iterations"])
    keep = np.isfinite(iters) & (iters >= 1)
    cens = censor_mask(facts, censored, step_cap)[keep]
    data = facts.loc[keep]
    iters, ok = iters[keep].astype(int), nullable_bools(data["success"]) == 1
    groups = data[by].astype("string").fillna("<NA>").to_numpy() if by else np.full(len(data), "all")
    tables = [_km_table(iters[groups == g], ok[groups == g], cens[groups == g], level).assign(group=g)
              for g in pd.unique(groups)]
    table = pd.concat(tables, ignore_index=True)
    table = table[["group"] + [c for c in table.columns if c != "group"]]
    glm = None
    if covariates:
        ended = ~cens & (ok if event == "success" else np.ones_like(ok))
        glm = _hazard_glm(data, iters, ended, covariates, link, level)
    return IterationHazard(event, link, len(iters), int(cens.sum()), table, glm, level)


def _km_table(iters: np.ndarray, ok: np.ndarray, cens: np.ndarray, level: float) -> pd.DataFrame:
    kmax = int(iters.max()) if len(iters) else 1
    ends = np.bincount(iters, minlength=kmax + 1)[1:]
    finished = np.bincount(iters[~cens], minlength=kmax + 1)[1:]
    succeeded = np.bincount(iters[ok & ~cens], minlength=kmax + 1)[1:]
    at_risk = ends[::-1].cumsum()[::-1]
    k = np.arange(1, kmax + 1)
    z = norm_ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = finished / at_risk
        surv = np.cumprod(1 - hazard)
        green = np.cumsum(finished / (at_risk * (at_risk - finished)))
        loglog = np.sqrt(green) / np.log(surv)
        s_low, s_high = surv ** np.exp(-z * loglog), surv ** np.exp(z * loglog)
    s_low, s_high = np.where(surv > 0, s_low, 0.0), np.where(surv > 0, s_high, 0.0)
    after = at_risk - ends
    succ_after = succeeded[::-1].cumsum()[::-1] - succeeded
    out = pd.DataFrame({"k": k, "at_risk": at_risk, "finished": finished, "succeeded": succeeded,
                        "censored": ends - finished})
    for name, num, den in (("hazard_finish", finished, at_risk),
                           ("hazard_success", succeeded, at_risk),
                           ("p_success_after", succ_after, after)):
        low, high = wilson(num, den, level=level)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = num / den
        out[f"{name}_low"], out[f"{name}_high"] = low, high
    out["survival"], out["survival_low"], out["survival_high"] = surv, s_low, s_high
    return out


def _hazard_glm(data, iters, ended, covariates, link, level) -> pd.DataFrame:
    """Binomial GLM on person-period rows, aggregated to (k, covariates) cells."""
    from statsmodels.genmod import families  # not statsmodels.api: it imports everything
    from statsmodels.genmod.generalized_linear_model import GLM

    rows = np.repeat(np.arange(len(iters)), iters)
    k = np.arange(len(rows)) - np.repeat(np.cumsum(iters) - iters, iters) + 1
    event = (k == iters[rows]) & ended[rows]
    cov = data[list(covariates)].reset_index(drop=True).iloc[rows].reset_index(drop=True)
    person = cov.assign(k=k, event=event.astype(float))
    cells = person.groupby(list(covariates) + ["k"], dropna=False, observed=True)["event"].agg(
        ["sum", "count"]).reset_index()
    values, names = design_matrix(cells, covariates)
    X = pd.DataFrame(values, columns=names)
    X["log_k"] = np.log(cells["k"].to_numpy(dtype=float))
    X["log_k_sq"] = X["log_k"] ** 2
    endog = np.column_stack([cells["sum"], cells["count"] - cells["sum"]])
    linkf = families.links.CLogLog() if link == "cloglog" else families.links.Logit()
    res = GLM(endog, X, family=families.Binomial(link=linkf)).fit()
    ci = np.asarray(res.conf_int(alpha=1 - level))
    return pd.DataFrame({"term": X.columns, "coef": res.params.to_numpy(), "se": res.bse.to_numpy(),
                         "ci_low": ci[:, 0], "ci_high": ci[:, 1], "p_value": res.pvalues.to_numpy(),
                         "ratio": np.exp(res.params.to_numpy())})
