"""The registry of continuous families for token and cost distributions (location fixed at 0).

Adding a family is one :class:`Family` entry: a SciPy distribution, the names of its
natural parameters and how they map to an unconstrained vector ``theta`` (log for
positive parameters). The body+GPD splice is the one family with its own code: a
lognormal body below the threshold ``u`` (a data quantile) and a generalised Pareto tail
above it, with the tail fraction fixed at the share of data above ``u``.

Examples
--------
>>> import numpy as np
>>> fam = FAMILIES["gamma"]
>>> theta = fam.start(np.array([1.0, 2.0, 3.0]), {})
>>> fam.natural(theta).round(3).tolist()
[6.0, 0.333]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from aiscale.analysis._dists import genpareto_ppf


class ScipyDistribution:
    """A ``scipy.stats`` distribution named, imported on first use (``scipy.stats`` costs
    ~1.2 CPU-s to import; fits and quantiles run on the families' closed forms).

    Calling it or reading an attribute is calling or reading the SciPy object itself:
    ``FAMILIES["gamma"].dist(2.0, scale=3.0)`` is ``scipy.stats.gamma(2.0, scale=3.0)``.
    """

    def __init__(self, name: str):
        self.name = name

    def resolve(self):
        """The ``scipy.stats`` object."""
        from scipy import stats

        return getattr(stats, self.name)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __getattr__(self, attr: str):
        if attr.startswith("_") or attr == "name":  # not set yet (a copy being made): no recursion
            raise AttributeError(attr)
        return getattr(self.resolve(), attr)

    def __repr__(self) -> str:
        return f"<scipy.stats.{self.name}, imported on first use>"


@dataclass(frozen=True)
class Family:
    """A family: SciPy distribution + parameter map. ``log_params`` flags log-scale entries.

    ``fast`` optionally holds NumPy formulas ``(logpdf, logsf, cdf)`` of ``(x, *natural)``,
    used in the likelihood instead of SciPy's (much slower per call) frozen distributions;
    ``fast_ppf`` the quantile function SciPy's distribution evaluates, ``(q, *shape_args)``
    of the standard (scale 1) form, so that ``ppf`` needs no ``scipy.stats``. ``dist`` may be
    a :class:`ScipyDistribution` (imported when first used: rvs, frozen).
    """

    name: str
    dist: object
    params: tuple[str, ...]
    log_params: tuple[bool, ...]
    to_scipy: Callable[[np.ndarray], tuple[tuple, float]]  # theta -> (shape args, scale)
    start: Callable[[np.ndarray, dict], np.ndarray]
    extra_params: int = 0  # parameters fixed from the data (counted in AIC/BIC)
    aux: Callable[[np.ndarray, np.ndarray], dict] = field(default=lambda x, c: {})
    fast: tuple | None = None
    bounds: tuple[tuple[float, float] | None, ...] | None = None  # on theta, where regular
    fast_ppf: Callable | None = None

    def unusable(self, x: np.ndarray, censored: np.ndarray) -> str | None:
        """Why the data cannot identify this family (None when they can)."""
        return None

    def at_bound(self, theta: np.ndarray, tol: float = 1e-3) -> bool:
        """True when a bounded entry of ``theta`` sits at its bound (the fit did not converge)."""
        for value, bound in zip(theta, self.bounds or (), strict=False):
            if bound is not None and min(abs(value - bound[0]), abs(value - bound[1])) < tol:
                return True
        return False

    def inside(self, theta: np.ndarray) -> bool:
        """True when ``theta`` is strictly inside its bounds."""
        return all(bound is None or bound[0] < value < bound[1]
                   for value, bound in zip(theta, self.bounds or (), strict=False))

    @property
    def k(self) -> int:
        """Number of parameters counted in AIC/BIC."""
        return len(self.params) + self.extra_params

    def natural(self, theta: np.ndarray) -> np.ndarray:
        """Natural parameters (exp of the log-scale entries)."""
        return np.where(self.log_params, np.exp(theta), theta)

    def frozen(self, theta: np.ndarray, aux: dict):
        args, scale = self.to_scipy(theta)
        return self.dist(*args, scale=scale)

    def _call(self, which: int, method: str, x, theta, aux):
        if self.fast is not None:
            with np.errstate(all="ignore"):
                return self.fast[which](np.asarray(x, float), *self.natural(theta))
        return getattr(self.frozen(theta, aux), method)(x)

    def logpdf(self, x, theta, aux):
        return self._call(0, "logpdf", x, theta, aux)

    def logsf(self, x, theta, aux):
        return self._call(1, "logsf", x, theta, aux)

    def cdf(self, x, theta, aux):
        return self._call(2, "cdf", x, theta, aux)

    def ppf(self, q, theta, aux):
        if self.fast_ppf is None:
            return self.frozen(theta, aux).ppf(q)
        args, scale = self.to_scipy(theta)
        return _scipy_ppf(self.fast_ppf, q, args, scale)

    def rvs(self, n: int, theta, aux, rng: np.random.Generator) -> np.ndarray:
        return self.frozen(theta, aux).rvs(size=n, random_state=rng)


def _scipy_ppf(standard, q, args: tuple, scale: float):
    """A frozen SciPy distribution's ``ppf`` on the support [0, inf): ``standard(q, *args) * scale``
    inside (0, 1), 0 at q = 0, inf at q = 1, NaN elsewhere or for parameters out of range (as
    SciPy's ``rv_continuous.ppf`` does)."""
    q = np.asarray(q, dtype=float)
    out = np.where(q == 1, np.inf, np.where(q == 0, 0.0, np.nan))
    if not (scale > 0 and all(np.all(np.asarray(a) > 0) for a in args)):
        return np.full(q.shape, np.nan)[()]
    inside = (q > 0) & (q < 1)
    with np.errstate(all="ignore"):
        out[inside] = standard(q[inside], *args) * scale
    return out[()]


def _log_moments(x: np.ndarray) -> tuple[float, float]:
    logs = np.log(x)
    return float(logs.mean()), float(max(logs.std(), 1e-3))


def _start_gamma(x, aux):
    mean, var = x.mean(), x.var()
    shape = max(mean * mean / max(var, 1e-12), 1e-3)
    return np.log([shape, mean / shape])


def _start_weibull(x, aux):
    mu, sd = _log_moments(x)
    return np.array([np.log(1.2825 / sd), mu + 0.5772 * sd / 1.2825])


def _start_fisk(x, aux):
    mu, sd = _log_moments(x)
    return np.array([np.log(np.pi / (np.sqrt(3) * sd)), mu])


def _lognorm_logpdf(x, mu, sigma):
    z = (np.log(x) - mu) / sigma
    return -0.5 * z * z - np.log(sigma * x) - 0.5 * np.log(2 * np.pi)


_LOGNORMAL_FAST = (
    _lognorm_logpdf,
    lambda x, mu, sigma: special.log_ndtr(-(np.log(x) - mu) / sigma),
    lambda x, mu, sigma: special.ndtr((np.log(x) - mu) / sigma),
)
_GAMMA_FAST = (
    lambda x, k, s: (k - 1) * np.log(x) - x / s - special.gammaln(k) - k * np.log(s),
    lambda x, k, s: np.log(special.gammaincc(k, x / s)),
    lambda x, k, s: special.gammainc(k, x / s),
)
_WEIBULL_FAST = (
    lambda x, c, s: np.log(c / s) + (c - 1) * np.log(x / s) - (x / s) ** c,
    lambda x, c, s: -((x / s) ** c),
    lambda x, c, s: -np.expm1(-((x / s) ** c)),
)
_FISK_FAST = (
    lambda x, c, s: np.log(c / s) + (c - 1) * np.log(x / s) - 2 * np.log1p((x / s) ** c),
    lambda x, c, s: -np.log1p((x / s) ** c),
    lambda x, c, s: 1 / (1 + (x / s) ** -c),
)
# The standard quantile functions SciPy's lognorm, gamma, weibull_min and fisk evaluate.
LOGNORMAL = Family("lognormal", ScipyDistribution("lognorm"), ("mu", "sigma"), (False, True),
                   lambda t: ((np.exp(t[1]),), np.exp(t[0])),
                   lambda x, a: np.array([_log_moments(x)[0], np.log(_log_moments(x)[1])]),
                   fast=_LOGNORMAL_FAST, fast_ppf=lambda q, s: np.exp(s * special.ndtri(q)))
GAMMA = Family("gamma", ScipyDistribution("gamma"), ("shape", "scale"), (True, True),
               lambda t: ((np.exp(t[0]),), np.exp(t[1])), _start_gamma, fast=_GAMMA_FAST,
               fast_ppf=lambda q, a: special.gammaincinv(a, q))
WEIBULL = Family("weibull", ScipyDistribution("weibull_min"), ("shape", "scale"), (True, True),
                 lambda t: ((np.exp(t[0]),), np.exp(t[1])), _start_weibull, fast=_WEIBULL_FAST,
                 fast_ppf=lambda q, c: pow(-special.log1p(-q), 1.0 / c))
LOGLOGISTIC = Family("loglogistic", ScipyDistribution("fisk"), ("shape", "scale"), (True, True),
                     lambda t: ((np.exp(t[0]),), np.exp(t[1])), _start_fisk, fast=_FISK_FAST,
                     fast_ppf=lambda q, c: (q ** -1.0 - 1) ** (-1.0 / c))


def _gpd_logsf(z, xi, beta):
    """log P(Z > z) of a GPD (xi may be ~0: exponential); -inf beyond a finite endpoint."""
    t = xi * z / beta
    with np.errstate(all="ignore"):
        out = np.where(abs(xi) < 1e-9, -z / beta, -np.log1p(t) / xi)
    return np.where(1 + t > 0, out, -np.inf)


def _gpd_logpdf(z, xi, beta):
    t = xi * z / beta
    with np.errstate(all="ignore"):
        out = np.where(abs(xi) < 1e-9, -z / beta, -(1 + 1 / xi) * np.log1p(t)) - np.log(beta)
    return np.where(1 + t > 0, out, -np.inf)


# The GPD likelihood has a regular maximum only for xi > -1/2 (below -1 it has none); above,
# xi is capped where a tail still has a finite mean. A fit that ends at either bound did not
# converge and leaves the ranking.
XI_BOUNDS = (-0.5, 1.0)
# Below this many uncensored values above the threshold the tail shape is read off the
# censoring, not the data (a cap inside the tail leaves the GPD free to put any mass beyond it).
MIN_TAIL_EXACT = 50


class _Splice(Family):
    """Lognormal body below ``u``, GPD tail above; tail share ``phi`` fixed from the data."""

    def unusable(self, x, censored):
        u = self.aux(x, censored)["u"]
        exact = int(np.sum((x > u) & ~censored))
        if exact < MIN_TAIL_EXACT or exact < np.sum((x > u) & censored):
            return (f"{exact} uncensored values above the tail threshold {u:.4g} (needs at least "
                    f"{MIN_TAIL_EXACT}, and more than the censored ones there)")
        return None

    @staticmethod
    def _parts(theta, aux):
        mu, sigma, xi, beta = theta[0], np.exp(theta[1]), theta[2], np.exp(theta[3])
        log_fu = special.log_ndtr((np.log(aux["u"]) - mu) / sigma)
        return mu, sigma, xi, beta, log_fu

    def logpdf(self, x, theta, aux):
        if not self.inside(theta):
            return np.full(np.shape(x), -np.inf)
        u, phi = aux["u"], aux["phi"]
        mu, sigma, xi, beta, log_fu = self._parts(theta, aux)
        below = np.log1p(-phi) + _lognorm_logpdf(x, mu, sigma) - log_fu
        above = np.log(phi) + _gpd_logpdf(np.maximum(x - u, 0), xi, beta)
        return np.where(x <= u, below, above)

    def cdf(self, x, theta, aux):
        u, phi = aux["u"], aux["phi"]
        mu, sigma, xi, beta, log_fu = self._parts(theta, aux)
        below = (1 - phi) * np.exp(special.log_ndtr((np.log(np.minimum(x, u)) - mu) / sigma) - log_fu)
        above = 1 - phi * np.exp(_gpd_logsf(np.maximum(x - u, 0), xi, beta))
        return np.where(x <= u, below, above)

    def logsf(self, x, theta, aux):
        if not self.inside(theta):
            return np.full(np.shape(x), -np.inf)
        u, phi = aux["u"], aux["phi"]
        _, _, xi, beta, _ = self._parts(theta, aux)
        below = np.log(np.clip(1 - self.cdf(x, theta, aux), 1e-300, None))
        return np.where(x <= u, below, np.log(phi) + _gpd_logsf(np.maximum(x - u, 0), xi, beta))

    def ppf(self, q, theta, aux):
        u, phi = aux["u"], aux["phi"]
        q = np.asarray(q, dtype=float)
        mu, sigma, xi, beta, log_fu = self._parts(theta, aux)
        low = np.exp(mu + sigma * special.ndtri(np.clip(q, 0, 1 - phi) / (1 - phi) * np.exp(log_fu)))
        high = u + genpareto_ppf(np.clip((q - (1 - phi)) / phi, 0, 1), xi, beta)
        return np.where(q <= 1 - phi, low, high)

    def rvs(self, n, theta, aux, rng):
        return self.ppf(rng.uniform(size=n), theta, aux)


def _splice_aux(x: np.ndarray, censored: np.ndarray, q: float = 0.9) -> dict:
    u = float(np.quantile(x, q))
    return {"u": u, "phi": float(np.mean(x > u))}


def _start_splice(x, aux):
    mu, sd = _log_moments(x[x <= aux["u"]])
    excess = x[x > aux["u"]] - aux["u"]
    mean, var = excess.mean(), excess.var()
    xi = float(np.clip(0.5 * (1 - mean * mean / max(var, 1e-12)), -0.2, 0.7))
    return np.array([mu, np.log(sd), xi, np.log(max(mean * (1 - xi), 1e-9))])


SPLICE = _Splice("lognormal+gpd", None, ("mu", "sigma", "xi", "beta"), (False, True, False, True),
                 lambda t: ((), 1.0), _start_splice, extra_params=2, aux=_splice_aux,
                 bounds=(None, None, XI_BOUNDS, None))

FAMILIES: dict[str, Family] = {f.name: f for f in (LOGNORMAL, GAMMA, WEIBULL, LOGLOGISTIC, SPLICE)}


def register_family(family: Family) -> None:
    """Add (or replace) a family in the registry used by ``fit_distribution``."""
    FAMILIES[family.name] = family
