"""Which traces' cost is a bound rather than a figure, for the sections that show trace costs.

aiscale prices a call from its logged token counts. Two kinds of call make that price a bound:

- a call whose output count is short of its content (a loader's ``output_lower_bound``: Claude
  Code logs the count of a streamed response's start on some lines): its output tokens, so its
  cost, are a **lower bound**;
- a call that read the cache at a model with no listed cache-read price: the bill counts those
  reads at the input price (:mod:`aiscale.pricing.rates`), so its cost is an **upper bound**.

A trace priced by aiscale (its ``cost_usd``, not a reported cost) with calls of the first kind
only costs at least its figure, with the second kind only at most, with both neither.
:func:`cost_bounds` counts them among the context's traces; :meth:`CostBounds.note` says it in a
sentence and :meth:`CostBounds.qualifier` gives the words a total takes ("at least ").

Examples
--------
>>> CostBounds(lower=2, upper=0, both=0, priced=10, lower_calls=5, upper_calls=0,
...            lower_models="m", upper_models="").qualifier()
'at least '
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis._result import named_models, trace_cost
from aiscale.analysis.spend.calls import cache_reads_billed_as_input, short_output
from aiscale.report.context import Context, kept_for, memoised
from aiscale.report.shared_calls import calls_of


@dataclass(frozen=True)
class CostBounds:
    """Counts of the context's aiscale-priced traces whose cost is a bound (see the module).

    ``lower`` and ``upper`` count traces with calls of one kind only, ``both`` traces with
    calls of each; ``priced`` the traces priced by aiscale; ``*_calls`` and ``*_models`` the
    calls of each kind in those traces and their models (up to three named).
    """

    lower: int
    upper: int
    both: int
    priced: int
    lower_calls: int
    upper_calls: int
    lower_models: str
    upper_models: str

    def qualifier(self) -> str:
        """The words a sum of the traces' costs takes (:func:`bound_words`)."""
        return bound_words(bool(self.lower or self.both), bool(self.upper or self.both))

    def note(self) -> str:
        """The bounds in sentences ("" when every priced trace's cost is a figure)."""
        parts = []
        if self.lower or self.both:
            parts.append(f"The cost of {self._traces(self.lower + self.both)} is a lower bound: "
                         f"{_calls(self.lower_calls, self.lower + self.both)} ({self.lower_models}) logged an output token count short "
                         "of the content.")
        if self.upper or self.both:
            parts.append(f"The cost of {self._traces(self.upper + self.both)} is an upper bound: "
                         f"{_calls(self.upper_calls, self.upper + self.both)} ({self.upper_models}) read the cache at a model with no "
                         "listed cache-read price, billed at the input price.")
        if self.both:
            them = "One of them has" if self.both == 1 else f"{self.both:,} of them have"
            parts.append(f"{them} calls of both kinds: its cost is neither bound." if self.both == 1 else
                         f"{them} calls of both kinds: their cost is neither bound.")
        return " ".join(parts)

    def _traces(self, n: int) -> str:
        if n == self.priced:
            return "the one trace priced by aiscale" if n == 1 else f"all {n:,} traces priced by aiscale"
        return f"{n:,} of the {self.priced:,} traces priced by aiscale"

    def data(self) -> dict:
        """The counts, for a section's ``data``."""
        return {"lower_bound_traces": self.lower, "upper_bound_traces": self.upper,
                "bounded_both_ways_traces": self.both}


def bound_words(lower: bool, upper: bool) -> str:
    """How a sum of costs is said: ``"at least "`` when some of them are lower bounds and none an
    upper one, ``"at most "`` the other way round, else ``""`` (a figure, or neither bound).

    Examples
    --------
    >>> bound_words(True, False), bound_words(False, True), bound_words(True, True)
    ('at least ', 'at most ', '')
    """
    return "at least " if lower and not upper else "at most " if upper and not lower else ""


def cost_bounds(ctx: Context) -> CostBounds | None:
    """Count the context's aiscale-priced traces whose cost is a bound (None without a store's
    kept calls: other sources carry neither mark).

    Reads the calls every spend section shares (:func:`~aiscale.report.shared_calls.calls_of`,
    priced with the context's sheet, with their rates).
    """
    if not kept_for(ctx) or "trace_id" not in ctx.facts:
        return None
    return memoised(ctx, ("cost bounds", str(ctx.prices)), lambda: _counted(ctx))


def _counted(ctx: Context) -> CostBounds | None:
    calls = calls_of(ctx, prices=ctx.prices, parts=True)
    if calls is None or not len(calls):
        return None
    short = calls["priced"].to_numpy(dtype=bool) & short_output(calls)
    over = cache_reads_billed_as_input(calls)
    _, source = trace_cost(ctx.facts)
    ours = pd.Index(ctx.facts["trace_id"].to_numpy()[source == "cost_usd"])
    low_ids, high_ids = calls["trace_id"][short].to_numpy(), calls["trace_id"][over].to_numpy()  # few calls
    low, high = ours.intersection(pd.unique(low_ids)), ours.intersection(pd.unique(high_ids))
    both = low.intersection(high)
    low_models = calls["model"][short].to_numpy()[np.isin(low_ids, low)]
    high_models = calls["model"][over].to_numpy()[np.isin(high_ids, high)]
    return CostBounds(lower=len(low) - len(both), upper=len(high) - len(both), both=len(both), priced=len(ours),
                      lower_calls=len(low_models), upper_calls=len(high_models),
                      lower_models=named_models(low_models), upper_models=named_models(high_models))


def _calls(n: int, traces: int) -> str:
    """``n`` calls of ``traces`` traces, in words ("5 of its calls", "one of their calls")."""
    whose = "its" if traces == 1 else "their"
    return f"{n:,} of {whose} calls" if n != 1 else f"one of {whose} calls"


def bounds_note(ctx: Context) -> str:
    """:meth:`CostBounds.note` of the context ("" when there is nothing to say)."""
    bounds = cost_bounds(ctx)
    return bounds.note() if bounds is not None else ""
