"""Fit token and cost distributions: a family registry, censored MLE, AIC/BIC ranking, GoF.

Examples
--------
>>> import numpy as np
>>> x = np.random.default_rng(1).lognormal(6, 1, 2000)
>>> fits = fit_distribution(x, gof_bootstrap=0)
>>> fits.best.family.name
'lognormal'
>>> fits.best.params()["estimate"].round(1).tolist()
[6.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aiscale.analysis._dists import norm_ppf
from aiscale.analysis._result import ResultDisplay, check_choice, drawn_points, new_axes
from aiscale.analysis.tokens import mle as _mle
from aiscale.analysis.tokens.families import FAMILIES

_Z = norm_ppf(0.975)


@dataclass(frozen=True, repr=False)
class FittedFamily(ResultDisplay):
    """One family fitted by maximum likelihood, with Wald (log-scale) and delta-method CIs."""

    fit: _mle.MLE
    ks: float = float("nan")
    ks_pvalue: float = float("nan")
    zero_share: float = 0.0
    n_values: int = 0  # all values, zeros included (for the standard error of ``zero_share``)

    @property
    def family(self):
        return self.fit.family

    def __repr__(self) -> str:
        est = ", ".join(f"{n}={v:.4g}" for n, v in zip(self.family.params, self.fit.natural,
                                                          strict=True))
        return f"<aiscale.FittedFamily {self.family.name}: {est}, AIC {self.fit.aic:.1f}>"

    def params(self, level: float = 0.95) -> pd.DataFrame:
        """Parameter estimates with CIs (log-scale Wald for positive parameters)."""
        z = norm_ppf(0.5 + level / 2)
        se = np.sqrt(np.diag(self.fit.cov))
        lo, hi = self.fit.theta - z * se, self.fit.theta + z * se
        logp = np.array(self.family.log_params)
        return pd.DataFrame({
            "family": self.family.name, "param": list(self.family.params),
            "estimate": self.fit.natural,
            "ci_low": np.where(logp, np.exp(lo), lo), "ci_high": np.where(logp, np.exp(hi), hi)})

    def quantile(self, q: float | Sequence[float], level: float = 0.95) -> pd.DataFrame:
        """Fitted quantiles per value, zeros included, with delta-method CIs on the log scale.

        With a share p0 of zeros (a point mass) the q-quantile is 0 for q <= p0, else the
        family's ((q - p0) / (1 - p0))-quantile; the CI carries the binomial error of p0.
        """
        q = np.atleast_1d(np.asarray(q, float))
        fam, aux, p0 = self.family, self.fit.aux, self.zero_share
        theta = np.append(self.fit.theta, p0)
        cov = np.zeros((len(theta), len(theta)))
        cov[:-1, :-1] = self.fit.cov
        cov[-1, -1] = p0 * (1 - p0) / max(self.n_values, 1)
        pos = q > p0

        def logq(t):
            return np.log(fam.ppf((q[pos] - t[-1]) / (1 - t[-1]), t[:-1], aux))

        est, lo, hi = np.zeros(len(q)), np.zeros(len(q)), np.zeros(len(q))
        z = norm_ppf(0.5 + level / 2)
        if pos.any():
            centre = logq(theta)
            se = _mle.delta_se(logq, theta, cov)
            est[pos], lo[pos], hi[pos] = np.exp(centre), np.exp(centre - z * se), np.exp(centre + z * se)
        if (~pos).any():  # at or below the zero mass: 0, unless p0 may be smaller than q
            p0_low = max(p0 - z * np.sqrt(cov[-1, -1]), 0.0)
            hi[~pos] = np.where(q[~pos] > p0_low, fam.ppf(np.clip(
                (q[~pos] - p0_low) / (1 - p0_low), 1e-12, 1), self.fit.theta, aux), 0.0)
        return pd.DataFrame({"q": q, "estimate": est, "ci_low": lo, "ci_high": hi})

    def sf(self, x) -> np.ndarray:
        """Fitted survival function P(X > x) per value, zeros included."""
        positive = 1 - self.family.cdf(np.asarray(x, float), self.fit.theta, self.fit.aux)
        return (1 - self.zero_share) * positive

    def summary(self) -> pd.DataFrame:
        return self.params()


@dataclass(frozen=True, repr=False)
class DistributionFits(ResultDisplay):
    """Families ranked by AIC on one sample, with the data for QQ and survival plots."""

    fits: tuple[FittedFamily, ...]
    values: np.ndarray = field(compare=False)
    censored: np.ndarray = field(compare=False)
    column: str = "value"
    cap: float | None = None
    n_dropped: int = 0
    n_zero: int = 0
    notes: tuple[str, ...] = ()

    @property
    def zero_share(self) -> float:
        """Share of the (finite, non-negative) values that are exactly 0: the point mass."""
        return self.n_zero / max(self.n_zero + len(self.values), 1)

    @property
    def best(self) -> FittedFamily:
        """The family with the lowest AIC."""
        return self.fits[0]

    def __getitem__(self, name: str) -> FittedFamily:
        for fit in self.fits:
            if fit.family.name == name:
                return fit
        check_choice("family", name, [f.family.name for f in self.fits])
        raise KeyError(name)  # pragma: no cover

    def __repr__(self) -> str:
        return (f"<aiscale.DistributionFits of {self.column}: best {self.best.family.name}, "
                f"{len(self.values)} values, {int(self.censored.sum())} right-censored, "
                f"{self.n_zero} zero>")

    def summary(self) -> pd.DataFrame:
        """One row per family: k, log-likelihood, AIC, BIC, ΔAIC, Akaike weight, KS and p."""
        rows = [{"family": f.family.name, "k": f.family.k, "loglik": f.fit.loglik,
                 "aic": f.fit.aic, "bic": f.fit.bic, "ks": f.ks, "ks_pvalue": f.ks_pvalue}
                for f in self.fits]
        out = pd.DataFrame(rows)
        out["delta_aic"] = out["aic"] - out["aic"].min()
        weights = np.exp(-0.5 * out["delta_aic"])
        out["aic_weight"] = weights / weights.sum()
        return out[["family", "k", "loglik", "aic", "bic", "delta_aic", "aic_weight", "ks",
                    "ks_pvalue"]]

    def params(self) -> pd.DataFrame:
        """Parameters with 95% CIs for every family."""
        return pd.concat([f.params() for f in self.fits], ignore_index=True)

    def frame(self, max_points: int | None = None) -> pd.DataFrame:
        """Empirical survival (Kaplan–Meier) and each family's fitted survival at the data.

        With ``max_points``, at most that many points: the largest 1,000 values all kept (the
        tail), the others evenly spaced in rank (what a plot can show).
        """
        x, s = kaplan_meier(self.values, self.censored)
        if max_points is not None and len(x) > max_points:
            top = min(1_000, max_points // 2)
            keep = np.union1d(np.linspace(0, len(x) - top - 1, max_points - top).astype(np.int64),
                              np.arange(len(x) - top, len(x)))
            x, s = x[keep], s[keep]
        out = pd.DataFrame({"x": x, "empirical_sf": (1 - self.zero_share) * s})
        for f in self.fits:
            out[f.family.name] = f.sf(x)
        return out

    def plot(self, ax=None, *, kind: str = "survival", families: Sequence[str] | None = None,
             **kwargs):
        """Survival (default) or QQ plot on log axes."""
        check_choice("kind", kind, ["survival", "qq"])
        ax = new_axes(ax)
        chosen = [self[f] for f in families] if families else list(self.fits[:3])
        frame = self.frame(max_points=4_000)
        if kind == "survival":
            drawn = np.zeros(len(frame), dtype=bool)  # what the figure can show of each curve
            for column in ("empirical_sf", *(f.family.name for f in chosen)):
                drawn |= drawn_points(frame["x"], frame[column], log_x=True, log_y=True)
            frame = frame.loc[drawn]
            ax.step(frame["x"], frame["empirical_sf"], where="post", color="black", label="data")
            for f in chosen:
                ax.plot(frame["x"], frame[f.family.name], label=f.family.name, **kwargs)
            ax.set(xscale="log", yscale="log", xlabel=self.column, ylabel="P(X > x)")
        else:
            keep = frame["empirical_sf"].between(1e-9, 1 - 1e-9, inclusive="neither")
            probs = 1 - frame.loc[keep, "empirical_sf"].to_numpy()
            for f in chosen:
                ax.scatter(f.family.ppf(probs, f.fit.theta, f.fit.aux), frame.loc[keep, "x"],
                           s=6, label=f.family.name, **kwargs)
            lims = [frame["x"].min(), frame["x"].max()]
            ax.plot(lims, lims, color="grey", ls="--", lw=1)
            ax.set(xscale="log", yscale="log", xlabel="fitted quantile", ylabel="observed")
        if self.cap is not None:
            ax.axvline(self.cap, color="red", ls=":", lw=1, label=f"cap {self.cap:g}")
        ax.legend(fontsize="small")
        return ax


def kaplan_meier(x: np.ndarray, censored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier survival just after each distinct uncensored value."""
    times, inverse = np.unique(x, return_inverse=True)
    events = np.bincount(inverse, weights=~censored, minlength=len(times))
    counts = np.bincount(inverse, minlength=len(times))
    at_risk = len(x) - np.concatenate([[0], np.cumsum(counts)[:-1]])
    surv = np.cumprod(1 - events / at_risk)
    keep = events > 0
    return times[keep], surv[keep]


def _values(data, column: str | None) -> tuple[np.ndarray, str]:
    if isinstance(data, pd.DataFrame):
        if column is None or column not in data.columns:
            raise ValueError(f"The value for `column` must be one of {list(data.columns)}, but "
                             f"{column!r} was passed.")
        return data[column].to_numpy(dtype=float, na_value=np.nan), column
    return np.asarray(data, dtype=float), column or "value"


# A body+tail splice puts its threshold at the 90% quantile; below ~30 tail values its
# tail parameters are noise (a GPD on 3 points reaches its bound and wins AIC spuriously),
# so by default it is only tried from 300 values.
MIN_VALUES_FOR_TAIL_FAMILIES = 300


def fit_distribution(data, *, column: str | None = None, families: Sequence[str] | None = None,
                     max_tokens: float | None = None, censored=None, gof_bootstrap: int = 99,
                     seed: int = 0) -> DistributionFits:
    """Fit every registered family to the positive values and rank them by AIC.

    Zeros (a trace that cost nothing) are a point mass: counted in ``n_zero``, said in
    ``notes``, and included in each family's ``quantile`` and ``sf`` (per value), while the
    families describe the positive values. Missing and negative values are left out
    (``n_dropped``). A family whose fit did not converge (a parameter at its bound, no finite
    likelihood or covariance), or which the data cannot identify (a tail model without enough
    uncensored values above its threshold), is left out of the ranking and named in ``notes``.

    Parameters
    ----------
    data : DataFrame or array-like
        Facts or spans (then ``column`` names the values) or the values themselves.
    column : str, optional
        Column of ``data`` to fit, e.g. ``"output_tokens"`` or ``"cost_usd"``.
    families : list of str, optional
        Names from :data:`aiscale.analysis.families.FAMILIES` (default: all).
    max_tokens : float, optional
        A cap: values at or above it are right-censored at it.
    censored : bool array, optional
        An explicit right-censoring mask (like lifelines' ``event_observed`` negated).
    gof_bootstrap : int, default=99
        Parametric-bootstrap resamples for the KS p-value of the best family (0 skips it).
        Above 5,000 values each resample draws 5,000 and compares sqrt(n)-scaled KS
        distances (m-out-of-n bootstrap); the fits themselves use every value (above
        2,000 distinct values, rounded on a log grid of at most 2,000 steps and counted, so
        a fit costs O(cells), not O(n); log-likelihoods, AIC and KS use the exact values).
    seed : int, default=0
        Seed of the bootstrap.

    Returns
    -------
    DistributionFits
        ``summary()`` ranks families; ``best``; ``params()``; ``plot(kind="survival"|"qq")``.
    """
    x, name = _values(data, column)
    mask = np.zeros(len(x), bool) if censored is None else np.asarray(censored, bool).copy()
    if max_tokens is not None:
        mask |= x >= max_tokens
        x = np.where(mask & (x > max_tokens), max_tokens, x)
    zero = np.isfinite(x) & (x == 0) & ~mask
    keep = np.isfinite(x) & (x > 0)
    n_zero, n_values = int(zero.sum()), int(zero.sum() + keep.sum())
    x, mask = x[keep], mask[keep]
    if (~mask).sum() < 10:
        raise ValueError(f"Fitting needs at least 10 positive uncensored values; {name!r} has "
                         f"{int((~mask).sum())}.")
    names = list(families) if families else [
        f for f in FAMILIES if not FAMILIES[f].extra_params or len(x) >= MIN_VALUES_FOR_TAIL_FAMILIES]
    for fam in names:
        check_choice("families", fam, list(FAMILIES))
    notes = [f"{n_zero} of {n_values} values are 0 ({n_zero / n_values:.1%}): a point mass, "
             "included in quantile() and sf(); the families fit the positive values"] if n_zero else []
    order = np.argsort(x)  # sorted once: cells for the fits and the KS distances
    x, mask = x[order], mask[order]
    cells = _mle.compress(x, mask)
    grid = _mle.coarsen(*cells)
    fits, notes = _fit_all(names, x, mask, grid, notes)
    if grid[0] is not cells[0]:  # fitted over rounded values: the exact log-likelihood ranks
        fits = [_mle.exact_loglik(f, *cells) for f in fits]
        notes += [f"{f.family.name} left out of the ranking: an exact value lies outside the support "
                  "fitted to the rounded values" for f in fits if not f.converged]
        fits = sorted((f for f in fits if f.converged), key=lambda m: m.aic)
        if not fits:
            raise ValueError(f"No family could be fitted: {'; '.join(notes)}.")
    p0 = n_zero / n_values
    ranked = [FittedFamily(f, _mle.ks_distance(f, *cells), zero_share=p0, n_values=n_values)
              for f in fits]
    if gof_bootstrap:
        rng = np.random.default_rng(seed)
        ks, p = _mle.bootstrap_ks(fits[0], x, mask, max_tokens, gof_bootstrap, rng)
        ranked[0] = FittedFamily(fits[0], ks, p, zero_share=p0, n_values=n_values)
    n_dropped = len(keep) - n_values
    return DistributionFits(tuple(ranked), x, mask, name, max_tokens, n_dropped, n_zero,
                            tuple(notes))


def _fit_all(names: list[str], x: np.ndarray, mask: np.ndarray, cells: tuple,
             notes: list[str]) -> tuple[list[_mle.MLE], list[str]]:
    """Fit the usable families; rank the converged ones by AIC, say why the others are out.

    Each likelihood runs over the distinct cells (value, censored, count); the threshold of a
    tail family and the starting values come from the full data.
    """
    fits = []
    for name in names:
        family = FAMILIES[name]
        reason = family.unusable(x, mask)
        aux = family.aux(x, mask)
        fit = None if reason else _mle.mle(family, *cells[:2], start=family.start(x[~mask], aux),
                                           aux=aux, weights=cells[2])
        if fit is not None and not fit.converged:
            reason = "the fit did not converge (a parameter at its bound or no finite covariance)"
        if reason:
            notes.append(f"{name} left out of the ranking: {reason}")
        else:
            fits.append(fit)
    if not fits:
        raise ValueError(f"No family could be fitted: {'; '.join(notes)}.")
    return sorted(fits, key=lambda m: m.aic), notes
