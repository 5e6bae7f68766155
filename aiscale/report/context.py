"""Report sections: each computes one finding sentence, a figure and a table from the facts.

The notebooks call these a few lines at a time; :func:`show` displays a section with every
string from a trace escaped. A window with no traces gives a section that says so.

Examples
--------
>>> import pandas as pd
>>> ctx = Context(facts=pd.DataFrame({"variant": ["a"], "cost_usd": [1.0]}), spans=None, store=None)
>>> cost_of(ctx.facts)[1]
'cost_usd'
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aiscale.facts.window import in_window
from aiscale.report.display import Section, show, table_html  # noqa: F401 - the notebooks call sections.show
from aiscale.report.figures_ahead import wait_for_figures

THREAD = "aiscale-read-ahead"
"""The name of the threads that read ahead (:mod:`aiscale.report.prefetch`)."""

REPORT_SPAN_COLUMNS = ("trace_id", "span_id", "kind", "start_time", "end_time", "status", "model",
                       "input_tokens", "output_tokens", "tool_name", "tool_arguments")
"""The span columns the report's sections read (with the prices, ``cost_usd`` and ``priced``)."""


@dataclass
class Context:
    """What every section reads: the facts of the window, spans when needed, the store.

    ``spans`` may be given as a function returning them: it is called the first time a
    section reads ``ctx.spans``, so a report whose sections need no spans never reads them.
    ``since`` and ``until`` are the window the facts were selected with (None: open ended).
    """

    facts: pd.DataFrame
    spans: pd.DataFrame | Callable[[], pd.DataFrame | None] | None = field(repr=False, compare=False)
    store: Any
    window: str = "all data"
    notes: list[str] = field(default_factory=list)
    prices: Any = None
    memo: dict = field(default_factory=dict, repr=False, compare=False)
    since: datetime | None = None
    until: datetime | None = None


def _read_spans(ctx: Context) -> pd.DataFrame | None:
    spans = ctx.__dict__["spans"]
    if callable(spans):  # read on first use, then kept
        spans = ctx.__dict__["spans"] = spans()
    return spans


Context.spans = property(_read_spans, lambda ctx, spans: ctx.__dict__.__setitem__("spans", spans))


def memoised(ctx: Context, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per context and key, shared by the sections that need the same data.

    A context narrowed to other facts (``dataclasses.replace``) shares the dict but not the
    facts, so it computes afresh. One thread computes a key at a time: another asking for it
    meanwhile (a section while :mod:`aiscale.report.prefetch` reads ahead) waits for it.
    Frames are shared: pandas copies on write, so a section
    changing its copy changes no other section's.

    Examples
    --------
    >>> ctx = Context(facts=pd.DataFrame({"x": [1]}), spans=None, store=None)
    >>> memoised(ctx, "n", lambda: 1), memoised(ctx, "n", lambda: 2)
    (1, 1)
    """
    with ctx.memo.setdefault(("lock", key), threading.RLock()):  # a prefetch may be computing it
        hit = ctx.memo.get(key)
        if hit is not None and hit[0] is ctx.facts:
            return hit[1]
        value = compute()
        ctx.memo[key] = (ctx.facts, value)
        return value


def shared_sheet(prices) -> bool:
    """Whether what the sections read under ``prices`` can be kept and shared: no sheet, or a
    sheet file (a frame of prices has no key to share it by)."""
    return isinstance(prices, (str, Path, type(None)))


def is_table_file(store) -> bool:
    """Whether ``store`` names a per-trace table file (no spans) rather than a store."""
    from aiscale.store.trace_store import TraceStore

    return not isinstance(store, TraceStore) and Path(store).is_file()


def kept_for(ctx: Context) -> bool:
    """Whether the context's span sections read the store's kept tables (calls, loop table)
    instead of its spans: a store with kept calls, opened with spans (read or not yet)."""
    return (ctx.store is not None and callable(getattr(ctx.store, "calls", None))
            and ctx.__dict__.get("spans") is not None)


UNKNOWN_VARIANT = "(variant unknown)"
"""The label of traces with no variant (no model, no configuration label) in reports."""

MIN_GROUP = 10
"""No headline is drawn from a group (variant) with fewer traces than this."""


def finish() -> None:
    """The notebooks' last cell: wait for the figures drawn in a second process (each is put where
    it was shown) and for any reading ahead, so that the kernel has nothing left to do when it is
    stopped."""
    wait_for_figures()
    for thread in threading.enumerate():
        if thread.name == THREAD:
            thread.join()


def why_not(text: str, **data: Any) -> Section:
    """A section that says why it cannot apply to this data (no figure, no table)."""
    return Section(text, data=data, status="why not")


def parse_since(since: str | datetime | None, now: datetime | None = None) -> datetime | None:
    """Turn a relative window ("7d", "24h", "2w") or an ISO date into a UTC start time (a
    datetime already parsed is taken as it is, naive as UTC).

    Examples
    --------
    >>> parse_since("7d", now=datetime(2025, 1, 8, tzinfo=timezone.utc)).day
    1
    """
    if not since:
        return None
    if isinstance(since, datetime):
        return since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    units = {"h": "hours", "d": "days", "w": "weeks"}
    if since[-1:] in units and since[:-1].isdigit():
        return now - timedelta(**{units[since[-1]]: int(since[:-1])})
    parsed = pd.Timestamp(since)
    return (parsed.tz_localize("UTC") if parsed.tzinfo is None else parsed).to_pydatetime()


def open_context(store, *, since: str | None = None, until: str | None = None,
                 variants: list[str] | None = None, prices: str | None = None,
                 with_spans: bool = True, columns: dict[str, str] | None = None) -> Context:
    """Open a store (or a per-trace table) and select the facts of a time window and variants.

    ``store`` may be a store folder (or an open :class:`~aiscale.TraceStore`) or a table file
    (CSV, Parquet, JSON lines) read with :func:`aiscale.load_facts` and the column map
    ``columns``; a table has no spans. A store's spans are read when a section first needs
    them, only :data:`REPORT_SPAN_COLUMNS`.
    """
    from aiscale.store.trace_store import TraceStore

    start, end = parse_since(since), parse_since(until)
    if is_table_file(store):
        return _table_context(Path(store), columns, start, end, variants)
    trace_store = store if isinstance(store, TraceStore) else TraceStore(store)
    facts = trace_store.facts(prices=prices, since=start, until=end)
    window = "all data"
    if start is not None or end is not None:
        window = (f"{start:%Y-%m-%d %H:%M} UTC" if start else "the start") + " to " + (
            f"{end:%Y-%m-%d %H:%M} UTC" if end else "now")
    merged, notes = merge_aliases(facts["variant"])
    facts = facts.assign(variant=merged)
    if variants:
        facts = facts.loc[facts["variant"].isin(variants)]
    spans = None
    if with_spans and len(facts):
        whole = start is None and end is None and not variants  # every trace of the store: no filter
        ids = None if whole else facts["trace_id"].tolist()

        def spans() -> pd.DataFrame | None:  # read by the first section that needs them
            read = trace_store.spans(columns=list(REPORT_SPAN_COLUMNS), trace_ids=ids, prices=prices)
            return read if len(read) else None
    notes = [f"variants that name one model: {'; '.join(notes)}"] if notes else []
    return Context(facts=facts.reset_index(drop=True), spans=spans, store=trace_store, window=window,
                   prices=prices, notes=notes, since=start, until=end)


def _table_context(path: Path, columns, start, end, variants) -> Context:
    from aiscale.store.facts_table import load_facts

    facts = load_facts(path, columns=columns, row_ids=True)
    facts = facts.assign(variant=merge_aliases(facts["variant"])[0])
    summary = facts.attrs["load_summary"]
    keep = in_window(facts["started_at"], start, end) if start or end else np.ones(len(facts), bool)
    if variants:
        keep &= facts["variant"].isin(variants).to_numpy(dtype=bool)
    note = (f"table {path.name}: {summary['rows_read']:,} rows read, {summary['rows_loaded']:,} loaded, "
            f"{summary['rows_quarantined']:,} quarantined")
    window = "all data" if start is None and end is None else f"{start} to {end or 'now'}"
    return Context(facts=facts.loc[keep].reset_index(drop=True), spans=None, store=None,
                   window=window, notes=[note])


def merge_aliases(variants: pd.Series) -> tuple[pd.Series, list[str]]:
    """One variant per model whatever provider prefix a source wrote (``@google/m``, ``google/m``).

    Labels that differ only by a leading ``@`` or ``provider/`` segments (as pricing resolves
    model names) are one variant, named by its most frequent label. A trace with no variant
    (no model known) is labelled :data:`UNKNOWN_VARIANT`, never shown as "nan". Returns the
    labels and a note per merge.

    Examples
    --------
    >>> labels, notes = merge_aliases(pd.Series(["google/g-3", "google/g-3", "@google/g-3", "agent-b"]))
    >>> labels.tolist(), notes
    (['google/g-3', 'google/g-3', 'google/g-3', 'agent-b'], ["'@google/g-3' counted as 'google/g-3'"])
    """
    text = variants.astype("string")
    counts = text.value_counts()  # the distinct labels: keys are made per label, not per trace
    labels = counts.index.to_series().astype("string")
    key = labels.str.strip().str.lstrip("@").str.rsplit("/", n=1).str[-1].str.lower()
    rename, notes = {}, []
    for _, distinct in labels.groupby(key.to_numpy(), sort=True):
        if len(distinct) < 2:
            continue
        main = sorted(distinct, key=lambda v: (-counts[v], len(v), v))[0]
        for other in sorted(set(distinct) - {main}):
            rename[other] = main
            notes.append(f"{other!r} counted as {main!r}")
    variants = variants.where(variants.notna(), UNKNOWN_VARIANT)
    if not rename:
        return variants, []
    return variants.where(~text.isin(list(rename)).fillna(False), text.map(rename)), notes


def cost_of(facts: pd.DataFrame) -> tuple[pd.Series, str]:
    """Per-trace cost as every section shows it, and where it came from.

    aiscale's price (``cost_usd``) where known, else the source's reported cost trace by
    trace; a reported cost of exactly 0 for a trace that used tokens is unknown (sources write
    0 for models they cannot price). Unknown is NaN, never 0. The label is ``cost_usd``,
    ``reported_cost_usd``, both joined by ``+``, or ``none``.

    Examples
    --------
    >>> f = pd.DataFrame({"cost_usd": [1.0, None], "reported_cost_usd": [None, 0.0], "n_llm_calls": [1, 3]})
    >>> cost, label = cost_of(f)
    >>> cost.tolist(), label
    ([1.0, nan], 'cost_usd')
    """
    from aiscale.analysis._result import trace_cost

    if not {"cost_usd", "reported_cost_usd"} & set(facts.columns):
        return pd.Series(np.nan, index=facts.index), "none"
    values, sources = trace_cost(facts)
    used = [s for s in ("cost_usd", "reported_cost_usd") if (sources == s).any()]
    return pd.Series(values, index=facts.index, dtype=float), " + ".join(used) or "none"


def priced_facts(facts: pd.DataFrame) -> pd.DataFrame:
    """The facts with ``cost_usd`` replaced by the report's cost (:func:`cost_of`), for analyses.

    Every analysis of the report then reads the same per-trace money as the spend table.
    """
    cost, _ = cost_of(facts)
    return facts.assign(cost_usd=cost)


def empty_section(ctx: Context) -> Section | None:
    """Return a section saying the window has no traces, or None when it has some."""
    if len(ctx.facts):
        return None
    return why_not(f"No traces in this window ({ctx.window}): nothing new to report.")


def guarded(title: str) -> Callable:
    """Turn a section's ValueError into a section that states why it was not computed."""

    def wrap(fn: Callable[..., Section]) -> Callable[..., Section]:
        @functools.wraps(fn)
        def run(ctx: Context, *args, **kwargs) -> Section:
            if (empty := empty_section(ctx)) is not None:
                return empty
            try:
                return fn(ctx, *args, **kwargs)
            except ValueError as exc:
                return why_not(f"{title} not computed: {exc}")
        return run
    return wrap


def unknown_cost(ctx: Context, what: str) -> Section | None:
    """A section saying cost is unknown (never zero) when no trace has a cost."""
    if cost_of(ctx.facts)[1] != "none":
        return None
    calls = int(ctx.facts["n_llm_calls"].fillna(0).sum()) if "n_llm_calls" in ctx.facts else 0
    detail = f" ({calls:,} LLM calls without a price or token counts)" if calls else ""
    return why_not(f"{what} needs cost, and cost is unknown for all {len(ctx.facts):,} traces"
                   f"{detail}. It is not zero.")


def provenance(ctx: Context, parameters: dict[str, Any]) -> Section:
    """Files, rows, time range and version behind the report, and its parameters."""
    import aiscale

    manifest = list(ctx.store.manifest()["files"].values()) if ctx.store is not None else []
    files = pd.DataFrame([{"format": m.get("format"), "file": m["path"], "rows read": m["rows_read"],
                           "rows loaded": m["rows_loaded"], "rows quarantined": m["rows_quarantined"]}
                          for m in manifest], columns=["format", "file", "rows read", "rows loaded",
                                                       "rows quarantined"])
    table = files.groupby("format", dropna=False).agg(
        files=("file", "size"), **{c: (c, "sum") for c in ("rows read", "rows loaded", "rows quarantined")}
    ).reset_index()
    started = pd.to_datetime(ctx.facts["started_at"], utc=True) if len(ctx.facts) else pd.Series(dtype="datetime64[ns, UTC]")
    span_text = (f"{started.min():%Y-%m-%d %H:%M} to {started.max():%Y-%m-%d %H:%M} UTC"
                 if started.notna().any() else "no timestamps")
    n_tasks = ctx.facts["task_id"].nunique() if len(ctx.facts) else 0
    n_variants = ctx.facts["variant"].nunique() if len(ctx.facts) else 0
    loaded = f"{len(files)} files loaded" if ctx.store is not None else ""
    loaded = "; ".join([loaded, *ctx.notes] if loaded else ctx.notes)
    finding = (f"{len(ctx.facts):,} traces over {n_tasks:,} tasks and {n_variants} variants, {span_text}; "
               f"window: {ctx.window}; {loaded}; aiscale {aiscale.__version__}.")
    return Section(finding, table=table, note="Parameters: " + ", ".join(f"{k}={v!r}" for k, v in parameters.items()))
