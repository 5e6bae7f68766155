"""Read ahead what a report's sections will read, in background threads.

The overview's spend sections share the priced calls and its loop sections the per-trace loop
table (:func:`~aiscale.report.shared_calls.calls_of`, :func:`~aiscale.report.loop_table.loops_of`).
The first report after a load builds both from the spans, and the facts too, one after the
other, each leaving a core idle for part of its run. :func:`open_reading_ahead` opens the
context as :func:`~aiscale.report.context.open_context` does, but first starts building the
store's kept calls and loop table (each in its own DuckDB connection) and importing what the
sections draw and fit with, while the facts roll up; once the facts are read it turns the kept
tables into the context's frames while the first sections run. A section that reads one
meanwhile waits for it (the store builds each kept table once, :meth:`~aiscale.TraceStore.reading`,
and :func:`~aiscale.report.context.memoised` computes each frame once), so the figures are the
same with or without reading ahead.

Nothing is lost when a read fails here: the section that needs it reads it again and reports
the error itself.

Examples
--------
>>> import pandas as pd
>>> from aiscale.report.context import Context
>>> start(Context(facts=pd.DataFrame({"trace_id": ["a"]}), spans=None, store=None)) is None  # no store
True
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from aiscale.report.context import (
    THREAD,
    Context,
    is_table_file,
    kept_for,
    open_context,
    parse_since,
    shared_sheet,
)

IMPORTS = ("matplotlib.pyplot", "aiscale.analysis.tokens.mle", "aiscale.analysis._dists",
           "aiscale.pricing.genai")
"""Modules the overview's sections import on first use (matplotlib, SciPy's distributions,
genai-prices): ~1 s that runs beside the facts' DuckDB query instead of after it."""


def _in_background(steps: list[Callable[[], Any]], after: threading.Thread | None = None,
                   claim=None) -> threading.Thread:
    def run() -> None:
        if after is not None:
            after.join()
        with claim or nullcontext():  # held until the last step is done
            for step in steps:
                try:
                    step()
                except Exception:  # noqa: BLE001 - the section that reads it reads it again and says why
                    pass

    thread = threading.Thread(target=run, name=THREAD)  # not a daemon: a process ending waits for its DuckDB work
    thread.start()
    return thread


def _import_ahead() -> None:
    for name in IMPORTS:
        importlib.import_module(name)
    from genai_prices import data_snapshot

    data_snapshot.get_snapshot()  # genai-prices' bundled prices, parsed on first use (~0.4 s)


def read_ahead(store, *, prices=None, since=None, until=None) -> threading.Thread:
    """Start building a :class:`~aiscale.TraceStore`'s kept priced calls and loop table (of the
    window's days); return the thread, which :func:`start` waits for."""

    def loops() -> None:
        from aiscale.report.loop_table import loop_table  # imported in the thread too (~0.4 s)

        loop_table(store, prices=prices, since=since, until=until)

    from aiscale.facts.window import window_days
    from aiscale.store.facts_cache import facts_kept

    # Beside a facts roll-up (the context opening), one DuckDB thread: two queries of two threads
    # each on two cores cost ~1.3 CPU-s more, and finish later, than one thread each.
    threads = None if facts_kept(store.root, prices, window_days(since, until)[2]) else 1
    # The loop table is claimed from the start: a section asking for it while the calls are built
    # (or written) waits for this thread instead of building it beside.
    return _in_background([lambda: store.calls(prices=prices, since=since, until=until, threads=threads), loops],
                          claim=store.reading("loops"))


def start(ctx: Context, after: threading.Thread | None = None) -> threading.Thread | None:
    """Start reading the context's priced calls and loop table (after ``after`` ends).

    Returns the thread, or None when the context's sections read neither (no store, or no
    spans) or do not share them (a price sheet given as a frame).
    """
    if not kept_for(ctx) or not shared_sheet(ctx.prices):
        return None

    def calls() -> None:
        from aiscale.report.shared_calls import calls_of

        calls_of(ctx, prices=ctx.prices)

    def loops() -> None:
        from aiscale.report.loop_table import loops_of

        loops_of(ctx)

    return _in_background([calls, loops], after)


def open_reading_ahead(store, *, since: str | None = None, until: str | None = None,
                       variants: list[str] | None = None, prices: str | None = None,
                       columns: dict[str, str] | None = None) -> Context:
    """:func:`~aiscale.report.context.open_context`, reading ahead the calls and loop table.

    A table file (no spans) opens as it does there, with nothing read ahead.
    """
    from aiscale.report.figures_ahead import start_worker
    from aiscale.store.trace_store import TraceStore

    start_worker()  # the process drawing the figures starts while the store opens (a report kernel only)
    if is_table_file(store):
        return open_context(store, since=since, until=until, variants=variants, prices=prices, columns=columns)
    _in_background([_import_ahead])
    trace_store = store if isinstance(store, TraceStore) else TraceStore(store)
    start_at, end_at = parse_since(since), parse_since(until)  # once: "7d" read twice would differ
    ahead = read_ahead(trace_store, prices=prices, since=start_at, until=end_at)
    ctx = open_context(trace_store, since=start_at, until=end_at, variants=variants, prices=prices,
                       columns=columns)
    start(ctx, after=ahead)
    return ctx
