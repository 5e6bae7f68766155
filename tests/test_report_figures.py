"""Figures the report draws with matplotlib alone look as seaborn drew them: the same lines,
colours, scales and legend (seaborn is no longer imported on the overview's path)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from aiscale.report.sections_core import survival_lines


def _drawn(ax) -> list[tuple]:
    """Each line as drawn: its points in log space (what a log axis shows), colour and style."""
    out = []
    for line in ax.get_lines():
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        shown = (x > 0) & (y > 0)  # nonpositive points are masked on both log axes
        out.append((np.log10(x[shown]), np.log10(y[shown]), to_rgba(line.get_color()), line.get_drawstyle(),
                    tuple(line.sticky_edges.y)))
    return out


def test_cost_survival_lines_are_seaborns_complementary_ecdf():
    sns = pytest.importorskip("seaborn")
    rng = np.random.default_rng(3)
    labels = np.array(["strong", "cheap", "reasoning", "one-trace"])[rng.integers(0, 3, 2_000)]
    labels[17] = "one-trace"
    values = np.round(rng.lognormal(-3, 1.2, len(labels)), 4)  # rounded: ties, as costs have
    frame = pd.DataFrame({"cost": values, "variant": labels})
    ours = survival_lines(plt.subplots()[1], values, labels, title="variant")
    theirs = plt.subplots()[1]
    sns.ecdfplot(data=frame, x="cost", hue="variant", complementary=True, log_scale=(True, True), ax=theirs)
    a, b = _drawn(ours), _drawn(theirs)
    assert len(a) == len(b) == 4
    for (ax_, ay, ac, ad, ae), (bx, by, bc, bd, be) in zip(a, b, strict=True):
        np.testing.assert_allclose(ax_, bx, rtol=0, atol=1e-12)  # seaborn goes through log10 and back
        np.testing.assert_array_equal(ay, by)
        assert (ac, ad, ae) == (bc, bd, be)
    assert (ours.get_xscale(), ours.get_yscale()) == (theirs.get_xscale(), theirs.get_yscale()) == ("log", "log")
    legend, expected = ours.get_legend(), theirs.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [t.get_text() for t in expected.get_texts()]
    assert legend.get_title().get_text() == expected.get_title().get_text() == "variant"
    assert [to_rgba(h.get_color()) for h in legend.legend_handles] == [
        to_rgba(h.get_color()) for h in expected.legend_handles]
    plt.close("all")


def test_a_long_survival_line_keeps_what_the_figure_can_show():
    """25,000 costs: the line drawn keeps a few thousand of seaborn's points, and every point
    left out lies in the grid cell (1/2000 of each log axis) of the kept point before it."""
    from aiscale.analysis._result import PLOT_CELLS

    values = np.random.default_rng(5).lognormal(-3, 1.2, 25_000)
    ours = survival_lines(plt.subplots()[1], values, np.array(["v"] * len(values)), title="variant")
    x, y = (np.asarray(v, float) for v in (ours.get_lines()[0].get_xdata(), ours.get_lines()[0].get_ydata()))
    full_x = np.r_[-np.inf, np.sort(values)]
    full_y = 1.0 - np.r_[0.0, np.arange(1, len(values) + 1) / len(values)]
    assert 1_000 < len(x) < 6_000
    kept = np.searchsorted(full_x, x[1:-1])  # distinct costs: each kept point is one of the whole line's
    np.testing.assert_array_equal(full_x[kept], x[1:-1])
    np.testing.assert_array_equal(full_y[kept], y[1:-1])
    assert (x[0], y[0], y[-1]) == (-np.inf, 1.0, 0.0)  # the ends, which a log axis cannot place, stay
    inner = slice(1, -1)
    lx, ly = np.log10(full_x[inner]), np.log10(full_y[inner])
    before = np.searchsorted(x[inner], full_x[inner], side="right") - 1  # the kept point at or before each
    cell_x = (lx.max() - lx.min()) / PLOT_CELLS
    cell_y = (ly.max() - ly.min()) / PLOT_CELLS
    assert np.all(lx - np.log10(x[inner][before]) <= cell_x * (1 + 1e-9))
    assert np.all(np.log10(y[inner][before]) - ly <= cell_y * (1 + 1e-9))
    plt.close("all")
