"""The priced LLM calls every spend section of a report reads, read and labelled once.

:func:`calls_of` gives the calls of a context's traces: a store's kept priced calls
(:meth:`~aiscale.TraceStore.calls`, of the window's days, as the facts read them), else the
context's spans priced, labelled with the facts' labels, and memoised per context and price
sheet so that the sections (and :mod:`aiscale.report.prefetch`, reading ahead) share one frame.

Examples
--------
>>> import pandas as pd
>>> from aiscale.report.context import Context
>>> calls_of(Context(facts=pd.DataFrame({"trace_id": ["a"]}), spans=None, store=None)) is None
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from aiscale.report.context import Context, memoised, shared_sheet

_LABELS = ("variant", "session_id", "user_id", "task_id")


def calls_of(ctx: Context, *, prices=None, parts: bool = False) -> pd.DataFrame | None:
    """The priced LLM calls of the context's traces, with their trace labels (None without spans).

    Read and priced once per context and price sheet (with the cost terms), shared by every
    section; without ``parts`` the cost terms and rates are left out.
    """
    from aiscale.pricing.rates import COST_PARTS, RATE_COLUMNS

    if not shared_sheet(prices):
        return _read_calls(ctx, prices=prices, parts=parts)
    calls = memoised(ctx, ("calls", str(prices)), lambda: _read_calls(ctx, prices=prices, parts=True))
    if calls is None or parts:
        return calls
    return calls.drop(columns=[c for c in (*COST_PARTS, *RATE_COLUMNS) if c in calls.columns])


def _read_calls(ctx: Context, *, prices, parts: bool) -> pd.DataFrame | None:
    """The calls of the context's traces: a store's kept priced calls (of the window's days, as
    the facts read them), else the context's spans priced; labelled with the facts' labels.

    Each kept call's trace is found among the facts' traces by one Arrow hash lookup, which
    both selects the calls of the context's traces and places their labels.
    """
    from aiscale.analysis.spend.calls import llm_calls, priced_frame

    ids = ctx.facts["trace_id"] if "trace_id" in ctx.facts else pd.Series([], dtype=str)
    at = None
    if ctx.store is not None and callable(getattr(ctx.store, "calls", None)):
        table = ctx.store.calls(prices=prices, since=ctx.since, until=ctx.until)
        at = pc.index_in(_text(table["trace_id"]), _text(ids)).fill_null(-1).to_numpy(zero_copy_only=False)
        if not (at >= 0).all():
            table, at = table.filter(pa.array(at >= 0)), at[at >= 0]
        table = table.drop_columns([c for c in _LABELS if c in table.column_names])  # the facts' are taken
        calls = priced_frame(table, parts=parts)
    elif ctx.spans is not None:
        calls = llm_calls(ctx.spans, prices=prices, parts=parts, trace_ids=ids.tolist())
    else:
        return None
    if calls.empty:
        return None
    labels = ctx.facts[["trace_id", *[c for c in _LABELS if c in ctx.facts]]]
    calls = calls.drop(columns=[c for c in _LABELS if c in calls])
    if not labels["trace_id"].is_unique:
        return calls.merge(labels, on="trace_id", how="left")
    if at is None:
        at = pc.index_in(_text(calls["trace_id"]), _text(ids)).fill_null(-1).to_numpy(zero_copy_only=False)
    found = at >= 0
    taken = labels[labels.columns[1:]].iloc[np.maximum(at, 0)].set_axis(calls.index)  # labels only
    for label in taken.columns:
        calls[label] = taken[label] if found.all() else taken[label].where(found)
    return calls


def _text(values) -> pa.Array:
    """Trace ids as Arrow text, for a hash lookup."""
    if isinstance(values, pd.Series):
        values = pa.array(values.astype("string"))
    return pc.cast(values, pa.large_string())
