"""Span validation: the parent-cycle rule against a plain walk up the parent chain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiscale.loaders.validate import on_parent_cycle


def walk(frame: pd.DataFrame) -> list[bool]:
    """Whether following parents from each span comes back to it (one step at a time)."""
    parent = dict(zip(zip(frame.trace_id, frame.span_id, strict=True), frame.parent_id, strict=True))
    out = []
    for trace, start in zip(frame.trace_id, frame.span_id, strict=True):
        node, seen = parent.get((trace, start)), set()
        while node is not None and (trace, node) in parent and node not in seen and node != start:
            seen.add(node)
            node = parent[(trace, node)]
        out.append(node == start)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_cycles_found_equal_a_plain_walk(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for trace in range(30):
        n = int(rng.integers(1, 12))
        for s in range(n):  # same span ids in every trace; parents anywhere (cycles), none, or absent
            draw = rng.random()
            parent = None if draw < 0.2 else ("gone" if draw < 0.3 else f"s{rng.integers(0, n)}")
            rows.append({"trace_id": f"t{trace}", "span_id": f"s{s}", "parent_id": parent})
    frame = pd.DataFrame(rows).drop_duplicates(["trace_id", "span_id"]).reset_index(drop=True)
    found = on_parent_cycle(frame)
    assert found.tolist() == walk(frame)
    assert found.any() and not found.all()  # the draw holds both kinds
