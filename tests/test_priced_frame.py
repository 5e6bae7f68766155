"""A store's kept calls as a frame: the dtypes a frame priced afresh comes back with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from aiscale.analysis.spend.calls import priced_frame


def test_text_of_nulls_integers_with_and_without_nulls_and_unpriced_cost():
    table = pa.table({"trace_id": ["a", "b", "c"], "project": pa.nulls(3, pa.string()),
                      "input_tokens": pa.array([1, 2, 3], pa.int64()),
                      "output_tokens": pa.array([1, None, 3], pa.int64()),
                      "cache_write_1h_tokens": pa.nulls(3, pa.int64()),
                      "cost_usd": [1.0, 2.0, 3.0], "priced": [True, False, True]})
    calls = priced_frame(table)
    pd.testing.assert_series_equal(calls["project"], pd.Series([None] * 3, dtype=object, name="project")
                                   .astype("str"), check_exact=True)
    assert calls["project"].isna().all()
    assert calls["input_tokens"].dtype == np.int64 and calls["input_tokens"].tolist() == [1, 2, 3]
    assert calls["output_tokens"].dtype == np.float64 and np.isnan(calls["output_tokens"][1])
    assert calls["cache_write_1h_tokens"].dtype == object and calls["cache_write_1h_tokens"].isna().all()
    assert np.isnan(calls["cost_usd"][1]) and calls["cost_usd"][[0, 2]].tolist() == [1.0, 3.0]  # unknown, not 0
