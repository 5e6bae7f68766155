"""Spans to trace facts: one row per trace, written once as Ibis expressions (any engine).

Rules (DESIGN.md):

- tokens and cost are summed over LLM spans only (totals on chain, agent or root spans
  stay in ``attributes``);
- ``iterations`` counts the LLM calls of the trace's main agent loop: every LLM call
  except those whose parent is an agent span other than the main one (the earliest
  agent span) — calls of a sub-agent are not iterations of the main loop — and those
  whose parent is an evaluator span (a model-graded scorer's calls are LLM calls, their
  tokens and cost count, but they grade the loop, not run it); where the trace
  has no agent span, every LLM call. A failed attempt (status error and no output) is
  not an iteration: the retry that follows is. ``n_llm_calls`` counts every call;
- a failed attempt that reports no usage at all is billed nothing (cost 0, priced);
- ``repeated_calls`` counts tool calls whose (tool name, arguments) the trace already issued;
- ``latency_s`` is the root span's duration when the trace has one root, else last end
  minus first start;
- ``cost_usd`` is null when any LLM call of the trace is unpriced (see ``unpriced_llm_calls``);
  a trace with no LLM call costs 0; an LLM call the store quarantined (``lost`` calls: the
  loader knew its trace but a value broke a rule) is an unpriced call, so such a trace's cost
  is unknown, never 0, even when it has no other span;
- trace rows from several files are merged per trace: the largest non-null value of each
  column (``started_at``: the earliest; ``metadata``: the longest); ``task_id`` defaults to trace_id, ``trial`` to 0,
  ``variant`` to the model of the first LLM call, ``started_at`` to the first span start.

Examples
--------
>>> import pandas as pd, ibis
>>> spans = pd.DataFrame({"trace_id": ["t", "t"], "span_id": ["a", "b"], "parent_id": [None, "a"],
...     "kind": ["agent", "llm"], "model": [None, "m"], "input_tokens": [None, 10],
...     "start_time": pd.to_datetime(["2025-01-01 00:00:00", "2025-01-01 00:00:01"], utc=True),
...     "end_time": pd.to_datetime(["2025-01-01 00:00:05", "2025-01-01 00:00:02"], utc=True)})
>>> from aiscale import schema
>>> from aiscale.facts.on_duckdb import rollup_frames
>>> facts = rollup_frames(spans, schema.empty("traces"))
>>> print(facts[["iterations", "input_tokens", "latency_s", "variant"]].to_string(index=False))
 iterations  input_tokens  latency_s variant
          1            10        5.0       m
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

from aiscale import schema
from aiscale.pricing.rates import bill_failed_attempts, price_spans

_ZERO = ibis.literal(0, "int64")


@ibis.udf.scalar.builtin(name="unix_micros")
def _unix_micros(ts: dt.Timestamp(timezone="UTC")) -> dt.int64:
    """Microseconds since 1970 (Spark's ``unix_micros``; DuckDB's ``epoch_us``)."""


def _micros(end: ibis.Value, start: ibis.Value) -> ibis.Value:
    """Whole microseconds from ``start`` to ``end``: a difference of two epoch counts.

    The same integers as ``end.delta(start, unit="microsecond")``; DuckDB computes that
    through its time-zone calendar, about four times slower over a million spans.
    """
    return _unix_micros(end) - _unix_micros(start)


def _seconds(end: ibis.Value, start: ibis.Value) -> ibis.Value:
    return _micros(end, start).cast("float64") / 1e6


_FIXED_BITS = 60  # a float is summed as a whole number of 2**-60 (8.7e-19 of a dollar)
_LIMB = 2.0 ** 40


def _exact_sum(values: ibis.Value) -> ibis.Value:
    """A float sum with the same bits on every engine, whatever order the rows arrive in.

    Each value is split, with float operations that are exact (scaling by powers of two,
    ``floor``), into two whole numbers: ``v * 2**60 = hi * 2**40 + lo`` with ``lo`` in
    [0, 2**40), the part below 2**-60 floored off. Their sums are exact decimals, and the
    total is converted to a float once (correctly rounded on DuckDB and Spark alike) and
    scaled back by 2**-60 (exact). Casting a float to a decimal is not used: DuckDB
    scales it in floating point first, Spark rounds its shortest decimal string, and the
    two differed in the last bit on real exports. Null when every value is null.
    """
    dec = "decimal(38, 0)"
    scaled = values * 2.0 ** _FIXED_BITS
    hi = (scaled / _LIMB).floor()
    lo = (scaled - hi.cast("float64") * _LIMB).floor()
    total = hi.cast(dec).sum() * ibis.literal(int(_LIMB), dec) + lo.cast(dec).sum()
    return total.cast("float64") * 2.0 ** -_FIXED_BITS


def _seconds_sum(end: ibis.Value, start: ibis.Value, where: ibis.Value | None = None) -> ibis.Value:
    """Summed durations in whole microseconds (exact, order-independent), as seconds."""
    micros = _micros(end, start)
    if where is not None:
        micros = where.ifelse(micros, ibis.null("int64"))
    return micros.sum().cast("float64") / 1e6


def repeated_traces(spans: ibis.Table) -> ibis.Table:
    """``trace_id`` of the traces that carry some (trace_id, span_id) more than once."""
    keys = spans.group_by(["trace_id", "span_id"]).aggregate(_copies=spans.count())
    return keys.filter(keys._copies > 1).select("trace_id").distinct()


def dedupe_spans(spans: ibis.Table, repeated: ibis.Table | None = None) -> ibis.Table:
    """Keep one row per (trace_id, span_id): the first by source file and row.

    With ``repeated`` (:func:`repeated_traces` of the same spans, computed beforehand) only
    the spans of those traces go through the window; the others pass as they are. The
    rollup reads its spans four times, and a window over every span each time cost four
    times the rest of the rollup on a store where a few traces repeat.
    """
    if repeated is not None:
        once = spans.anti_join(repeated, "trace_id")
        return once.union(dedupe_spans(spans.semi_join(repeated, "trace_id")))
    window = ibis.window(group_by=[spans.trace_id, spans.span_id],
                         order_by=[spans.source_file, spans.source_row])
    return spans.mutate(_rn=ibis.row_number().over(window)).filter(lambda t: t._rn == 0).drop("_rn")


def merge_traces(traces: ibis.Table) -> ibis.Table:
    """One row per trace_id from trace rows of several files (largest non-null per column)."""
    others = [c for c in schema.TRACE_COLUMNS if c not in ("trace_id", "started_at", "metadata")]
    return traces.group_by("trace_id").aggregate(
        started_at=traces.started_at.min(), **{c: traces[c].max() for c in others},
        metadata=traces.metadata.argmax(traces.metadata.length()),
    )


def _priced(spans: ibis.Table, rates: ibis.Table | None) -> ibis.Table:
    """LLM spans with ``day``, ``cost_usd`` and ``priced`` (unpriced without rates)."""
    llm = spans.filter(spans.kind == "llm").mutate(day=spans.start_time.date())
    return price_spans(llm, rates) if rates is not None else bill_failed_attempts(llm.mutate(
        cost_usd=ibis.null("float64"), priced=ibis.literal(False)))


def _llm_calls(spans: ibis.Table, rates: ibis.Table | None, outside: ibis.Table) -> ibis.Table:
    """LLM spans with cost, priced flag and an ``in_main_loop`` flag (``outside``: :func:`_outside_main_loop`)."""
    llm = _priced(spans, rates)
    llm = llm.left_join(outside, ["trace_id", "parent_id"], rname="{name}_sub")
    failed = (llm.status == "error").fill_null(False) & (llm.output_tokens.fill_null(_ZERO) == 0)
    llm = llm.mutate(in_main_loop=llm._sub.isnull(), failed_attempt=failed)
    # the columns kept, listed (dropping several at once names them in a set's order, so the
    # compiled SQL would differ from one process to the next)
    return llm.select(*[c for c in llm.columns if not c.endswith("_sub") and c != "_sub"])


def _outside_main_loop(spans: ibis.Table) -> ibis.Table:
    """``trace_id, parent_id, _sub``: the spans whose LLM calls are not main-loop iterations.

    Agent spans other than the trace's earliest and every evaluator span, read in one pass.
    """
    sub = spans.filter(spans.kind.isin(["agent", "evaluator"]))
    first = ibis.window(group_by=[sub.trace_id, sub.kind], order_by=[sub.start_time, sub.span_id])
    sub = sub.mutate(_rank=ibis.row_number().over(first))
    sub = sub.filter((sub.kind == "evaluator") | (sub._rank > 0))
    return sub.select(trace_id="trace_id", parent_id="span_id", _sub=ibis.literal(True)).distinct()


def priced_llm_calls(spans: ibis.Table, rates: ibis.Table | None) -> ibis.Table:
    """LLM spans priced exactly as the rollup prices them: trace_id, span_id, cost_usd, priced.

    The same rule as the facts (a failed attempt without usage is billed 0); the store hands
    these costs to the analyses so that spans and facts agree to the cent.
    """
    return _priced(spans, rates).select("trace_id", "span_id", "cost_usd", "priced")


def _llm_aggregates(llm: ibis.Table) -> ibis.Table:
    first_call = ibis.struct({"start": llm.start_time, "span": llm.span_id})  # no window: a min
    return llm.group_by("trace_id").aggregate(
        n_llm_calls=llm.count(),
        iterations=(llm.in_main_loop & ~llm.failed_attempt).cast("int64").sum(),
        **{c: llm[c].sum() for c in schema.TOKEN_COLUMNS},
        cost_sum=_exact_sum(llm.cost_usd),
        reported_cost_usd=_exact_sum(llm.reported_cost_usd),
        unpriced_llm_calls=(~llm.priced).cast("int64").sum(),
        llm_latency_s=_seconds_sum(llm.end_time, llm.start_time),
        first_model=llm.model.argmin(first_call),
    )


def _span_aggregates(spans: ibis.Table) -> ibis.Table:
    duration = _seconds(spans.end_time, spans.start_time)
    is_root = spans.parent_id.isnull()
    is_tool = spans.kind == "tool"
    return spans.group_by("trace_id").aggregate(
        n_tool_calls=is_tool.cast("int64").sum(),
        tool_latency_s=_seconds_sum(spans.end_time, spans.start_time, is_tool),
        n_errors=(spans.status == "error").cast("int64").sum(),
        root_latency_s=is_root.ifelse(duration, ibis.null("float64")).max(),
        n_roots=is_root.cast("int64").sum(),
        first_start=spans.start_time.min(),
        span_latency_s=_seconds(spans.end_time.max(), spans.start_time.min()),
    )


def _repeated_calls(spans: ibis.Table) -> ibis.Table:
    tools = spans.filter((spans.kind == "tool") & spans.tool_arguments.notnull())
    per_call = tools.group_by(["trace_id", "tool_name", "tool_arguments"]).aggregate(n=tools.count())
    return per_call.group_by("trace_id").aggregate(repeated_calls=(per_call.n - 1).sum())


def rate_free_parts(spans: ibis.Table, traces: ibis.Table, *, dedupe: bool = True,
                    repeated: ibis.Table | None = None) -> dict[str, ibis.Table]:
    """The parts of the rollup that read no rates, by name (as
    :data:`aiscale.facts.on_duckdb.RATE_FREE_PARTS` lists them).

    Per trace: the span aggregates, the repeated tool calls and the merged trace rows; and
    the spans whose LLM calls are not main-loop iterations. :func:`rollup` joins them to the
    priced LLM calls; a store computes them first, while its rates are looked up, and hands
    them to :func:`rollup` as tables (the same facts). ``dedupe`` and ``repeated`` as there.
    """
    if dedupe:
        spans = dedupe_spans(spans, repeated)
    return {"span_aggregates": _span_aggregates(spans), "repeated_calls": _repeated_calls(spans),
            "outside_main_loop": _outside_main_loop(spans), "trace_rows": merge_traces(traces)}


def rollup(spans: ibis.Table, traces: ibis.Table, rates: ibis.Table | None = None, *,
           dedupe: bool = True, lost: ibis.Table | None = None,
           repeated: ibis.Table | None = None, parts: dict[str, ibis.Table] | None = None) -> ibis.Table:
    """Return the Ibis expression of trace facts from canonical span and trace tables.

    Parameters
    ----------
    spans, traces : ibis.Table
        Canonical tables (see :mod:`aiscale.schema`), on any Ibis backend.
    rates : ibis.Table, optional
        Per-token rates by (provider, model, day) from :func:`aiscale.pricing.rates.rate_table`;
        without it every LLM call is unpriced.
    dedupe : bool, default=True
        Keep one row per (trace_id, span_id) first; a store passes False when no two of its
        files carried the same span.
    lost : ibis.Table, optional
        ``trace_id, lost_llm_calls``: LLM calls quarantined at load, counted as unpriced.
    repeated : ibis.Table, optional
        With ``dedupe``: :func:`repeated_traces` of ``spans``, already computed; only those
        traces are de-duplicated (the same rows, far less work when few traces repeat).
    parts : dict of ibis.Table, optional
        :func:`rate_free_parts` of the same spans and traces (with the same ``dedupe``),
        already computed; ``traces`` is then not read.
    """
    if dedupe:
        spans = dedupe_spans(spans, repeated)
    parts = parts if parts is not None else rate_free_parts(spans, traces, dedupe=False)
    llm = _llm_aggregates(_llm_calls(spans, rates, parts["outside_main_loop"]))
    agg = parts["span_aggregates"].left_join(llm, "trace_id", rname="{name}_llm")
    agg = agg.left_join(parts["repeated_calls"], "trace_id", rname="{name}_rep")
    t = _outer_join(agg, parts["trace_rows"])
    if lost is not None:
        t = _outer_join(t, lost)
    n_llm = t.n_llm_calls.fill_null(_ZERO)
    unpriced = t.unpriced_llm_calls.fill_null(_ZERO)
    if lost is not None:
        unpriced = unpriced + t.lost_llm_calls.fill_null(_ZERO)
    columns = {
        "trace_id": t.trace_id,
        "task_id": t.task_id.fill_null(t.trace_id),
        "trial": t.trial.fill_null(_ZERO),
        "variant": t.variant.fill_null(t.first_model),
        "started_at": t.started_at.fill_null(t.first_start),
        **{c: t[c] for c in ("success", "score", "user_id", "session_id", "metadata")},
        "n_llm_calls": n_llm,
        "n_tool_calls": t.n_tool_calls.fill_null(_ZERO),
        "iterations": t.iterations.fill_null(_ZERO),
        **{c: t[c] for c in schema.TOKEN_COLUMNS},
        "cost_usd": (unpriced > 0).ifelse(ibis.null("float64"), (n_llm == 0).ifelse(0.0, t.cost_sum)),
        "reported_cost_usd": t.reported_cost_usd,
        "unpriced_llm_calls": unpriced,
        "latency_s": (t.n_roots == 1).ifelse(t.root_latency_s, ibis.null("float64"))
        .fill_null(t.span_latency_s),
        "llm_latency_s": t.llm_latency_s,
        "tool_latency_s": t.tool_latency_s,
        "n_errors": t.n_errors.fill_null(_ZERO),
        "repeated_calls": t.repeated_calls.fill_null(_ZERO),
    }
    return t.select(**columns)


def _outer_join(left: ibis.Table, right: ibis.Table) -> ibis.Table:
    """Full outer join on ``trace_id`` (one row per trace on each side), the ids merged.

    Every trace on either side is kept without first listing the ids of both: listing them
    made DuckDB compute the span aggregates twice.
    """
    joined = left.outer_join(right, "trace_id", rname="{name}_right")
    return joined.mutate(trace_id=joined.trace_id.fill_null(joined.trace_id_right)).drop("trace_id_right")

