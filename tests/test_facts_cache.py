"""Facts kept in the store's cache are the facts of the same store state, price sheet and days:
read back identical, and never served after a load, for another sheet (or an edited one), for
another window, or when the cache file is damaged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kept_files import double_costs, kept_files

import aiscale
from aiscale.store import facts_cache

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
TAU2 = REAL / "tau2-bench-results"
FIRST = TAU2 / "gpt-4.1_airline_default_gpt-4.1_1trials.json"
SECOND = REAL / "claude-code-sessions" / "packmind-context-evaluator-entire"


def _cached(store) -> list[Path]:
    return kept_files(store, "facts")


@pytest.fixture
def store(tmp_path):
    return aiscale.load([FIRST], store=tmp_path / "s.store")


def test_cached_facts_equal_the_rollup_and_are_what_is_read(store):
    fresh = store.facts()
    assert len(_cached(store)) == 1
    pd.testing.assert_frame_equal(store.facts(), fresh, check_exact=True)  # read back: same values and dtypes
    double_costs(_cached(store)[0])
    assert store.facts()["cost_usd"].sum() == pytest.approx(2 * fresh["cost_usd"].sum())


def test_facts_of_a_store_named_by_a_relative_path_are_kept(store, monkeypatch):
    monkeypatch.chdir(store.root.parent)  # the temporary file is named by an absolute path
    relative = aiscale.TraceStore(store.root.name)
    assert not relative.root.is_absolute()
    relative.facts()
    assert len(_cached(store)) == 1


def test_a_load_invalidates_the_cached_facts(store):
    before = store.facts()
    double_costs(_cached(store)[0])
    store.load([SECOND])
    after = store.facts()
    assert len(after) > len(before)
    kept = after.loc[after["trace_id"].isin(before["trace_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before, check_exact=True)  # rolled up again, not the poisoned file


def test_another_or_edited_price_sheet_and_another_window_are_other_keys(store, tmp_path):
    listed = store.facts()
    double_costs(_cached(store)[0])
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("model,discount\ngpt-4.1*,0.5\n")
    half = store.facts(prices=sheet)
    assert half["cost_usd"].sum() == pytest.approx(listed["cost_usd"].sum() / 2)
    sheet.write_text("model,discount\ngpt-4.1*,0.25\n")  # the same path, edited
    assert store.facts(prices=sheet)["cost_usd"].sum() == pytest.approx(listed["cost_usd"].sum() * 0.75)
    start = listed["started_at"].min()
    window = store.facts(since=start, until=start + pd.Timedelta(days=1))
    assert window["cost_usd"].sum() == pytest.approx(
        listed.loc[listed["started_at"] < start + pd.Timedelta(days=1), "cost_usd"].sum())
    assert len(_cached(store)) == 4


def test_damaged_cache_files_are_rolled_up_again_and_old_ones_dropped(store, tmp_path):
    fresh = store.facts()
    _cached(store)[0].write_bytes(b"PAR1 not parquet")
    pd.testing.assert_frame_equal(store.facts(), fresh, check_exact=True)
    for discount in (0.1, 0.2, 0.3, 0.4, 0.5):
        store.facts(prices=pd.DataFrame({"model": ["*"], "discount": [discount]}))
    assert len(_cached(store)) == facts_cache.KEEP


def test_facts_of_a_state_that_changed_meanwhile_are_not_kept(store):
    manifest = facts_cache.manifest_bytes(store.root)
    key = facts_cache.facts_key(manifest + b" ", None, None)
    facts_cache.write_cached(store.root, key, pa.table({"trace_id": ["t"]}), manifest + b" ")
    assert facts_cache.read_cached(store.root, key) is None and not _cached(store)


def test_a_kept_file_damaged_behind_a_sound_footer_is_rolled_up_again(store, tmp_path):
    fresh = store.facts()
    [kept] = _cached(store)
    data = bytearray(kept.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little") + 8  # the footer and its length stay sound
    data[4:len(data) - footer] = bytes(len(data) - footer - 4)  # every page zeroed
    kept.write_bytes(bytes(data))
    with pytest.raises((OSError, pa.ArrowException)):
        pq.read_table(kept)  # the damage shows only when the pages are read
    pd.testing.assert_frame_equal(store.facts(), fresh, check_exact=True)
    out = store.export_facts(tmp_path / "facts.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out), fresh, check_exact=True)


def test_temporary_files_a_killed_writer_left_are_pruned_once_stale(tmp_path):
    """A report kernel stopped while a background thread wrote a kept table leaves its temporary
    file; the next write of that kind removes it once it is older than any write takes."""
    import os
    import time

    folder = tmp_path / facts_cache.FOLDER
    folder.mkdir()
    stale, fresh = folder / ".calls-abc.arrow.1234abcd.tmp", folder / ".calls-def.arrow.5678abcd.tmp"
    other = folder / ".facts-abc.parquet.1234abcd.tmp"
    for path in (stale, fresh, other):
        path.write_bytes(b"partial")
    old = time.time() - facts_cache.STALE_S - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    facts_cache._prune(folder, "calls")
    assert not stale.exists() and fresh.exists() and other.exists()  # another kind is pruned with its own


def test_kept_facts_are_readable_as_every_other_file_the_store_writes(store):
    """The kept facts file takes the mode any new file takes (the umask's), not a private temporary
    file's: another user reading the store reads them instead of rolling them up again."""
    store.facts()
    probe = store.root / "cache" / "probe"
    probe.touch()
    assert _cached(store)[0].stat().st_mode == probe.stat().st_mode
