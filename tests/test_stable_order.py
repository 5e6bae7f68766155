"""The row order shared by the loop and cache analyses equals NumPy's stable lexsort."""

from __future__ import annotations

import numpy as np
import pytest

from aiscale.analysis.loops.calls import already_ordered, stable_order


@pytest.mark.parametrize("presorted", [False, True])
@pytest.mark.parametrize("low", [0, -5_000, np.iinfo(np.int64).max - 10_000])
def test_stable_order_is_lexsort_with_ties_and_rows_kept_in_order(presorted, low):
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 50, 5_000)
    values = low + rng.integers(0, 20, 5_000)  # many ties: the row order must break them
    if presorted:
        order = np.lexsort((values, codes))
        codes, values = codes[order], values[order]
    expected = np.lexsort((values, codes))
    assert already_ordered(codes, values) is presorted
    np.testing.assert_array_equal(stable_order(codes, values), expected)


def test_one_row_out_of_place_is_sorted():
    codes, values = np.array([0, 0, 1, 1, 1]), np.array([1, 2, 5, 3, 9])
    assert not already_ordered(codes, values)
    np.testing.assert_array_equal(stable_order(codes, values), [0, 1, 3, 2, 4])
    assert not already_ordered(np.array([1, 0]), np.array([0, 0]))
