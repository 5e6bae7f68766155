"""Shared fixtures: seeded RNG, Agg backend with figures closed, paths to the real data."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"

settings.register_profile("ci", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20251126)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def real_data() -> Path:
    if not REAL_DATA.is_dir():
        pytest.fail(f"the shared real data is missing: expected it at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(autouse=True, scope="session")
def query_cache(tmp_path_factory):
    """Compiled queries go to a folder of this test session, not the user's cache."""
    folder = tmp_path_factory.mktemp("query-cache")
    old = os.environ.get("AISCALE_CACHE_DIR")
    os.environ["AISCALE_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("AISCALE_CACHE_DIR", None)
    else:
        os.environ["AISCALE_CACHE_DIR"] = old
