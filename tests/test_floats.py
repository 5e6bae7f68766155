"""``floats``: every numeric or boolean column as float64 with NaN for unknown, a new array."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiscale.analysis._result import floats, used_tokens

COLUMNS = [
    pd.Series([1.0, np.nan, -0.0, np.inf]), pd.Series([1, 2, 3]), pd.Series([True, False]),
    pd.Series([1, None], dtype="Int64"), pd.Series([1.5, None], dtype="Float64"),
    pd.Series([True, None], dtype="boolean"), pd.Series(np.array([1, 2], dtype=np.uint32)),
    pd.Series(np.array([1.25, 2], dtype=np.float32)), pd.Series([1, None, 2.5], dtype=object),
    pd.Series([1, None], dtype="int64[pyarrow]"), pd.Series([1.0, None], dtype="double[pyarrow]"),
    pd.Series([1, None], dtype="UInt8"),
]


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: str(c.dtype))
def test_floats_equals_the_nullable_float_conversion(column):
    through_nullable = pd.to_numeric(
        pd.Series(pd.array(column, dtype="Float64")) if column.dtype == object else column
    ).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    got = floats(column)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, through_nullable)  # NaN where unknown, the same values
    assert (np.signbit(got) == np.signbit(through_nullable)).all()


@pytest.mark.parametrize("dtype", ["float64", "Float64", "Int64"])
def test_floats_is_a_copy_the_caller_may_change(dtype):
    column = pd.Series([1, 2], dtype=dtype)
    floats(column)[0] = 9
    assert column.iloc[0] == 1


def test_used_tokens_counts_unknown_as_unused():
    facts = pd.DataFrame({"input_tokens": pd.array([None, 0, 5], dtype="Int64"),
                          "n_llm_calls": [np.nan, 2.0, 0.0]})
    assert used_tokens(facts).tolist() == [False, True, True]
