"""How long traces take: latency quantiles with intervals, LLM vs tool time, time to first token.

Quantiles are the inverse empirical CDF; their intervals come from a bootstrap that resamples
tasks (all trials of a task together), or, from 2,000 tasks on, from closed forms clustered on
tasks (Woodruff intervals of the quantiles, delta-method intervals of the shares). The LLM and tool shares are ratios of time over
traces where both are known: with ``spans``, the time at least one call of the kind was in
flight (the union of its call intervals, :func:`busy_seconds`, at most the trace's latency), so
parallel calls (sub-agents) are not counted twice and each share is at most 1; without spans, the facts' summed call
time (``llm_latency_s / latency_s``), where overlapping calls can make a share exceed 1.

Examples
--------
>>> import pandas as pd
>>> f = pd.DataFrame({"variant": "v", "latency_s": [1.0, 2.0, 3.0, 4.0],
...                   "llm_latency_s": [0.5, 1.0, 1.5, 2.0], "tool_latency_s": 0.1})
>>> latency(f, n_boot=100).summary().loc[0, ["p50", "llm_share"]].tolist()
[2.0, 0.5]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis import _stats as iv
from aiscale.analysis._result import ResultDisplay, check_columns, floats, new_axes, task_keys
from aiscale.analysis._stats import weighted_quantiles

__all__ = ["LatencyResult", "busy_seconds", "latency"]

_TTFT = ("ttft_s", "time_to_first_token_s")


@dataclass(frozen=True, eq=False, repr=False)
class LatencyResult(ResultDisplay):
    """Latency quantiles per group with intervals, LLM/tool time shares and TTFT quantiles."""

    table: pd.DataFrame
    by: str
    quantiles: tuple[float, ...]
    level: float
    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """One row per group: quantiles with lower/upper, shares with lower/upper, TTFT."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """Tidy: one row per group and statistic, with estimate, lower and upper."""
        stats = [c for c in self.table if f"{c}_lower" in self.table]
        return pd.concat([pd.DataFrame({self.by: self.table[self.by], "statistic": s,
                                        "estimate": self.table[s],
                                        "lower": self.table[f"{s}_lower"],
                                        "upper": self.table[f"{s}_upper"]}) for s in stats],
                         ignore_index=True)

    def plot(self, ax=None, **kwargs):
        """Quantiles per group as points with interval bars (log seconds)."""
        ax = new_axes(ax)
        t = self.table
        y = np.arange(len(t))
        for i, q in enumerate(self.quantiles):
            c = _qname(q)
            err = np.vstack([t[c] - t[f"{c}_lower"], t[f"{c}_upper"] - t[c]])
            ax.errorbar(t[c], y + 0.1 * i, xerr=np.nan_to_num(err), fmt="o", capsize=2,
                        label=c, **kwargs)
        ax.set_yticks(y, [str(v) for v in t[self.by]])
        ax.set_xscale("log")
        ax.set_xlabel(f"latency (s, {self.level:.0%} CI)")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        return (f"<aiscale.LatencyResult: {len(self.table)} {self.by}(s), quantiles "
                f"{', '.join(_qname(q) for q in self.quantiles)}>")


def _qname(q: float) -> str:
    return f"p{q * 100:g}"


def busy_seconds(spans: pd.DataFrame, *, kind: str = "llm") -> pd.Series:
    """Seconds during which at least one span of ``kind`` was running, per trace.

    The union of the spans' ``[start_time, end_time]`` intervals: calls that overlap (parallel
    sub-agents, concurrent tool calls) count once. Spans without an end are left out.

    Examples
    --------
    >>> at = lambda s: pd.to_datetime(s, unit="s", utc=True)
    >>> spans = pd.DataFrame({"trace_id": "a", "kind": "llm", "start_time": at([0, 2, 10]),
    ...                       "end_time": at([3, 4, 11])})
    >>> busy_seconds(spans).to_dict()  # [0, 3] and [2, 4] overlap: 4 s, then 1 s; not 3 + 2 + 1
    {'a': 5.0}
    >>> busy_seconds(spans, kind="tool").to_dict()  # no tool call: no trace
    {}
    """
    return busy_by_kind(spans, (kind,))[kind].dropna().rename(f"{kind}_busy_s")


def busy_by_kind(spans: pd.DataFrame, kinds: tuple[str, ...]) -> pd.DataFrame:
    """:func:`busy_seconds` of several kinds in one pass: a column per kind, NaN where a trace
    has no span of that kind (one lookup of the trace ids, one sort, for all kinds)."""
    check_columns(spans, ["trace_id", "kind", "start_time", "end_time"], "spans")
    which = np.full(len(spans), -1, dtype=np.int64)
    for j, kind in enumerate(kinds):
        which[(spans["kind"] == kind).to_numpy(dtype=bool, na_value=False)] = j
    traces, ids = pd.factorize(spans["trace_id"])  # integers from here on: no string is taken
    start, end = (pd.to_datetime(spans[c], utc=True).dt.as_unit("us") for c in ("start_time", "end_time"))
    keep = (which >= 0) & (traces >= 0) & start.notna().to_numpy() & end.notna().to_numpy()
    start, end = (t.to_numpy(dtype="int64", na_value=0)[keep] for t in (start, end))
    codes = (traces.astype(np.int64) * len(kinds) + which)[keep]  # (trace, kind)
    keep = end >= start
    origin = start[keep].min() if keep.any() else 0
    codes, start, end = codes[keep], start[keep] - origin, end[keep] - origin
    order = _order_by(codes, start)
    codes, start, end = codes[order], start[order], end[order]
    reach = _running_max_by(codes, end)  # the furthest end reached so far in the trace
    first = np.ones(len(codes), bool)  # a call that starts a block of overlapping calls
    first[1:] = (codes[1:] != codes[:-1]) | (start[1:] > reach[:-1])
    last = np.append(first[1:], True)[:len(first)]  # a call that ends its block
    size = len(ids) * len(kinds)
    busy = np.bincount(codes[first], weights=(reach[last] - start[first]) / 1e6,
                       minlength=size).astype(float)
    busy[np.bincount(codes, minlength=size) == 0] = np.nan
    frame = pd.DataFrame(busy.reshape(len(ids), len(kinds)), columns=list(kinds),
                         index=pd.Index(ids, name="trace_id"))
    return frame.loc[frame.notna().any(axis=1)]


def _order_by(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Order by (code, value) for non-negative ints: one stable sort of a combined key (radix,
    several times quicker than ``np.lexsort``) where it fits in int64."""
    size = int(values.max(initial=0)) + 1
    if (int(codes.max(initial=0)) + 1) * size >= 2**62:
        return np.lexsort((values, codes))
    return np.argsort(codes.astype(np.int64) * size + values, kind="stable")


def _running_max_by(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running max of non-negative int ``values`` restarting at each run of ``codes`` (sorted by code).

    One running max over the values lifted by their code; over value ranks when the lift would
    overflow int64.
    """
    ranks, size = None, int(values.max(initial=0)) + 1
    if (int(codes.max(initial=0)) + 1) * size >= 2**62:
        ranks, values = np.unique(values, return_inverse=True)
        size = len(ranks)
    lift = codes.astype(np.int64) * size
    out = np.maximum.accumulate(values.ravel() + lift) - lift
    return out if ranks is None else ranks[out]


def latency(facts: pd.DataFrame, *, by: str | None = "variant", column: str = "latency_s",
            quantiles: Sequence[float] = (0.5, 0.95, 0.99), ttft: str | None = None,
            level: float = 0.95, n_boot: int = 1000, seed: int | None = 0,
            spans: pd.DataFrame | None = None, busy: pd.DataFrame | None = None) -> LatencyResult:
    """Latency p50/p95/p99 per group with task-bootstrap intervals, time shares and TTFT.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with ``column`` (and ``llm_latency_s`` / ``tool_latency_s`` for shares).
    by : str or None, default="variant"
    column : str, default="latency_s"
    quantiles : sequence of float, default=(0.5, 0.95, 0.99)
    ttft : str, optional
        Time-to-first-token column; by default ``ttft_s`` or ``time_to_first_token_s`` when
        the source has one.
    level, n_boot, seed
        Interval level, task-bootstrap resamples, random seed. From
        :data:`~aiscale.analysis._stats.CLOSED_FORM_TASKS` tasks in a group on, its intervals
        are the closed forms (no resampling; ``n_boot=0`` still leaves them out).
    spans : pandas.DataFrame, optional
        The traces' spans: the LLM and tool shares then use the time calls of each kind were
        in flight (:func:`busy_seconds`) instead of their summed durations.
    busy : pandas.DataFrame, optional
        That time already computed (kept from an earlier read): :func:`busy_by_kind` of the
        traces' spans for ``("llm", "tool")``, indexed by trace id; used instead of ``spans``.

    Returns
    -------
    LatencyResult
    """
    check_columns(facts, [column] + ([by] if by else []) + ([ttft] if ttft else []))
    if spans is not None or busy is not None:
        facts = _with_busy_time(facts, spans, column, busy)
    ttft = ttft or next((c for c in _TTFT if c in facts), None)
    codes, labels = (pd.factorize(facts[by], use_na_sentinel=False) if by
                     else (np.zeros(len(facts), np.int64), ["all"]))  # groups in order of appearance
    used = [c for c in (column, ttft, "llm_latency_s", "tool_latency_s") if c and c in facts]
    data, tasks = facts[used], task_keys(facts)
    rows = []
    for j, g in enumerate(labels):
        sel = codes == j
        rows.append({by or "group": "(none)" if pd.isna(g) else g,
                     **_group(data[sel], tasks[sel], column, quantiles, ttft, level, n_boot, seed)})
    notes = () if ttft else ("no time-to-first-token column in this source",)
    return LatencyResult(pd.DataFrame(rows), by or "group", tuple(quantiles), level, notes)


def _with_busy_time(facts: pd.DataFrame, spans: pd.DataFrame | None, column: str,
                    busy: pd.DataFrame | None = None) -> pd.DataFrame:
    """Replace summed LLM / tool time by the union of their intervals (unknown stays unknown).

    Capped at the trace's latency: a root span that ends before a child (a sub-agent file
    whose last line comes later) cannot make a share exceed 1.
    """
    check_columns(facts, ["trace_id"])
    out = facts.copy()
    kinds = tuple(k for k in ("llm", "tool") if f"{k}_latency_s" in out)
    if busy is None:
        busy = busy_by_kind(spans, kinds) if kinds else None
    for kind in kinds:
        part = f"{kind}_latency_s"
        seconds = out["trace_id"].map(busy[kind]).astype(float).fillna(0.0)
        out[part] = np.fmin(seconds, out[column].astype(float)).where(out[part].notna())
    return out


def _group(f, tasks, column, quantiles, ttft, level, n_boot, seed) -> dict:
    codes, uniq = pd.factorize(tasks)
    lat = floats(f[column])
    series = {"": (lat, tuple(quantiles))}
    if ttft:
        series["ttft_"] = (floats(f[ttft]), (0.5, 0.95))
    ratios = {}
    for part in ("llm", "tool"):
        if f"{part}_latency_s" in f:
            num = floats(f[f"{part}_latency_s"])
            ok = ~np.isnan(num) & ~np.isnan(lat)
            ratios[f"{part}_share"] = (np.bincount(codes[ok], weights=num[ok], minlength=len(uniq)),
                                       np.bincount(codes[ok], weights=lat[ok], minlength=len(uniq)),
                                       np.bincount(codes[ok], minlength=len(uniq)) > 0)
    out = {"n_traces": int((~np.isnan(lat)).sum())}
    for prefix, (x, qs) in series.items():
        ok = ~np.isnan(x)
        for q in qs:
            out[prefix + _qname(q)] = (float(np.quantile(x[ok], q, method="inverted_cdf"))
                                       if ok.any() else np.nan)
    for name, (num, den, _) in ratios.items():
        out[name] = num.sum() / den.sum() if den.sum() else np.nan
    if n_boot and len(uniq) >= iv.CLOSED_FORM_TASKS:
        return out | _closed_form(series, ratios, codes, level)
    return out | _bootstrap(out, series, ratios, codes, len(uniq), level, n_boot, seed)


def _closed_form(series, ratios, codes, level) -> dict:
    """Intervals for many tasks, without resampling: task-clustered Woodruff intervals of the
    quantiles and task-clustered delta-method t intervals of the time shares (ratios of sums).

    With thousands of tasks both are as accurate as the task bootstrap (whose percentile
    interval is first-order too) at O(n log n) instead of O(resamples x tasks); coverage
    against simulated truth is in ``tests/test_latency_closed_form.py``.
    """
    out = {}
    for prefix, (x, qs) in series.items():
        ok = ~np.isnan(x)
        _, lo, hi = iv.woodruff_quantiles(x[ok], codes[ok], qs, level=level)
        for j, q in enumerate(qs):
            out[f"{prefix}{_qname(q)}_lower"], out[f"{prefix}{_qname(q)}_upper"] = lo[j], hi[j]
    for name, (num, den, has) in ratios.items():
        mean, se = iv.clustered_se(den[has], num[has])
        out[f"{name}_lower"], out[f"{name}_upper"] = iv.t_interval(mean, se, int(has.sum()) - 1,
                                                                   level=level)
    return out


def _bootstrap(out, series, ratios, codes, n_tasks, level, n_boot, seed) -> dict:
    """Percentile intervals from a task bootstrap (every trial of a resampled task together)."""
    draws: dict[str, list] = {}
    # sorted once: each chunk's weighted quantiles then sort already-sorted values (linear)
    series = {prefix: (x[ok][order], codes[ok][order], qs) for prefix, (x, qs) in series.items()
              for ok in [~np.isnan(x)] for order in [np.argsort(x[ok], kind="stable")]}
    rng = np.random.default_rng(seed)
    for w in iv.bootstrap_weights(n_tasks, n_boot, rng) if n_boot else ():
        for prefix, (x, c, qs) in series.items():
            d = weighted_quantiles(x, c, w, qs)
            for j, q in enumerate(qs):
                draws.setdefault(prefix + _qname(q), []).append(d[:, j])
        for name, (num, den, _) in ratios.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                draws.setdefault(name, []).append((w @ num) / (w @ den))
    a = (1 - level) / 2
    bounds = {}
    for name in [k for k in out if k != "n_traces"]:
        d = np.concatenate(draws[name]) if name in draws else np.array([np.nan])
        lo, hi = np.nanquantile(d, [a, 1 - a]) if np.isfinite(d).any() else (np.nan, np.nan)
        bounds[f"{name}_lower"], bounds[f"{name}_upper"] = float(lo), float(hi)
    return bounds
