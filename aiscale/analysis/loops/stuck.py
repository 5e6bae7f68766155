"""Stuck loops (the same call again and again) and the spend they and failures waste.

A trace is *stuck* when, in time order, it issues the same tool call (same tool name and
same arguments text) or produces the same LLM output at least ``min_repeats`` times in a
row (``mode="consecutive"``, the default) or in all (``mode="total"``). The first call of
that run is the last productive step: LLM spend that starts after it is counted as spend
after the loop began.

Examples
--------
>>> import pandas as pd
>>> spans = pd.DataFrame({"trace_id": ["t"] * 4, "span_id": list("abcd"), "kind": ["tool"] * 4,
...                       "start_time": pd.to_datetime([1, 2, 3, 4], unit="s"),
...                       "tool_name": ["ls"] * 4, "tool_arguments": ["{}"] * 4})
>>> stuck_loops(spans).n_stuck
1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_choice, check_columns, new_axes
from aiscale.analysis._stats import wilson
from aiscale.analysis.loops.calls import (
    coerce_floats,
    epoch_us,
    llm_calls,
    nullable_bools,
    sorted_groups,
)

OUTPUT_KEYS = ("gen_ai.completion", "output.value", "llm.output", "output")


@dataclass(frozen=True, repr=False)
class StuckLoops(ResultDisplay):
    """Per-trace repeat counts and which traces are stuck.

    Attributes
    ----------
    table : DataFrame
        trace_id, tool_repeats, output_repeats (longest run, or largest total count),
        stuck, reason, stuck_since, spend, spend_after (LLM spend after the run began).
    examples : tuple of str
        Stuck trace ids, highest spend first (at most 10).
    """

    min_repeats: int
    mode: str
    table: pd.DataFrame
    examples: tuple[str, ...]
    level: float

    @property
    def n_traces(self) -> int:
        return len(self.table)

    @property
    def n_stuck(self) -> int:
        return int(self.table["stuck"].sum())

    def __repr__(self) -> str:
        return (f"<StuckLoops: {self.n_stuck} of {self.n_traces} traces repeat a call >= "
                f"{self.min_repeats} times ({self.mode})>")

    def summary(self) -> pd.DataFrame:
        """Count, share (Wilson CI) and spend of the stuck traces."""
        low, high = wilson(np.array([self.n_stuck]), np.array([self.n_traces]), level=self.level)
        spend = self.table["spend"]
        stuck = self.table["stuck"]
        return pd.DataFrame([{
            "n_traces": self.n_traces, "n_stuck": self.n_stuck,
            "share": self.n_stuck / max(self.n_traces, 1), "share_low": low[0], "share_high": high[0],
            "spend_stuck": spend[stuck].sum(), "spend_share": spend[stuck].sum() / spend.sum(),
            "spend_after_loop_start": self.table.loc[stuck, "spend_after"].sum(),
            "examples": ", ".join(self.examples[:3]),
        }])

    def frame(self) -> pd.DataFrame:
        """One row per trace."""
        return self.table.copy()

    def plot(self, ax=None, **kwargs):
        """Histogram of the longest repeat per trace, with the threshold marked."""
        ax = new_axes(ax)
        repeats = self.table[["tool_repeats", "output_repeats"]].max(axis=1)
        bins = np.arange(0.5, max(int(repeats.max()), self.min_repeats) + 1.5)
        ax.hist(repeats, bins=bins, **kwargs)
        ax.axvline(self.min_repeats - 0.5, color="C3", ls="--", label=f"threshold {self.min_repeats}")
        ax.set(xlabel="largest number of identical calls", ylabel="traces", yscale="log")
        ax.legend()
        return ax


def stuck_loops(spans: pd.DataFrame, *, facts: pd.DataFrame | None = None, min_repeats: int = 3,
                mode: Literal["consecutive", "total"] = "consecutive",
                output: str | None = None, cost: str | None = None,
                level: float = 0.95, runs: pd.DataFrame | None = None) -> StuckLoops:
    """Find traces that repeat the same tool call or the same LLM output.

    Parameters
    ----------
    spans : pandas.DataFrame
        Canonical spans (tool spans with ``tool_name``/``tool_arguments``; LLM spans).
    facts : pandas.DataFrame, optional
        Trace facts: their ``cost_usd`` is the trace spend (else the sum of LLM span costs),
        and every trace in them is counted, with or without tool spans.
    min_repeats : int, default=3
        Identical calls needed to call a trace stuck.
    mode : {"consecutive", "total"}, default="consecutive"
        Count the longest run of identical calls in a row, or all identical calls.
    output : str, optional
        Column of ``spans`` holding the LLM output text; by default the first of
        :data:`OUTPUT_KEYS` found in ``attributes``. Outputs are not compared when absent.
    cost : str, optional
        Per-span cost column (default ``cost_usd`` when present, else ``reported_cost_usd``).
    level : float, default=0.95
    runs : pandas.DataFrame, optional
        The traces' tool runs as :func:`tool_runs` gives them for the same ``mode`` (kept from an
        earlier read): the tool spans are then not read, and ``spans`` may be LLM spans only.

    Returns
    -------
    StuckLoops
    """
    check_choice("mode", mode, ["consecutive", "total"])
    if not isinstance(min_repeats, (int, np.integer)) or min_repeats < 2:
        raise ValueError(f"The value for `min_repeats` must be an integer >= 2, but {min_repeats!r} "
                         "was passed.")
    check_columns(spans, ["trace_id", "kind", "start_time"], "spans")
    tools = tool_runs(spans, mode=mode) if runs is None else runs[["tool_repeats", "t_since"]]
    llm = _of_kind(spans, "llm", dict.fromkeys(("trace_id", "start_time", "attributes", output or "attributes")))
    out_codes, _ = pd.factorize(_llm_outputs(llm, output), use_na_sentinel=True)
    outs = _runs(llm[["trace_id", "start_time"]], out_codes, mode).rename(
        columns={"repeats": "output_repeats", "since": "o_since"})
    ids = pd.Index(spans["trace_id"].astype(str).unique(), name="trace_id")
    if runs is not None:
        ids = ids.union(pd.Index(runs.index.astype(str), name="trace_id"))
    if facts is not None:
        check_columns(facts, ["trace_id"], "facts")
        ids = ids.union(pd.Index(facts["trace_id"].astype(str)))
    table = pd.DataFrame(index=ids).join(tools).join(outs)
    table[["tool_repeats", "output_repeats"]] = table[["tool_repeats", "output_repeats"]].fillna(0)
    by_tool, by_out = table["tool_repeats"] >= min_repeats, table["output_repeats"] >= min_repeats
    table["stuck"] = by_tool | by_out
    table["reason"] = np.select([by_tool & by_out, by_tool, by_out], ["tool+output", "tool", "output"], "")
    since_tool = table["t_since"].astype("float64").where(by_tool)
    table["stuck_since"] = since_tool.fillna(table["o_since"].astype("float64").where(by_out))
    table = table.drop(columns=["t_since", "o_since"])
    if facts is not None and "cost_usd" in facts.columns:  # only the stuck traces' calls are read
        stuck_ids = table.index[table["stuck_since"].notna()]
        spans = spans.loc[spans["trace_id"].astype(str).isin(stuck_ids).to_numpy(dtype=bool)]
    calls = llm_calls(spans, cost=cost)
    table["spend"] = _trace_spend(table.index, calls, facts)
    table["spend_after"] = _spend_after(table, calls)
    table["stuck_since"] = pd.to_datetime(table["stuck_since"], unit="us", utc=True)
    table = table.reset_index()
    top = table.loc[table["stuck"]].sort_values("spend", ascending=False)["trace_id"].head(10)
    return StuckLoops(min_repeats, mode, table, tuple(top), level)


def tool_runs(spans: pd.DataFrame, *, mode: Literal["consecutive", "total"] = "consecutive",
              keys: np.ndarray | None = None) -> pd.DataFrame:
    """Per trace with a tool call: its largest number of identical tool calls (``tool_repeats``;
    in a row, or in all) and the start of that run's first call (``t_since``, epoch µs).

    Examples
    --------
    >>> spans = pd.DataFrame({"trace_id": ["t"] * 3, "kind": ["tool"] * 3, "tool_name": ["ls"] * 3,
    ...                       "start_time": pd.to_datetime([1, 2, 3], unit="s"), "tool_arguments": "{}"})
    >>> tool_runs(spans)["tool_repeats"].tolist()
    [3.0]

    ``keys`` (one integer per tool span, equal where tool name and arguments text are, -1
    where the name is unknown) stand for those columns when the caller has them already.
    """
    check_choice("mode", mode, ["consecutive", "total"])
    tool = _of_kind(spans, "tool", ("trace_id", "start_time", "tool_name", "tool_arguments"))
    if keys is not None:
        keys = np.asarray(keys)[(spans["kind"] == "tool").to_numpy(dtype=bool, na_value=False)]
    return _runs(tool, _tool_keys(tool) if keys is None else keys, mode).rename(columns={"repeats": "tool_repeats", "since": "t_since"})


def _of_kind(spans: pd.DataFrame, kind: str, columns) -> pd.DataFrame:
    """The spans of one kind, only ``columns`` (those present): each is one take."""
    rows = (spans["kind"] == kind).to_numpy(dtype=bool, na_value=False)
    return spans.loc[rows, [c for c in columns if c in spans.columns]]


def _tool_keys(tool: pd.DataFrame) -> np.ndarray:
    """One integer per (tool name, arguments text); -1 where the tool name is unknown."""
    if len(tool) == 0 or "tool_name" not in tool.columns:
        return np.full(len(tool), -1)
    names, _ = pd.factorize(tool["tool_name"])
    args = tool["tool_arguments"] if "tool_arguments" in tool.columns else pd.Series("", index=tool.index)
    arg_codes, uniques = pd.factorize(args.astype("string").fillna(""))
    return np.where(names >= 0, names.astype(np.int64) * (len(uniques) + 1) + arg_codes, -1)


def _runs(frame: pd.DataFrame, key: np.ndarray, mode: str) -> pd.DataFrame:
    """Per trace: the largest repeat count of one key, and the start (epoch us) of its first call."""
    key = np.asarray(key)
    if (key < 0).any():
        frame, key = frame.loc[key >= 0], key[key >= 0]
    if len(frame) == 0:
        return pd.DataFrame({"repeats": pd.Series(dtype=float), "since": pd.Series(dtype=float)},
                            index=pd.Index([], name="trace_id"))
    start_us = epoch_us(frame["start_time"])
    order, codes, names, first, _ = sorted_groups(frame["trace_id"], start_us)
    key, start_us = key[order], start_us[order]
    if mode == "consecutive":  # runs are contiguous, each in start order: its first call is its earliest
        begin = np.flatnonzero(first | np.r_[True, key[1:] != key[:-1]])
        trace, repeats, since = codes[begin], np.diff(np.r_[begin, len(key)]), start_us[begin]
    else:
        run = pd.factorize(codes.astype(np.int64) * (int(key.max()) + 1) + key)[0]
        runs = pd.DataFrame({"run": run, "trace": codes, "since": start_us}).groupby("run").agg(
            trace=("trace", "first"), repeats=("since", "size"), since=("since", "min"))
        trace, repeats, since = (runs[c].to_numpy() for c in ("trace", "repeats", "since"))
    pick = np.lexsort((since, -repeats, trace))  # per trace: most repeats, then the earliest
    pick = pick[np.r_[True, trace[pick][1:] != trace[pick][:-1]]]
    index = pd.Index(names[trace[pick]], name="trace_id")
    return pd.DataFrame({"repeats": repeats[pick].astype(float), "since": since[pick].astype(float)},
                        index=index)


def _llm_outputs(llm: pd.DataFrame, output: str | None) -> pd.Series:
    if output is not None:
        check_columns(llm, [output], "spans")
        return llm[output].astype("string")
    if "attributes" not in llm.columns or len(llm) == 0:
        return pd.Series(pd.NA, index=llm.index, dtype="string")
    import duckdb

    attrs = pd.DataFrame({"a": llm["attributes"].astype("string").to_numpy()})
    expr = ", ".join(f"json_extract_string(a, '$.\"{k}\"')" for k in OUTPUT_KEYS)
    with duckdb.connect() as con:
        con.register("attrs", attrs)
        values = con.execute(f"SELECT coalesce({expr}) AS o FROM attrs").df()["o"]
    return pd.Series(values.to_numpy(), index=llm.index, dtype="string")


def _trace_spend(ids: pd.Index, calls: pd.DataFrame, facts: pd.DataFrame | None) -> np.ndarray:
    if facts is not None and "cost_usd" in facts.columns:
        spend = pd.Series(coerce_floats(facts["cost_usd"]), index=facts["trace_id"].astype(str))
        return spend.groupby(level=0).sum().reindex(ids).to_numpy()
    return calls.groupby("trace_id")["cost"].sum().reindex(ids).fillna(0).to_numpy()


def _spend_after(table: pd.DataFrame, calls: pd.DataFrame) -> np.ndarray:
    since = table["stuck_since"].dropna()
    sub = calls.loc[calls["trace_id"].isin(since.index)]
    start = since.reindex(sub["trace_id"].to_numpy()).to_numpy()
    after = sub["start_us"].to_numpy() > start
    waste = sub.loc[after].groupby("trace_id")["cost"].sum()
    return waste.reindex(table.index).fillna(0).to_numpy()


@dataclass(frozen=True, repr=False)
class WastedSpend(ResultDisplay):
    """Spend on failed traces, after stuck loops began, and on failed (retried) LLM calls.

    The categories overlap (a stuck trace usually fails too): they are not additive.
    """

    total_spend: float
    table: pd.DataFrame

    def __repr__(self) -> str:
        failed = float(self.table["spend"].iloc[0])
        return (f"<WastedSpend: {failed:.4g} of {self.total_spend:.4g} USD on failed traces; "
                f"{len(self.table)} categories>")

    def summary(self) -> pd.DataFrame:
        """One row per category: spend, share of total spend, number of traces or calls."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """Same as :meth:`summary`."""
        return self.table.copy()

    def plot(self, ax=None, **kwargs):
        """Horizontal bars of each category's share of total spend."""
        ax = new_axes(ax)
        ax.barh(self.table["category"], self.table["share"], **kwargs)
        ax.set(xlabel="share of total spend", xlim=(0, 1))
        return ax


def wasted_spend(facts: pd.DataFrame, *, spans: pd.DataFrame | None = None,
                 stuck: StuckLoops | None = None, min_repeats: int = 3,
                 cost: str = "cost_usd") -> WastedSpend:
    """How much spend bought nothing: failed traces, stuck loops, failed LLM calls.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with ``success`` and the cost column.
    spans : pandas.DataFrame, optional
        Needed for spend after stuck loops began and for failed calls (NaN without).
    stuck : StuckLoops, optional
        A result of :func:`stuck_loops` to reuse; computed from ``spans`` when None.
    min_repeats : int, default=3
        Passed to :func:`stuck_loops` when it is computed here.
    cost : str, default="cost_usd"

    Returns
    -------
    WastedSpend

    Examples
    --------
    >>> import pandas as pd
    >>> facts = pd.DataFrame({"trace_id": ["a", "b"], "success": [True, False], "cost_usd": [1.0, 3.0]})
    >>> float(wasted_spend(facts).summary()["share"].iloc[0])
    0.75
    """
    check_columns(facts, ["success", cost], "facts")
    spend = coerce_floats(facts[cost])
    total = float(np.nansum(spend))
    failed = nullable_bools(facts["success"]) == 0
    rows = [("failed traces", float(np.nansum(spend[failed])), int(failed.sum()), "traces")]
    if spans is not None or stuck is not None:
        stuck = stuck or stuck_loops(spans, facts=facts, min_repeats=min_repeats)
        part = stuck.table.loc[stuck.table["stuck"]]
        rows.append(("after stuck loops began", float(part["spend_after"].sum()), len(part), "traces"))
    else:
        rows.append(("after stuck loops began", np.nan, 0, "needs spans"))
    if spans is not None:
        column = cost if cost in spans.columns else "reported_cost_usd"  # as llm_calls reads it
        failed_call = ((spans["kind"] == "llm") & (spans["status"] == "error") if "status" in spans
                       else pd.Series(False, index=spans.index)).to_numpy(dtype=bool, na_value=False)
        errors = pd.Series(coerce_floats(spans.loc[failed_call, column]) if column in spans
                           else np.full(int(failed_call.sum()), np.nan))
        rows.append(("failed LLM calls", float(errors.sum()), len(errors),
                     f"calls; {int(errors.isna().sum())} without a cost"))
    else:
        rows.append(("failed LLM calls", np.nan, 0, "needs spans"))
    table = pd.DataFrame(rows, columns=["category", "spend", "n", "unit"])
    table.insert(2, "share", table["spend"] / total if total > 0 else np.nan)
    return WastedSpend(total, table)
