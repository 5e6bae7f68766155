"""The declared laws of the simulator: one frozen :class:`Variant` per configuration.

Every random quantity the simulator draws follows a law named here, so tests and notebooks
can compute what an estimate should recover. Units: tokens, seconds, USD per token.

The agent loop of one trace (variant ``v``, task ``t``):

- natural stopping iteration ``T = 1 + NB(r, p)`` (``scipy.stats.nbinom`` counts failures;
  geometric is ``r = 1``); a stuck trace (probability ``stuck_share``) instead runs to the cap;
  otherwise ``iterations = min(T, cap)`` and ``T > cap`` is right-censored (a failure);
- success, for a finished non-stuck trace, is Bernoulli(``p_t``) with the task's probability
  ``p_t = Beta(a, b).ppf(u_t)`` (``u_t`` uniform, shared by every variant: harder tasks are
  harder for all);
- iteration ``k`` makes ``F ~ Geometric`` failed LLM attempts first (``P(F >= 1) = error_rate``;
  status error, ``error.type`` set, usage reported as 0 tokens: nothing billed), then one LLM
  call with input ``P0 + growth * (k - 1)`` (``P0 = round(LogNormal(prompt))`` per trace;
  no explicit prompt text is written), cache reads ``round(cache_share * input)`` for
  ``k >= 2``, cache writes ``round(cache_share * input)`` at ``k = 1`` when ``cache_writes``,
  output ``max(1, round(drift_factor * X))`` with ``X`` lognormal spliced above its
  ``tail_q`` quantile with a GPD tail, reasoning ``round(reasoning_share * output)``;
- then 0, 1 or 2 tool calls (``tool_probs``), except the natural last iteration (none); a
  stuck trace from its ``stuck_start`` (uniform on ``1 .. min(3, cap - 1)``) on makes exactly
  one tool call per iteration, the same tool with the same arguments each time, so its
  ``repeated_calls = cap - stuck_start``; other traces never repeat a call;
- durations (whole microseconds): LLM call ``ttft + output * tpot``; failed attempt and tool
  call lognormal;
  spans run one after another under the root agent span with ``gap_s`` between them;
- start times: a uniform day in ``[0, days)`` and an hour of day with density
  ``(1 + A cos(2 pi (h - peak) / 24)) / 24``; after a variant's ``drift.at``, its output tokens
  are multiplied by ``drift.output_factor``.

Examples
--------
>>> v = DEFAULT_VARIANTS[1]
>>> v.name, v.loop.mean
('strong', 8.0)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np
from scipy import stats

GAP_S = 0.002
TOOLS = ("search", "read_file", "edit_file", "run_tests", "bash")
ERROR_TYPES = ("RateLimitError", "APITimeoutError", "InternalServerError")


@dataclass(frozen=True)
class LogNormal:
    """``exp(Normal(log(median), sigma))``; ``mean = median * exp(sigma**2 / 2)``."""

    median: float
    sigma: float

    @property
    def mu(self) -> float:
        return float(np.log(self.median))

    @property
    def mean(self) -> float:
        return float(self.median * np.exp(self.sigma**2 / 2))

    def dist(self):
        """Return the frozen ``scipy.stats.lognorm``."""
        return stats.lognorm(self.sigma, scale=self.median)


@dataclass(frozen=True)
class LoopLaw:
    """Natural stopping iteration ``T = 1 + NB(r, p)`` (failures before the r-th success)."""

    r: float
    p: float
    family: str = "nbinom"

    def __post_init__(self) -> None:
        if self.family not in ("nbinom", "geometric"):
            raise ValueError(f"The value for `family` must be one of ['nbinom', 'geometric'], "
                             f"but {self.family!r} was passed.")
        if not (0 < self.p <= 1 and self.r > 0) or (self.family == "geometric" and self.r != 1):
            raise ValueError(f"A loop law needs 0 < p <= 1 and r > 0 (r = 1 for 'geometric'), "
                             f"but r={self.r!r}, p={self.p!r} was passed.")

    def dist(self):
        """Return the frozen ``scipy.stats.nbinom`` of ``T - 1``."""
        return stats.nbinom(self.r, self.p)

    @property
    def mean(self) -> float:
        return float(1 + self.r * (1 - self.p) / self.p)

    def pmf(self, k) -> np.ndarray:
        """``P(T = k)`` for iterations ``k >= 1``."""
        return self.dist().pmf(np.asarray(k) - 1)

    def survival(self, k) -> np.ndarray:
        """``P(T >= k)``."""
        return self.dist().sf(np.asarray(k) - 2)

    def hazard(self, k) -> np.ndarray:
        """``P(T = k | T >= k)``: the probability of finishing at iteration ``k`` once reached."""
        return self.pmf(k) / self.survival(k)


@dataclass(frozen=True)
class OutputLaw:
    """Output tokens before rounding: lognormal, spliced above its ``tail_q`` quantile with
    ``threshold + GPD(xi, scale)`` when ``tail_xi`` is set."""

    body: LogNormal
    tail_q: float | None = None
    tail_xi: float = 0.0
    tail_scale: float = 1.0

    @property
    def threshold(self) -> float:
        return float(self.body.dist().ppf(self.tail_q)) if self.tail_q is not None else np.inf

    def cdf(self, x, factor: float = 1.0) -> np.ndarray:
        """CDF of ``factor * X`` (``factor`` is the drift multiplier)."""
        x = np.asarray(x, dtype=float) / factor
        body = self.body.dist().cdf(np.minimum(x, self.threshold))
        if self.tail_q is None:
            return body
        tail = stats.genpareto(self.tail_xi, scale=self.tail_scale).cdf(x - self.threshold)
        return np.where(x <= self.threshold, body, self.tail_q + (1 - self.tail_q) * tail)

    def mean(self, factor: float = 1.0) -> float:
        """``E[factor * X]`` (before rounding)."""
        if self.tail_q is None:
            return factor * self.body.mean
        s, u = self.body.sigma, self.threshold
        partial = self.body.mean * stats.norm.cdf((np.log(u) - self.body.mu - s**2) / s)
        tail = (1 - self.tail_q) * (u + self.tail_scale / (1 - self.tail_xi))
        return float(factor * (partial + tail))


@dataclass(frozen=True)
class Prices:
    """USD per token (input not cached, cache read, cache write, output incl. reasoning)."""

    input: float
    cache_read: float
    cache_write: float
    output: float


@dataclass(frozen=True)
class Drift:
    """From ``at`` on, output tokens are multiplied by ``output_factor``."""

    at: datetime
    output_factor: float


def _per_m(usd: float) -> float:
    return usd / 1e6


@dataclass(frozen=True)
class Variant:
    """The declared laws of one configuration (see the module docstring for the loop)."""

    name: str
    provider: str
    model: str
    response_model: str
    prices: Prices
    success: tuple[float, float]
    loop: LoopLaw
    cap: int
    tool_probs: tuple[float, float, float]
    prompt: LogNormal
    growth: int
    output: OutputLaw
    cache_share: float
    cache_writes: bool
    reasoning_share: float
    ttft: LogNormal
    tpot_s: float
    tool_latency: LogNormal
    error_rate: float
    error_latency: LogNormal
    stuck_share: float
    drift: Drift | None = None

    def __post_init__(self) -> None:
        shares = {"error_rate": self.error_rate, "stuck_share": self.stuck_share,
                  "cache_share": self.cache_share, "reasoning_share": self.reasoning_share}
        for name, value in shares.items():
            if not 0 <= value < 1:
                raise ValueError(f"The value for `{name}` must be in [0, 1), but {value!r} was passed.")
        if self.cap < 2 or abs(sum(self.tool_probs) - 1) > 1e-9:
            raise ValueError(f"A variant needs cap >= 2 and tool_probs summing to 1, but cap="
                             f"{self.cap!r}, tool_probs={self.tool_probs!r} was passed.")

    @property
    def mean_task_success(self) -> float:
        """``E[p_t] = a / (a + b)``."""
        a, b = self.success
        return a / (a + b)

    def task_success(self, u) -> np.ndarray:
        """Task success probabilities ``Beta(a, b).ppf(u)`` for task quantiles ``u``."""
        return stats.beta(*self.success).ppf(u)


_OPENAI_MINI = Prices(_per_m(0.40), _per_m(0.10), _per_m(0.40), _per_m(1.60))
_SONNET = Prices(_per_m(3.00), _per_m(0.30), _per_m(3.75), _per_m(15.0))
_O4_MINI = Prices(_per_m(1.10), _per_m(0.275), _per_m(1.10), _per_m(4.40))
DEFAULT_START = datetime(2025, 6, 2, tzinfo=timezone.utc)

_FAST = Variant(
    name="fast-cheap", provider="openai", model="gpt-4.1-mini",
    response_model="gpt-4.1-mini-2025-04-14", prices=_OPENAI_MINI, success=(2.0, 3.0),
    loop=LoopLaw(1.0, 0.12, "geometric"), cap=40, tool_probs=(0.2, 0.6, 0.2),
    prompt=LogNormal(2500, 0.4), growth=600, output=OutputLaw(LogNormal(250, 0.7)),
    cache_share=0.5, cache_writes=False, reasoning_share=0.0, ttft=LogNormal(0.35, 0.3),
    tpot_s=0.008, tool_latency=LogNormal(0.4, 0.8), error_rate=0.03,
    error_latency=LogNormal(1.5, 0.5), stuck_share=0.04,
)
_STRONG = Variant(
    name="strong", provider="anthropic", model="claude-sonnet-4-20250514",
    response_model="claude-sonnet-4-20250514", prices=_SONNET, success=(4.0, 2.0),
    loop=LoopLaw(3.0, 0.3), cap=50, tool_probs=(0.1, 0.6, 0.3), prompt=LogNormal(3000, 0.4),
    growth=900, output=OutputLaw(LogNormal(400, 0.8), tail_q=0.97, tail_xi=0.25, tail_scale=300.0),
    cache_share=0.7, cache_writes=True, reasoning_share=0.0, ttft=LogNormal(0.9, 0.35),
    tpot_s=0.020, tool_latency=LogNormal(0.5, 0.8), error_rate=0.02,
    error_latency=LogNormal(2.0, 0.5), stuck_share=0.03,
    drift=Drift(datetime(2025, 6, 11, tzinfo=timezone.utc), 1.3),
)
_REASONING = Variant(
    name="reasoning", provider="openai", model="o4-mini", response_model="o4-mini-2025-04-16",
    prices=_O4_MINI, success=(3.0, 2.0), loop=LoopLaw(2.0, 0.25), cap=30,
    tool_probs=(0.15, 0.65, 0.2), prompt=LogNormal(2500, 0.4), growth=700,
    output=OutputLaw(LogNormal(900, 0.6)), cache_share=0.5, cache_writes=False,
    reasoning_share=0.6, ttft=LogNormal(1.5, 0.4), tpot_s=0.006,
    tool_latency=LogNormal(0.4, 0.8), error_rate=0.04, error_latency=LogNormal(1.5, 0.5),
    stuck_share=0.02,
)
DEFAULT_VARIANTS: tuple[Variant, ...] = (
    _FAST, _STRONG, replace(_STRONG, name="strong-capped", cap=8, drift=None), _REASONING,
)


def task_quantiles(seed: int, task: np.ndarray) -> np.ndarray:
    """Uniform task-difficulty quantiles ``u_t`` from a splitmix64 hash of ``(seed, task)``."""
    golden = np.uint64(0x9E3779B97F4A7C15)
    x = task.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64) + golden
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
