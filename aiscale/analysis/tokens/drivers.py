"""Which features explain cost: a Gamma GLM (log link) and quantile regressions (p50, p90).

Numeric features enter as log1p (coefficients are elasticities); categorical ones as
treatment dummies. The result is a tidy coefficient table, one row per (model, term).

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> n = 400
>>> facts = pd.DataFrame({"iterations": rng.integers(1, 30, n)})
>>> facts["cost_usd"] = rng.gamma(5, np.exp(-3 + 0.8 * np.log1p(facts["iterations"])) / 5)
>>> d = cost_drivers(facts, features=["iterations"], categorical=[], quantiles=())
>>> bool(abs(d.summary().query("term == 'log1p(iterations)'")["estimate"].item() - 0.8) < 0.15)
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_columns, new_axes


@dataclass(frozen=True, repr=False)
class Drivers(ResultDisplay):
    """Tidy coefficients of the cost models."""

    column: str
    coefficients: pd.DataFrame = field(compare=False)
    n: int
    n_dropped: int

    def __repr__(self) -> str:
        models = self.coefficients["model"].unique().tolist()
        return f"<aiscale.Drivers of {self.column}: {models} on {self.n} rows>"

    def summary(self) -> pd.DataFrame:
        return self.coefficients

    def frame(self) -> pd.DataFrame:
        return self.coefficients

    def plot(self, ax=None, *, model: str = "gamma_glm", **kwargs):
        """Coefficient plot (estimate and 95% CI) of one model, intercept omitted."""
        ax = new_axes(ax)
        c = self.coefficients.query("model == @model and term != 'Intercept'")
        ax.errorbar(c["estimate"], c["term"], xerr=[c["estimate"] - c["ci_low"],
                                                    c["ci_high"] - c["estimate"]],
                    fmt="o", **kwargs)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set(xlabel=f"coefficient ({model})")
        return ax


def design_matrix(facts: pd.DataFrame, features, categorical) -> pd.DataFrame:
    cols = {f"log1p({f})": np.log1p(facts[f].astype(float)) for f in features}
    x = pd.DataFrame(cols, index=facts.index)
    for c in categorical:
        dummies = pd.get_dummies(facts[c].astype(str), prefix=c, drop_first=True, dtype=float)
        x = x.join(dummies)
    x.insert(0, "Intercept", 1.0)
    return x


def _tidy(name: str, res) -> pd.DataFrame:
    ci = np.asarray(res.conf_int())
    return pd.DataFrame({"model": name, "term": res.params.index, "estimate": res.params.values,
                         "std_error": res.bse.values, "ci_low": ci[:, 0], "ci_high": ci[:, 1],
                         "p_value": res.pvalues.values})


def cost_drivers(facts: pd.DataFrame, *, column: str = "cost_usd",
                 features: Sequence[str] = ("input_tokens", "iterations", "n_tool_calls"),
                 categorical: Sequence[str] = ("variant",),
                 quantiles: Sequence[float] = (0.5, 0.9)) -> Drivers:
    """Fit a Gamma GLM (log link) and quantile regressions of cost on trace features.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts.
    column : str, default="cost_usd"
        The response; rows where it or a feature is unknown (or cost <= 0) are dropped.
    features : list of str
        Numeric features, entered as log1p.
    categorical : list of str
        Categorical features (treatment coding, first level as reference).
    quantiles : list of float, default=(0.5, 0.9)
        Quantile regressions of cost (in USD, not logged) on the same design.

    Returns
    -------
    Drivers
        ``summary()``: model, term, estimate, std_error, ci_low, ci_high, p_value.
        GLM estimates are on the log scale: exp(estimate) is the multiplicative effect.
    """
    import statsmodels.api as sm

    check_columns(facts, [column, *features, *categorical])
    data = facts[[column, *features, *categorical]].copy()
    y = data[column].astype(float)
    ok = y.notna() & (y > 0) & data[list(features)].astype(float).notna().all(axis=1)
    data = data[ok]
    x = design_matrix(data, features, categorical)
    y = data[column].astype(float)
    glm = sm.GLM(y, x, family=sm.families.Gamma(sm.families.links.Log())).fit()
    tables = [_tidy("gamma_glm", glm)]
    for q in quantiles:
        tables.append(_tidy(f"quantreg_p{round(q * 100)}", sm.QuantReg(y, x).fit(q=q)))
    return Drivers(column, pd.concat(tables, ignore_index=True), int(ok.sum()),
                   int((~ok).sum()))
