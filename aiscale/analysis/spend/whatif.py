"""What the same calls would have cost on another model, price sheet, discount or cache policy.

Every call of the window is re-priced from its own token counts, vectorised: a scenario
changes the calls (model, token counts, cache reads) and the whole frame is priced again
with :func:`aiscale.facts.priced.price_calls` (one price look-up per (provider, model,
day), then a join in DuckDB of only the columns pricing reads; the prices of
:func:`aiscale.pricing.rates.price_frame`). The assumption is stated on the result: **token
counts are kept as they are**. Another model's tokenizer and verbosity differ; where a benchmark measured the token
ratio of the pair, pass it as ``token_ratio`` (or ``input_ratio`` / ``output_ratio``).

Scenario keys (combine freely):

- ``as``: one model for every call, or ``models``: ``{"from-model": "to-model"}`` (patterns
  allowed, ``provider/model`` names a provider); ``provider`` for the new model;
- ``prices``: a price sheet (CSV, YAML or DataFrame) used instead of the base one;
- ``discount``: a fraction taken off every call (0.5 = batch price);
- ``cache_hit_rate``: the share of input tokens read from cache (cache writes kept as
  recorded unless ``cache_write_rate`` is given); a call that would read (write) the cache at
  a model with no listed cache-read (cache-write) price has an unknown cost under it; ``write_ttl``: "5m" or "1h" (1-hour writes
  cost :data:`~aiscale.analysis.spend.calls.ONE_HOUR_WRITE_MULTIPLIER` x the input price);
- ``token_ratio`` / ``input_ratio`` / ``output_ratio``: measured token ratios for the pair.

Examples
--------
>>> import pandas as pd
>>> spans = pd.DataFrame({"trace_id": ["a", "b"], "kind": "llm", "provider": "openai",
...     "model": "gpt-4o-2024-08-06", "start_time": pd.to_datetime(["2025-01-01"] * 2, utc=True),
...     "input_tokens": [1_000_000, 3_000_000], "output_tokens": [0, 0]})
>>> r = whatif(spans, {"half": {"discount": 0.5}}, n_boot=200)
>>> r.summary()[["scenario", "total_usd", "change_usd"]]
  scenario  total_usd  change_usd
0   actual       10.0         0.0
1     half        5.0        -5.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.analysis._closed_form import ratio_interval
from aiscale.analysis._result import ResultDisplay, fmt_usd, new_axes
from aiscale.analysis._stats import (
    CLOSED_FORM_TASKS,
    _expanded_alpha,
    bootstrap_weights,
    iid_quantile_draws,
)
from aiscale.analysis.spend.calls import ONE_HOUR_WRITE_MULTIPLIER, PriceSheet, llm_calls

__all__ = ["WhatIf", "whatif"]

ASSUMPTION = ("Token counts are kept as they are: another model's tokenizer and verbosity differ "
              "(pass a measured token_ratio where a benchmark gives one).")
_KEYS = ("as", "models", "provider", "prices", "discount", "cache_hit_rate", "cache_write_rate",
         "write_ttl", "token_ratio", "input_ratio", "output_ratio")


@dataclass(frozen=True, eq=False, repr=False)
class WhatIf(ResultDisplay):
    """Actual cost beside each scenario: total, per-trace mean and p95, bootstrap intervals."""

    table: pd.DataFrame = field(repr=False)
    per_trace: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        parts = ", ".join(f"{r.scenario} {fmt_usd(r.total_usd)}" for r in self.table.itertuples())
        return f"<aiscale.WhatIf: {len(self.per_trace)} traces; {parts}>"

    def summary(self) -> pd.DataFrame:
        """One row per scenario (actual first): totals, change, mean and p95 with intervals."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """Cost per trace under each scenario (one column per scenario)."""
        return self.per_trace.copy()

    def plot(self, ax=None, **kwargs):
        """Total per scenario with its bootstrap interval."""
        ax = new_axes(ax)
        t = self.table
        err = np.vstack([t["total_usd"] - t["total_lower"], t["total_upper"] - t["total_usd"]])
        ax.bar(t["scenario"].astype(str), t["total_usd"], yerr=np.nan_to_num(err), capsize=4,
               color=["C7"] + [f"C{i}" for i in range(len(t) - 1)], **kwargs)
        ax.set(ylabel="total cost of the window (USD)")
        ax.tick_params(axis="x", rotation=20)
        return ax


def whatif(data, scenarios, *, prices: PriceSheet = None, since=None, until=None,
           n_boot: int = 1000, level: float = 0.95, seed: int | None = 0,
           already_priced: bool = False) -> WhatIf:
    """Re-price every call of a window under each scenario.

    Parameters
    ----------
    data : TraceStore or spans DataFrame
        The calls (LLM spans) to re-price.
    scenarios : dict, str or list
        ``{name: spec}`` with spec a dict of the module's scenario keys; a model name (or a
        list of them) means ``{"as": model}``.
    prices : path or DataFrame, optional
        The base price sheet (the one the actual cost uses).
    since, until : optional
        The window ``[since, until)``.
    n_boot, level, seed
        Bootstrap over traces: resamples, interval level, seed.
    already_priced : bool, default=False
        ``data`` holds calls :func:`~aiscale.analysis.spend.calls.llm_calls` already priced
        with the same ``prices``, with their cost terms (``parts=True``); the scenarios are
        priced all the same: they are not priced again (same result, faster).

    Returns
    -------
    WhatIf
        ``summary()``: scenario, calls, unpriced_calls, total_usd (+ interval), change_usd
        (+ interval, paired), mean_usd and p95_usd per trace (+ intervals).
    """
    specs = _specs(scenarios)
    calls = llm_calls(data, prices=prices, since=since, until=until, parts=True,
                      already_priced=already_priced)
    columns, unpriced = {"actual": calls["cost_usd"].to_numpy(float)}, {"actual": _unpriced(calls)}
    base, unlisted = _Base(calls), {}
    try:
        for name, spec in specs.items():
            cost, unlisted[name] = _scenario_cost(base, spec, prices)
            columns[name], unpriced[name] = cost, int(np.isnan(cost).sum())
    finally:
        base.close()
    trace = calls["trace_id"]  # text as it is (no round trip through Python objects)
    per_call = pd.DataFrame(columns).assign(trace_id=trace.array if trace.dtype == "str" else trace.to_numpy())
    per_trace = per_call.groupby("trace_id", sort=True).sum(min_count=1)
    table = _table(per_trace, unpriced, n_boot, level, seed)
    notes = [ASSUMPTION]
    if unpriced["actual"]:
        notes.append(f"{unpriced['actual']:,} calls have no actual price; every total leaves "
                     "them out.")
    for name, count in unlisted.items():
        if count:
            notes.append(f"Under {name!r}, {count:,} calls read or write the cache at a model with no "
                         "listed cache price: their cost there is unknown (the scenario's total leaves "
                         "them out).")
    return WhatIf(table, per_trace.reset_index(), tuple(notes))


def _specs(scenarios) -> dict[str, dict]:
    if isinstance(scenarios, str):
        scenarios = [scenarios]
    if isinstance(scenarios, (list, tuple)):
        scenarios = {f"as {m}": {"as": m} for m in scenarios}
    if not isinstance(scenarios, dict) or not scenarios:
        raise TypeError("`scenarios` must be a model name, a list of them or a dict "
                        f"{{name: spec}}, but {scenarios!r} was passed.")
    out = {}
    for name, spec in scenarios.items():
        spec = {"as": spec} if isinstance(spec, str) else dict(spec)
        unknown = sorted(set(spec) - set(_KEYS))
        if unknown:
            raise ValueError(f"Scenario {name!r}: keys must be among {list(_KEYS)}, but {unknown} "
                             "was passed.")
        if str(name) == "actual":
            raise ValueError("A scenario may not be named 'actual' (that row is the actual cost).")
        out[str(name)] = spec
    return out


def _unpriced(calls: pd.DataFrame) -> int:
    return int((~calls["priced"].astype(bool)).sum())


class _Base:
    """The calls' pricing input (Arrow), converted once and shared by every scenario, their
    models factorised once (a scenario maps the distinct models, not every call), and one
    DuckDB connection every scenario is priced on."""

    def __init__(self, calls: pd.DataFrame):
        from aiscale.facts.on_duckdb import duckdb_connection
        from aiscale.facts.priced import pricing_input

        self.calls = calls
        self.table = pricing_input(calls)
        self.model_codes, self.models = pd.factorize(calls["model"].astype("string"), use_na_sentinel=True)
        self.con = duckdb_connection()

    def close(self) -> None:
        self.con.close()


def _scenario_cost(base: _Base, spec: dict, base_prices) -> tuple[np.ndarray, int]:
    """Cost of each call under one scenario (NaN where the scenario has no price), and how many
    calls a cache policy left unknown for want of a listed cache price."""
    from aiscale.facts.priced import price_table, pricing_input

    keep = ["trace_id", "start_time", "provider", "model", "input_tokens", "output_tokens",
            "cache_read_tokens", "cache_write_tokens", "reasoning_tokens"]
    table = _swap_models(base, spec)
    if _changes_tokens(spec):  # token ratios or a cache policy: the token columns of the changed frame
        frame = _cache_policy(_scale_tokens(base.calls[keep].copy(), spec), spec)
        tokens = pricing_input(frame)
        for column in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
                       "reasoning_tokens"):
            table = table.set_column(table.schema.get_field_index(column), column, tokens[column])
    cache_policy = "cache_hit_rate" in spec or "cache_write_rate" in spec
    priced = price_table(table, prices=spec.get("prices", base_prices),
                         parts="write_ttl" in spec or cache_policy, source=False, con=base.con)
    cost = pc.if_else(priced["priced"], priced["cost_usd"], None).to_numpy(zero_copy_only=False).astype(float)
    unlisted = np.zeros(len(cost), dtype=bool)
    if cache_policy:  # what the policy saves needs the cache prices: unlisted, the cost is unknown
        unlisted = unlisted_cache_rate(priced, table) & ~np.isnan(cost)
        cost[unlisted] = np.nan
    if spec.get("write_ttl") is not None:  # the extra of 1-hour writes reads the scenario's cache writes
        cost = cost + _ttl_extra(priced, table["cache_write_tokens"], spec["write_ttl"])
    discount = float(spec.get("discount", 0.0))
    if not 0 <= discount < 1:
        raise ValueError(f"`discount` must be a fraction in [0, 1), but {discount!r} was passed.")
    return cost * (1 - discount), int(unlisted.sum())


def unlisted_cache_rate(priced: pa.Table, table: pa.Table) -> np.ndarray:
    """Calls that read (or write) the cache at a model with no listed cache-read (cache-write)
    price: the bill counts those tokens at the input price, so a cache policy's cost is unknown."""
    def uses(tokens: str, rate: str) -> np.ndarray:
        used = pc.fill_null(pc.greater(table[tokens], 0), False).to_numpy(zero_copy_only=False)
        return used & pc.is_null(priced[rate]).to_numpy(zero_copy_only=False)

    return (uses("cache_read_tokens", "cache_read_usd_per_token")
            | uses("cache_write_tokens", "cache_write_usd_per_token"))


def _changes_tokens(spec: dict) -> bool:
    return any(k in spec for k in ("token_ratio", "input_ratio", "output_ratio", "cache_hit_rate",
                                   "cache_write_rate"))


def _swap_models(base: _Base, spec: dict) -> pa.Table:
    """The pricing input with each call's model (and provider) as the scenario maps them.

    Each distinct model is matched against the patterns once, in order (a later pattern wins);
    a changed call takes the scenario's ``provider`` (null: resolved from the model name).
    """
    mapping = spec.get("models") or ({"*": spec["as"]} if "as" in spec else {})
    if not mapping:
        return base.table
    names = pd.array(base.models, dtype="string")
    new_names = names.copy()
    for source, target in mapping.items():
        hit = np.array([fnmatchcase(str(m).lower(), str(source).lower()) for m in names], dtype=bool)
        new_names[hit] = str(target)
    changed_name = np.asarray((new_names != names).fillna(False), dtype=bool)
    codes = base.model_codes
    changed = np.append(changed_name, False)[codes]  # code -1 (no model) is never matched
    model = pa.array(new_names, pa.string()).take(pa.array(codes, mask=codes < 0))
    provider = pc.if_else(pa.array(changed), pa.scalar(spec.get("provider"), pa.string()), base.table["provider"])
    table = base.table.set_column(base.table.schema.get_field_index("model"), "model", model)
    return table.set_column(table.schema.get_field_index("provider"), "provider", provider)


def _scale_tokens(frame: pd.DataFrame, spec: dict) -> pd.DataFrame:
    ratio = float(spec.get("token_ratio", 1.0))
    factors = {"input_tokens": float(spec.get("input_ratio", ratio)),
               "cache_read_tokens": float(spec.get("input_ratio", ratio)),
               "cache_write_tokens": float(spec.get("input_ratio", ratio)),
               "output_tokens": float(spec.get("output_ratio", ratio)),
               "reasoning_tokens": float(spec.get("output_ratio", ratio))}
    for column, factor in factors.items():
        if factor <= 0:
            raise ValueError(f"Token ratios must be > 0, but {factor!r} was passed.")
        if factor != 1.0:
            frame[column] = (frame[column].astype("Float64") * factor).round().astype("Int64")
    return frame


def _cache_policy(frame: pd.DataFrame, spec: dict) -> pd.DataFrame:
    if "cache_hit_rate" not in spec and "cache_write_rate" not in spec:
        return frame
    inp = frame["input_tokens"].astype("Float64")
    for key, column in (("cache_hit_rate", "cache_read_tokens"), ("cache_write_rate", "cache_write_tokens")):
        if key in spec:
            rate = float(spec[key])
            if not 0 <= rate <= 1:
                raise ValueError(f"`{key}` must be in [0, 1], but {rate!r} was passed.")
            frame[column] = (inp * rate).round().astype("Int64")
    reads = frame["cache_read_tokens"].fillna(0).astype("Int64")
    frame["cache_write_tokens"] = np.minimum(frame["cache_write_tokens"].fillna(0).astype("Int64"),
                                             (frame["input_tokens"] - reads).clip(lower=0))
    return frame


def _ttl_extra(priced: pa.Table, writes: pa.ChunkedArray, ttl: str) -> np.ndarray:
    """Extra cost of writing every cache entry for one hour instead of five minutes."""
    if ttl not in ("5m", "1h"):
        raise ValueError(f"The value for `write_ttl` must be one of ['5m', '1h'], but {ttl!r} was passed.")
    if ttl == "5m":
        return np.zeros(priced.num_rows)
    inp = pd.Series(priced["input_usd_per_token"].to_numpy(zero_copy_only=False), dtype=float)
    write = pd.Series(priced["cache_write_usd_per_token"].to_numpy(zero_copy_only=False), dtype=float).fillna(inp)
    tokens = pc.fill_null(writes, 0).to_numpy(zero_copy_only=False).astype(float)
    return tokens * (ONE_HOUR_WRITE_MULTIPLIER * inp - write).fillna(0.0).to_numpy()


def _table(per_trace: pd.DataFrame, unpriced: dict, n_boot: int, level: float, seed) -> pd.DataFrame:
    x = per_trace.to_numpy(float)  # traces x scenarios
    n = len(x)
    rows = []
    boot = _boot(x, n_boot, level, seed) if n >= 2 else None
    for j, name in enumerate(per_trace.columns):
        col = x[:, j]
        known = col[~np.isnan(col)]
        total = known.sum() if len(known) else np.nan
        row = {"scenario": name, "traces": int((~np.isnan(col)).sum()), "unpriced_calls": unpriced[name],
               "total_usd": total, "change_usd": total - np.nansum(x[:, 0]) if len(known) else np.nan,
               "mean_usd": known.mean() if len(known) else np.nan,
               "p95_usd": np.quantile(known, 0.95) if len(known) else np.nan}
        for stat in ("total", "change", "mean", "p95"):  # no trace priced: no interval either
            lo, hi = boot[stat][:, j] if boot is not None and len(known) else (np.nan, np.nan)
            row[f"{stat}_lower"], row[f"{stat}_upper"] = lo, hi
        rows.append(row)
    order = ["scenario", "traces", "unpriced_calls", "total_usd", "total_lower", "total_upper",
             "change_usd", "change_lower", "change_upper", "mean_usd", "mean_lower", "mean_upper",
             "p95_usd", "p95_lower", "p95_upper"]
    return pd.DataFrame(rows)[order]


def _boot(x: np.ndarray, n_boot: int, level: float, seed) -> dict[str, np.ndarray]:
    """Expanded-percentile intervals over traces (paired: one resample serves every scenario).

    From :data:`~aiscale.analysis._stats.CLOSED_FORM_TASKS` traces on, the total, change and
    mean take skew-corrected delta-method intervals (:func:`~aiscale.analysis._closed_form.ratio_interval`)
    instead of the O(resamples x traces) bootstrap; the p95 is drawn exactly either way.
    """
    n, m = x.shape
    filled = np.nan_to_num(x)
    rng = np.random.default_rng(seed)
    known = (~np.isnan(x)).astype(float)
    if n >= CLOSED_FORM_TASKS:  # many traces: closed forms of the sums and means, no resampling
        out = {"total": n * np.vstack(ratio_interval(filled, np.ones(n), level=level)),
               "change": n * np.vstack(ratio_interval(filled - filled[:, :1], np.ones(n), level=level)),
               "mean": np.vstack(ratio_interval(filled, known, level=level))}
        alpha = float(_expanded_alpha(level, np.array([n]))[0])
        out["p95"] = np.quantile(_p95_draws(x, known, n_boot, rng), [alpha, 1 - alpha], axis=0)
        return out
    sums, counts = [], []
    for w in bootstrap_weights(n, n_boot, rng):  # chunks of resamples, not a loop per trace
        sums.append(w @ filled)
        counts.append(w @ known)
    p95 = _p95_draws(x, known, n_boot, rng)
    sums = np.vstack(sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / np.vstack(counts)
    alpha = float(_expanded_alpha(level, np.array([n]))[0])
    q = [alpha, 1 - alpha]
    stats = {"total": sums, "change": sums - sums[:, :1], "mean": means, "p95": p95}
    return {k: np.quantile(v, q, axis=0) for k, v in stats.items()}


def _p95_draws(x: np.ndarray, known: np.ndarray, n_boot: int, rng) -> np.ndarray:
    """The p95 of a resample of traces, per scenario, drawn exactly from order statistics
    (O(resamples), not O(resamples x traces))."""
    return np.column_stack([iid_quantile_draws(x[known[:, j] > 0, j], [0.95], n_boot, rng,
                                               n_rows=len(x))[:, 0] for j in range(x.shape[1])])
