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
